"""Static check: what it rejects (with line numbers) and what it lets through."""
from __future__ import annotations

import textwrap

import pytest

from blofin_pipeline.strategies import builtin_strategy_sources
from blofin_pipeline.strategies.safety import declared_name, static_check

CLEAN = textwrap.dedent('''
    from __future__ import annotations

    import math
    import statistics

    import numpy as np
    import numpy.linalg as la
    import pandas as pd
    from numpy import sign
    from numpy.random import default_rng

    from blofin_pipeline.strategies import Strategy


    class Clean(Strategy):
        name = "clean"
        category = "trend"
        params = {"window": 10}
        param_space = {"window": (2, 100)}

        def __init__(self, params=None):
            super().__init__(params)
            self._cache = {}

        def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
            close = candles["close"]
            if hasattr(close, "rolling"):
                mean = getattr(close, "rolling")(self.params["window"]).mean()
            frame = candles.copy()
            frame.loc[:, "extra"] = math.sqrt(2.0) * statistics.mean([1.0, 2.0])
            out = pd.Series(sign(close - mean), index=candles.index)
            i = 0
            while i < 3:
                i += 1
            return out.fillna(0.0).clip(-1, 1)
''')


def test_clean_code_passes():
    assert static_check(CLEAN) == []


def test_every_builtin_passes_the_static_check():
    for name, code in builtin_strategy_sources().items():
        assert static_check(code) == [], name


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ("import os", "line 1: import of 'os' is not allowed"),
        ("import numpy, subprocess", "line 1: import of 'subprocess' is not allowed"),
        ("import os.path", "import of 'os.path' is not allowed"),
        ("import numpy.lib.format", "import of 'numpy.lib.format' is not allowed"),
        ("from pandas.io.common import get_handle", "import from 'pandas.io.common'"),
        ("from pandas.core.computation.eval import eval as ev",
         "import from 'pandas.core.computation.eval'"),
        ("from numpy._core import multiarray", "import from 'numpy._core'"),
        ("import numpy.ctypeslib as c", "import of 'numpy.ctypeslib' is not allowed"),
        ("from shutil import rmtree", "import from 'shutil' is not allowed"),
        ("from . import x", "relative imports are not allowed"),
        ("import importlib", "import of 'importlib' is not allowed"),
        ("import ctypes", "import of 'ctypes' is not allowed"),
        ("import pickle", "import of 'pickle' is not allowed"),
        ("import pathlib", "import of 'pathlib' is not allowed"),
        ("from numpy import *", "'from numpy import *' is not allowed"),
        ("from numpy import ctypeslib", "import of 'ctypeslib' from 'numpy' is not allowed"),
        ("from pandas import read_pickle", "import of 'read_pickle' from 'pandas'"),
        ("from blofin_pipeline.strategies import load_strategy_source",
         "import of 'load_strategy_source' from 'blofin_pipeline.strategies'"),
        ("from blofin_pipeline.store import Store", "import from 'blofin_pipeline.store'"),
        ("x = exec('1')", "use of forbidden builtin 'exec'"),
        ("x = eval('1')", "use of forbidden builtin 'eval'"),
        ("x = compile('1', 'f', 'eval')", "use of forbidden builtin 'compile'"),
        ("x = open('f')", "use of forbidden builtin 'open'"),
        ("x = __import__('os')", "use of forbidden builtin '__import__'"),
        ("x = globals()", "use of forbidden builtin 'globals'"),
        ("x = locals()", "use of forbidden builtin 'locals'"),
        ("x = vars()", "use of forbidden builtin 'vars'"),
        ("breakpoint()", "use of forbidden builtin 'breakpoint'"),
        ("raise SystemExit(1)", "use of forbidden builtin 'SystemExit'"),
        ("try:\n    pass\nexcept BaseException:\n    pass",
         "line 3: use of forbidden builtin 'BaseException'"),
        ("f = eval\nf('1')", "line 1: use of forbidden builtin 'eval'"),
        ("x = __builtins__", "use of forbidden builtin '__builtins__'"),
        ("x = __name__", "use of dunder name '__name__'"),
        ("x = getattr(y, name)", "getattr() with a non-literal attribute name"),
        ("x = getattr(y, '__cla' + 'ss__')", "getattr() with a non-literal attribute name"),
        ("x = getattr(y, '__class__')", "getattr() of forbidden attribute '__class__'"),
        ("x = getattr(y, '_private')", "getattr() of forbidden attribute '_private'"),
        ("x = getattr(pd, 'read_csv')", "getattr() of forbidden attribute 'read_csv'"),
        ("g = getattr\ng(y, 'a')", "'getattr' may only be called directly"),
        ("setattr(np, 'isnan', len)", "use of forbidden builtin 'setattr'"),
        ("delattr(np, 'isnan')", "use of forbidden builtin 'delattr'"),
        ("x = ().__class__", "access to dunder attribute '__class__'"),
        ("x = y.__subclasses__()", "access to dunder attribute '__subclasses__'"),
        ("x = f.__globals__", "access to dunder attribute '__globals__'"),
        ("x = y.__dict__", "access to dunder attribute '__dict__'"),
        ("x = np._core", "access to private attribute '_core'"),
        ("x = pd.io.common", "access to forbidden attribute 'io'"),
        ("x = pd.read_csv('f')", "access to forbidden attribute 'read_csv'"),
        ("df.to_csv('f')", "access to forbidden attribute 'to_csv'"),
        ("df.to_pickle('f')", "access to forbidden attribute 'to_pickle'"),
        ("df.to_parquet('f')", "access to forbidden attribute 'to_parquet'"),
        ("s.to_string(buf='f')", "access to forbidden attribute 'to_string'"),
        ("x = np.load('f')", "access to forbidden attribute 'load'"),
        ("np.save('f', x)", "access to forbidden attribute 'save'"),
        ("x = np.fromfile('f')", "access to forbidden attribute 'fromfile'"),
        ("x.tofile('f')", "access to forbidden attribute 'tofile'"),
        ("x = np.memmap('f')", "access to forbidden attribute 'memmap'"),
        ("x = np.ctypeslib", "access to forbidden attribute 'ctypeslib'"),
        ("x = np.lib.format", "access to forbidden attribute 'lib'"),
        ("x = df.query('a > 1')", "access to forbidden attribute 'query'"),
        ("x = pd.eval('1 + 1')", "access to forbidden attribute 'eval'"),
        ("x = pd.compat.pickle_compat", "access to forbidden attribute 'compat'"),
        ("x = g.gi_frame", "access to forbidden attribute 'gi_frame'"),
        ("x = frame.f_back.f_globals", "access to forbidden attribute 'f_back'"),
        ("x = tb.tb_frame", "access to forbidden attribute 'tb_frame'"),
        ("x = type(y).mro()", "access to forbidden attribute 'mro'"),
        ("np.isnan = len", "assignment to attribute 'isnan' of anything but self"),
        ("pd.options.mode.chained_assignment = None", "assignment to attribute"),
        ("del np.isnan", "assignment to attribute 'isnan'"),
        ("x = '{0.__class__}'.format(1)", "string literal containing a dunder name"),
        ("global x", "'global' statements are not allowed"),
        ("class A(metaclass=M):\n    pass", "custom metaclasses are not allowed"),
        ("class A:\n    def __getattr__(self, n):\n        pass",
         "line 2: definition of dunder method '__getattr__' is not allowed"),
        ("class A:\n    def signals(self, c):\n        pass",
         "line 2: overriding 'signals' is not allowed"),
        ("async def f():\n    pass", "async functions are not allowed"),
        # pandas looks string arguments up as method names: s.apply("to_pickle", path=...)
        ("s.apply('to_pi' + 'ckle', path='f')", "the function given to .apply() must be"),
        ("s.apply('to_pickle', path='f')", "the function given to .apply() must be"),
        ("name = 'x'\ns.agg(name)", "line 2: the function given to .agg() must be"),
        ("def f(x):\n    return x\nf = 'to_csv'\ns.transform(f)",
         "the function given to .transform() must be"),
        ("def g(f):\n    return s.apply(f)", "the function given to .apply() must be"),
        ("s.agg(['mean', 'to_pickle'])", "the function given to .agg() must be"),
        ("df.agg({'close': self.name})", "the function given to .agg() must be"),
        ("pd.Series.apply(s, 'to_pickle')", "the function given to .apply() must be"),
        ("f = s.apply\nf('to_pickle')", "'.apply' may only be called directly".replace("'", "")),
        ("f = getattr(s, 'apply')", "getattr() of forbidden attribute 'apply'"),
        ("pd.set_option('mode.copy_on_write', False)", "forbidden attribute 'set_option'"),
        ("ax = s.plot()", "forbidden attribute 'plot'"),
        ("pd.show_versions(as_json='f.json')", "forbidden attribute 'show_versions'"),
        ("np.test()", "forbidden attribute 'test'"),
        ("match x:\n    case object(__class__=c):\n        pass",
         "line 2: class pattern reading forbidden attribute '__class__'"),
        ("import numpy as np\nnp.sctypeDict['float64'] = int", "assignment into an object of 'np'"),
        ("import numpy as np\nnp.sctypeDict.clear()", "calling .clear() on an object of 'np'"),
        ("from blofin_pipeline.strategies import Strategy\nStrategy.params['x'] = 1",
         "assignment into an object of 'Strategy'"),
        ("from blofin_pipeline.strategies import Strategy\nStrategy.params.update(x=1)",
         "calling .update() on an object of 'Strategy'"),
        # the string-dispatch bypasses found by an attacker (issue 10): ** hides the name
        ("candles.agg(**{'func': 'eval', 'expr': 'x', 'engine': 'python'})",
         "**-unpacked arguments to .agg() are not allowed"),
        ("s.apply(**{'func': 'to_pi' + 'ckle', 'path': 'f'})",
         "**-unpacked arguments to .apply() are not allowed"),
        ("kw = dict(func='eval')\ndf.resample('1D').agg(**kw)",
         "line 2: **-unpacked arguments to .agg() are not allowed"),
        ("df.groupby(k).transform(**kw)", "**-unpacked arguments to .transform() are not allowed"),
        ("s.pipe(**kw)", "**-unpacked arguments to .pipe() are not allowed"),
        ("s.map(**kw)", "**-unpacked arguments to .map() are not allowed"),
        ("df.applymap(**kw)", "**-unpacked arguments to .applymap() are not allowed"),
        ("df.aggregate(**kw)", "**-unpacked arguments to .aggregate() are not allowed"),
        ("args = ['to_pickle', 'f']\ns.apply(*args)", "*-unpacked arguments to .apply()"),
        ("s.agg(func='eval')", "the function given to .agg() must be"),
        ("s.apply(f='to_pickle')", "the function given to .apply() must be"),
        ("x = 'close > @m'", "string literal using pandas' '@local' expression syntax"),
        ("x = '@m.io.common.os.system(@c)'", "'@local' expression syntax"),
        ("x = 'm.io.common.urlopen(u)'", "string literal that looks like code: 'io.common"),
        ("x = 'os.system'", "string literal that looks like code: 'os.system"),
        ("x = 'read_pickle(p)'", "string literal that looks like code: 'read_pickle("),
        ("from numpy.ma.mrecords import openfile", "import from 'numpy.ma.mrecords'"),
        ("from numpy.ma import mrecords", "import of 'mrecords' from 'numpy.ma'"),
        ("import numpy.ma.mrecords as m", "import of 'numpy.ma.mrecords' is not allowed"),
        ("f = np.ma.mrecords.openfile('/etc/passwd')", "forbidden attribute 'openfile'"),
        ("x = np.ma.mrecords.fromtextfile('/etc/passwd')", "forbidden attribute 'fromtextfile'"),
        ("x = pd.io.common.urlopen('http://x')", "forbidden attribute 'urlopen'"),
        ("x = y.common.os", "forbidden attribute 'common'"),
        ("df.to_clipboard()", "forbidden attribute 'to_clipboard'"),
        ("df.to_anything_new('f')", "forbidden attribute 'to_anything_new'"),
    ],
)
def test_rejects(snippet: str, expected: str):
    reasons = static_check(snippet)
    assert any(expected in reason for reason in reasons), reasons
    assert all(reason.startswith("line ") for reason in reasons)


