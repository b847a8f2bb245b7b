"""What the static check (`safety`) allows and forbids: the lists, in one place.

Each list says why it exists; `safety` walks the syntax tree and applies them.
"""
from __future__ import annotations

import re

from blofin_pipeline.strategies import indicators, signals

ALLOWED_MODULES: frozenset[str] = frozenset({"numpy", "pandas", "math", "statistics"})
# Project imports allowed: `Strategy`, and the public indicators and signal rules.
ALLOWED_PROJECT_IMPORTS: dict[str, frozenset[str]] = {
    "blofin_pipeline.strategies": frozenset({"Strategy"}),
    "blofin_pipeline.strategies.base": frozenset({"Strategy"}),
    "blofin_pipeline.strategies.indicators": frozenset(indicators.__all__),
    "blofin_pipeline.strategies.signals": frozenset(signals.__all__),
    "__future__": frozenset({"annotations"}),
}

FORBIDDEN_BUILTINS: frozenset[str] = frozenset({
    "exec", "eval", "compile", "open", "__import__", "globals", "locals", "vars",
    "input", "breakpoint", "help", "exit", "quit", "memoryview", "dir",
    "__builtins__", "__loader__", "__spec__",
    # a strategy has no business ending or interrupting the process that runs it
    "SystemExit", "KeyboardInterrupt", "GeneratorExit", "BaseException",
})
ATTRIBUTE_BUILTINS: frozenset[str] = frozenset({"getattr", "hasattr"})
MUTATING_BUILTINS: frozenset[str] = frozenset({"setattr", "delattr"})
# Methods of the base class a strategy must not override (they validate its output).
PROTECTED_METHODS: frozenset[str] = frozenset({"signals"})

# Attribute names that reach modules, frames, code objects or I/O.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset({
    # modules re-exported as attributes of other modules
    "os", "sys", "subprocess", "socket", "shutil", "pathlib", "importlib", "ctypes",
    "pickle", "builtins", "io", "marshal", "shelve", "tempfile", "multiprocessing",
    "threading", "_thread", "resource", "gc", "inspect", "runpy", "pty", "fcntl",
    "mmap", "urllib", "http", "ftplib", "smtplib", "ssl", "asyncio", "concurrent",
    "posix", "platform", "sysconfig", "site", "zipimport", "pkgutil", "webbrowser",
    "glob", "zipfile", "tarfile", "sqlite3", "weakref", "atexit", "traceback",
    "codecs", "linecache", "tokenize", "faulthandler", "requests", "urllib3",
    "ctypeslib", "f2py", "distutils", "testing", "lib", "compat", "pickle_compat",
    # modules and helpers that reach dunders, build code, or change process-wide state;
    # found by walking the public attributes of numpy, pandas, math and statistics
    "operator", "attrgetter", "methodcaller", "types", "FunctionType", "CodeType",
    "LambdaType", "MethodType", "ModuleType", "typing", "get_type_hints", "ForwardRef",
    "ast", "dis", "warnings", "dataclasses", "make_dataclass", "string", "Formatter",
    "get_field", "vformat", "functools", "logging", "FileHandler", "handlers", "gzip",
    "bz2", "lzma", "fsspec", "dbm", "as_strided", "stride_tricks", "copyreg", "pydoc",
    "pdb", "bdb", "code", "codeop", "trace", "tracemalloc", "ctypes_util", "chdir",
    # library internals (pandas.core.computation holds pandas' own expression evaluator)
    "core", "computation", "libs", "tslibs", "internals",
    # process / environment helpers
    "system", "popen", "environ", "getenv", "putenv", "fork", "spawn", "kill",
    # frames, code objects and generators' internals
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
    "ag_frame", "ag_code", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
    "f_trace", "tb_frame", "tb_next", "func_globals", "func_code", "mro",
    # numpy file I/O
    "load", "loads", "save", "savez", "savez_compressed", "savetxt", "loadtxt",
    "genfromtxt", "fromfile", "fromregex", "tofile", "dump", "dumps", "memmap",
    "open_memmap", "DataSource",
    # pandas file I/O and expression evaluation
    "to_csv", "to_pickle", "to_parquet", "to_feather", "to_hdf", "to_sql", "to_excel",
    "to_json", "to_html", "to_xml", "to_stata", "to_orc", "to_latex", "to_markdown",
    "to_clipboard", "to_string", "HDFStore", "ExcelWriter", "ExcelFile", "eval", "query",
    "style", "plot", "plotting", "hist", "boxplot", "savefig", "api", "show_versions",
    "test",  # np.test / pd.test run pytest
    # process-wide settings (they would change the library for every later call)
    "set_option", "reset_option", "option_context", "seterr", "set_printoptions",
    # file readers and openers that hide behind innocent names
    "mrecords", "openfile", "fromtextfile", "common", "urlopen", "get_handle",
    "stringify_path", "file_exists", "request",
})
# Attributes beginning with 'to_' write files (to_pickle, to_csv, ...) unless listed here.
SAFE_TO_ATTRIBUTES: frozenset[str] = frozenset({
    "to_numpy", "to_frame", "to_list", "to_dict", "to_series", "to_period", "to_timestamp",
    "to_datetime", "to_numeric", "to_timedelta", "to_offset", "to_pydatetime",
    "to_flat_index", "to_records", "to_tuples",
})
# pandas methods that look a STRING argument up as a method name (s.apply("to_pickle",
# path=...) writes a file), so their function arguments must be real functions.
DISPATCH_METHODS: frozenset[str] = frozenset({
    "agg", "aggregate", "apply", "transform", "map", "applymap", "pipe",
})
SAFE_FUNCTION_NAMES: frozenset[str] = frozenset({
    "sum", "mean", "median", "min", "max", "std", "var", "count", "first", "last", "prod",
    "sem", "skew", "kurt", "size", "nunique", "abs", "cumsum", "cumprod", "cummax",
    "cummin", "diff", "pct_change", "rank", "idxmax", "idxmin", "any", "all", "quantile",
    "round", "ohlc", "shift",
})
# Container mutators: np.sctypeDict.clear() would change numpy for the whole process.
MUTATING_METHODS: frozenset[str] = frozenset({
    "update", "clear", "pop", "popitem", "setdefault", "append", "extend", "insert",
    "remove", "add", "discard", "sort", "reverse", "__setitem__",
})
SAFE_BUILTIN_FUNCTIONS: frozenset[str] = frozenset({
    "abs", "len", "float", "int", "round", "max", "min", "sum", "bool", "sorted",
})
FORBIDDEN_ATTRIBUTE_PREFIXES: tuple[str, ...] = ("read_",)
# Code hidden in strings: pandas' '@local' expression syntax (eval/query), module paths
# such as 'io.common' or 'os.system', and calls of file/process helpers.
STRING_AT_LOCAL = re.compile(r"(?<![\w.])@[A-Za-z_]")
STRING_MODULE_PATH = re.compile(
    r"\b(os|sys|io|common|subprocess|socket|urllib|request|builtins|importlib|pickle|"
    r"shutil|pathlib|ctypes|mrecords|posix)\.[A-Za-z_]")
STRING_CALL = re.compile(
    r"\b(read_\w+|to_pickle|to_csv|urlopen|openfile|fromtextfile|system|popen|"
    r"exec\w*|eval|compile|getattr|open)\(")
# Dunder methods a strategy may define; every other dunder is refused.
ALLOWED_DUNDER_DEFS: frozenset[str] = frozenset({"__init__"})
DUNDER_IN_TEXT = re.compile(r"__\w+__")
