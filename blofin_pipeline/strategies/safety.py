"""Static safety check of untrusted strategy source, with `ast`: a fast first filter.

This is the first of three checks (static, sandboxed run, lookahead). It rejects what
a trading strategy never needs, with a message naming the line: imports outside an
allow-list, dynamic code (exec/eval/compile/__import__), introspection (dunder
attributes, frames, globals), file, network or process access through numpy/pandas
helpers (``numpy.ma.mrecords.openfile``, ``to_pickle``, ``read_*``, anything reaching
``io.common``), and pandas' string dispatch (``agg``/``apply``/``transform``/``pipe``/
``map`` with a method name, by any argument, ``*`` or ``**`` unpacking included;
``eval``/``query`` and their ``@local`` syntax).

No security claim rests on it: every execution of untrusted code happens in the kernel
sandbox (`runner`, `lockdown`), which holds with this check switched off
(``check-strategy --skip-static``, and the tests). It keeps obviously hostile or
process-altering code out early, with a clearer reason than a killed process.

Known limit: it cannot stop a strategy that burns CPU or memory only on data larger
than the check frame; the sandbox's per-call limits do.
"""
from __future__ import annotations

import ast
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
_STRING_AT_LOCAL = re.compile(r"(?<![\w.])@[A-Za-z_]")
_STRING_MODULE_PATH = re.compile(
    r"\b(os|sys|io|common|subprocess|socket|urllib|request|builtins|importlib|pickle|"
    r"shutil|pathlib|ctypes|mrecords|posix)\.[A-Za-z_]")
_STRING_CALL = re.compile(
    r"\b(read_\w+|to_pickle|to_csv|urlopen|openfile|fromtextfile|system|popen|"
    r"exec\w*|eval|compile|getattr|open)\(")
# Dunder methods a strategy may define; every other dunder is refused.
ALLOWED_DUNDER_DEFS: frozenset[str] = frozenset({"__init__"})
_DUNDER_IN_TEXT = re.compile(r"__\w+__")


def _allowed_module(dotted: str) -> bool:
    """numpy, pandas, math, statistics and their public submodules (numpy.linalg), minus
    any path through a forbidden name (numpy.lib, pandas.io, pandas.core...)."""
    root, *rest = dotted.split(".")
    return root in ALLOWED_MODULES and not any(
        part.startswith("_") or _forbidden_name(part) for part in rest
    )