def test_dispatch_methods_accept_real_functions():
    code = textwrap.dedent('''
        import numpy as np
        import pandas as pd
        from numpy import log


        def helper(x):
            return x * 2


        def generate(s, df):
            a = s.apply(lambda x: x + 1)
            b = s.rolling(3).apply(np.mean, raw=True)
            c = df.agg({"close": "mean", "volume": ["sum", np.max]})
            d = s.transform(helper)
            e = s.agg("std")
            f = s.pipe(log)
            g = s.map(abs)
            h = s.apply(pd.isna)
            i = s.apply(helper, args=(self.params["k"],), axis=0)
            j = s.to_numpy(), s.to_frame(), s.to_list(), s.index.to_series()
            return a, b, c, d, e, f, g, h, i, j


        DOC = "A trend system (EMA cross) with the most common. filter; mail a@b.c"
    ''')
    assert static_check(code) == []


def test_syntax_error_reports_the_line():
    reasons = static_check("import numpy as np\n\ndef f(:\n    pass\n")
    assert len(reasons) == 1
    assert reasons[0].startswith("line 3: syntax error")


def test_all_reasons_are_reported_in_line_order():
    code = "import os\nimport numpy as np\nx = eval('1')\ny = ().__class__\nz = open('f')\n"
    reasons = static_check(code)
    assert [r.split(":")[0] for r in reasons] == ["line 1", "line 3", "line 4", "line 5"]