def _forbidden_name(name: str) -> bool:
    """A name that reaches files, processes, the network or code, as an attribute."""
    return (name in FORBIDDEN_ATTRIBUTES or name.startswith(FORBIDDEN_ATTRIBUTE_PREFIXES)
            or (name.startswith("to_") and name not in SAFE_TO_ATTRIBUTES))


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class _Checker(ast.NodeVisitor):
    def __init__(self, tree: ast.AST) -> None:
        self.reasons: list[str] = []
        self.safe_functions, self.module_aliases = _safe_names(tree)
        self.imported = _imported_names(tree)

    def _reject(self, node: ast.AST, message: str) -> None:
        reason = f"line {getattr(node, 'lineno', '?')}: {message}"
        if reason not in self.reasons:
            self.reasons.append(reason)

    # --- imports ---------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not _allowed_module(alias.name):
                self._reject(node, f"import of {alias.name!r} is not allowed "
                                   f"(allowed: {', '.join(sorted(ALLOWED_MODULES))})")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self._reject(node, "relative imports are not allowed")
        elif module in ALLOWED_PROJECT_IMPORTS:
            allowed = ALLOWED_PROJECT_IMPORTS[module]
            for alias in node.names:
                if alias.name not in allowed:
                    self._reject(node, f"import of {alias.name!r} from {module!r} is not "
                                       f"allowed "
                                       f"(allowed: {', '.join(sorted(allowed))})")
        elif not _allowed_module(module):
            self._reject(node, f"import from {module!r} is not allowed "
                               f"(allowed: {', '.join(sorted(ALLOWED_MODULES))}, "
                               f"blofin_pipeline.strategies for Strategy)")
        else:
            for alias in node.names:
                if alias.name == "*":
                    self._reject(node, f"'from {module} import *' is not allowed")
                elif (_forbidden_name(alias.name) or _is_dunder(alias.name)
                      or alias.name.startswith("_")):
                    self._reject(node, f"import of {alias.name!r} from {module!r} "
                                       f"is not allowed")
        self.generic_visit(node)

    # --- names and attributes --------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in MUTATING_BUILTINS:
            self._reject(node, f"use of forbidden builtin {node.id!r}")
        elif node.id in FORBIDDEN_BUILTINS:
            self._reject(node, f"use of forbidden builtin {node.id!r}")
        elif node.id in ATTRIBUTE_BUILTINS and not getattr(node, "_checked_call", False):
            self._reject(node, f"{node.id!r} may only be called directly with a literal "
                               f"attribute name")
        elif _is_dunder(node.id):
            self._reject(node, f"use of dunder name {node.id!r}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if _is_dunder(attr):
            if not (attr == "__init__" and _is_super_call(node.value)):
                self._reject(node, f"access to dunder attribute {attr!r}")
        elif attr.startswith("_") and not (
            isinstance(node.value, ast.Name) and node.value.id == "self"
        ):
            self._reject(node, f"access to private attribute {attr!r} "
                               f"(only self._name is allowed)")
        elif _forbidden_name(attr):
            self._reject(node, f"access to forbidden attribute {attr!r} "
                               f"(file, network, process or introspection)")
        if attr in DISPATCH_METHODS and not getattr(node, "_checked_call", False):
            self._reject(node, f".{attr} may only be called directly")
        if isinstance(node.ctx, (ast.Store, ast.Del)) and not (
            isinstance(node.value, ast.Name) and node.value.id == "self"
        ):
            # Monkey-patching numpy/pandas (np.isnan = ...) could fool the validators.
            self._reject(node, f"assignment to attribute {attr!r} of anything but self "
                               f"is not allowed")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in MUTATING_METHODS:
            root = self._rooted_in_import(func.value)
            if root is not None:
                self._reject(node, f"calling .{func.attr}() on an object of {root!r} is not "
                                   f"allowed (it would change the library for everyone)")
        if isinstance(func, ast.Attribute) and func.attr in DISPATCH_METHODS:
            func._checked_call = True  # type: ignore[attr-defined]
            # With ** or * the function argument is invisible: agg(**{"func": "eval", ...})
            # would look a method up by name. Name it instead.
            for keyword in node.keywords:
                if keyword.arg is None:
                    self._reject(keyword.value, f"**-unpacked arguments to .{func.attr}() are "
                                                f"not allowed (pass the function by name: "
                                                f"func=...)")
            for argument in node.args:
                if isinstance(argument, ast.Starred):
                    self._reject(argument, f"*-unpacked arguments to .{func.attr}() are not "
                                           f"allowed")
            arguments = [a for a in node.args if not isinstance(a, ast.Starred)] + [
                k.value for k in node.keywords if k.arg in ("func", "arg", "f")]
            for argument in arguments:
                if not self._is_safe_function(argument):
                    self._reject(argument, f"the function given to .{func.attr}() must be a "
                                           f"lambda, a function defined in this file, a "
                                           f"numpy/pandas/math function or a standard "
                                           f"aggregation name such as 'mean'")
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_BUILTINS:
            func._checked_call = True  # type: ignore[attr-defined]
            attr_arg = node.args[1] if len(node.args) >= 2 else None
            if attr_arg is None:
                self._reject(node, f"{func.id}() without a literal attribute name")
            elif not (isinstance(attr_arg, ast.Constant) and isinstance(attr_arg.value, str)):
                self._reject(node, f"{func.id}() with a non-literal attribute name")
            else:
                attr = attr_arg.value
                if (_is_dunder(attr) or attr.startswith("_") or _forbidden_name(attr)
                        or attr in DISPATCH_METHODS):
                    self._reject(node, f"{func.id}() of forbidden attribute {attr!r}")
        self.generic_visit(node)

    def _is_safe_function(self, node: ast.AST) -> bool:
        """True for expressions that are surely functions (or harmless constants)."""
        if isinstance(node, ast.Lambda):
            return True
        if isinstance(node, ast.Constant):
            return not isinstance(node.value, (str, bytes)) or node.value in SAFE_FUNCTION_NAMES
        if isinstance(node, ast.Name):
            return node.id in self.safe_functions
        if isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            return isinstance(root, ast.Name) and root.id in self.module_aliases
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self._is_safe_function(e) for e in node.elts)
        if isinstance(node, ast.Dict):  # {column: func}: keys are labels
            return all(self._is_safe_function(v) for v in node.values)
        return False

    def _rooted_in_import(self, node: ast.AST) -> str | None:
        """The imported name an attribute/subscript chain starts from (np in np.a[0].b)."""
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.imported:
            return node.id
        return None

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = self._rooted_in_import(node.value)
            if root is not None:
                self._reject(node, f"assignment into an object of {root!r} is not allowed "
                                   f"(it would change the library for everyone)")
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # `case C(__class__=x)` reads attributes by name, like getattr.
        for attr in node.kwd_attrs:
            if _is_dunder(attr) or attr.startswith("_") or _forbidden_name(attr):
                self._reject(node, f"class pattern reading forbidden attribute {attr!r}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str):
            return
        text = node.value
        # "{0.__class__}".format(x) and similar reach dunders through strings.
        if _DUNDER_IN_TEXT.search(text):
            self._reject(node, "string literal containing a dunder name "
                               f"{_DUNDER_IN_TEXT.search(text).group(0)!r}")
        if _STRING_AT_LOCAL.search(text):
            self._reject(node, "string literal using pandas' '@local' expression syntax "
                               "(eval/query run code from strings)")
        match = _STRING_MODULE_PATH.search(text) or _STRING_CALL.search(text)
        if match:
            self._reject(node, f"string literal that looks like code: "
                               f"{text[match.start():match.end() + 12].strip()!r}")

    # --- definitions -----------------------------------------------------------
    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if _is_dunder(node.name) and node.name not in ALLOWED_DUNDER_DEFS:
            self._reject(node, f"definition of dunder method {node.name!r} is not allowed")
        if node.name in PROTECTED_METHODS:
            self._reject(node, f"overriding {node.name!r} is not allowed "
                               f"(implement generate_signals)")
        if isinstance(node, ast.AsyncFunctionDef):
            self._reject(node, "async functions are not allowed")
        self.generic_visit(node)

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self._reject(node, "custom metaclasses are not allowed")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self._reject(node, "'global' statements are not allowed")

    def visit_Await(self, node: ast.Await) -> None:
        self._reject(node, "await is not allowed")
        self.generic_visit(node)


def _imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def _safe_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names bound only to functions, names bound only to allowed modules).

    A name that is ever assigned, used as a parameter or loop target could hold a
    string at run time, so it is not considered a function.
    """
    defined: set[str] = set()
    modules: set[str] = set()
    rebound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.ClassDef):
            rebound.add(node.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _allowed_module(alias.name):
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _allowed_module(node.module or ""):
            for alias in node.names:
                defined.add(alias.asname or alias.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            rebound.add(node.id)
        elif isinstance(node, ast.arg):
            rebound.add(node.arg)
    builtins = set(SAFE_BUILTIN_FUNCTIONS) - rebound
    return (defined - rebound) | builtins, modules - rebound - defined


def _is_super_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "super")


def static_check(code: str) -> list[str]:
    """All reasons (with line numbers) why `code` is unsafe; an empty list means ok."""
    try:
        tree = ast.parse(code, filename="<strategy>", mode="exec")
    except SyntaxError as err:
        return [f"line {err.lineno}: syntax error: {err.msg}"]
    except ValueError as err:  # e.g. null bytes in the source
        return [f"line ?: source cannot be parsed: {err}"]
    checker = _Checker(tree)
    checker.visit(tree)
    return sorted(checker.reasons, key=_line_of)


def _line_of(reason: str) -> int:
    head = reason.split(":", 1)[0].removeprefix("line ").strip()
    return int(head) if head.isdigit() else 0


def declared_name(code: str) -> str | None:
    """The `name = "..."` class attribute of the first class in `code`, if readable."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name)
                        and stmt.targets[0].id == "name"
                        and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)):
                    return stmt.value.value
    return None