def test_subclass_escape_chain_reports_each_dunder():
    reasons = static_check("x = ().__class__.__bases__[0].__subclasses__()")
    text = " ".join(reasons)
    for dunder in ("__class__", "__bases__", "__subclasses__"):
        assert dunder in text


def test_declared_name():
    assert declared_name(CLEAN) == "clean"
    assert declared_name("x = (") is None
    assert declared_name("class A:\n    name = 3\n") is None


# --- what the allowed modules expose ----------------------------------------------------
ESCALATING_MODULES = {
    "os", "posix", "sys", "subprocess", "socket", "shutil", "pathlib", "importlib",
    "ctypes", "pickle", "_pickle", "copyreg", "builtins", "io", "_io", "marshal", "shelve",
    "tempfile", "multiprocessing", "threading", "_thread", "operator", "types", "typing",
    "inspect", "ast", "dis", "warnings", "logging", "gc", "code", "codeop", "runpy",
    "dataclasses", "string", "gzip", "bz2", "lzma", "zipfile", "tarfile", "sqlite3",
    "urllib", "http", "asyncio", "concurrent", "signal", "resource", "functools",
}
HARMLESS_CALLABLES = {"RLock", "StringIO", "getsizeof", "get_terminal_size", "signature",
                      "partial", "wraps", "array_function_from_c_func_and_dispatcher",
                      "Any", "NamedTuple", "SupportsInt", "TypeAlias"}  # typing markers
DANGEROUS_BUILTINS = {"getattr", "setattr", "delattr", "eval", "exec", "compile", "open",
                      "__import__", "globals", "locals", "vars", "input", "breakpoint"}


def _reachable_escalations(max_depth: int = 6) -> list[str]:
    """Attribute paths a strategy may write (per the static check) that reach a module or
    function able to break out: walks numpy, pandas, math and statistics."""
    import math
    import statistics
    import types
    import warnings

    import numpy
    import pandas

    from blofin_pipeline.strategies.safety import (
        DISPATCH_METHODS,
        FORBIDDEN_ATTRIBUTE_PREFIXES,
        FORBIDDEN_ATTRIBUTES,
    )

    def allowed(name: str) -> bool:
        return not (name.startswith("_") or name in FORBIDDEN_ATTRIBUTES
                    or name in DISPATCH_METHODS
                    or name.startswith(FORBIDDEN_ATTRIBUTE_PREFIXES))

    hits, seen = [], set()
    frontier = [(m, m.__name__) for m in (numpy, pandas, math, statistics)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for depth in range(max_depth):
            following = []
            for obj, path in frontier:
                if id(obj) in seen:
                    continue
                seen.add(id(obj))
                try:
                    names = dir(obj)
                except Exception:
                    continue
                for name in filter(allowed, names):
                    try:
                        value = getattr(obj, name)
                    except Exception:
                        continue
                    where = f"{path}.{name}"
                    if isinstance(value, types.ModuleType):
                        if value.__name__.split(".")[0] in ESCALATING_MODULES:
                            hits.append(f"{where} -> module {value.__name__}")
                        elif value.__name__.split(".")[0] in ("numpy", "pandas"):
                            following.append((value, where))
                    elif callable(value):
                        module = (getattr(value, "__module__", None) or "").split(".")[0]
                        fname = getattr(value, "__name__", "")
                        if module == "builtins" and fname in DANGEROUS_BUILTINS:
                            hits.append(f"{where} -> builtin {fname}")
                        elif module in ESCALATING_MODULES - {"builtins"} and \
                                fname not in HARMLESS_CALLABLES and name not in HARMLESS_CALLABLES:
                            hits.append(f"{where} -> {module}.{fname}")
                        if isinstance(value, type) and depth < 4:
                            following.append((value, where))
                    elif depth < 4 and not isinstance(value, (int, float, str, bytes, bool,
                                                             type(None))):
                        following.append((value, where))
            frontier = following
    return hits


def test_allowed_modules_expose_no_path_to_escalating_modules():
    assert _reachable_escalations() == []
