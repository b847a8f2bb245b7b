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


from blofin_pipeline.strategies.safety_rules import (  # noqa: F401 - re-exported
    ALLOWED_DUNDER_DEFS,
    ALLOWED_MODULES,
    ALLOWED_PROJECT_IMPORTS,
    ATTRIBUTE_BUILTINS,
    DISPATCH_METHODS,
    DUNDER_IN_TEXT,
    FORBIDDEN_ATTRIBUTES,
    FORBIDDEN_ATTRIBUTE_PREFIXES,
    FORBIDDEN_BUILTINS,
    MUTATING_BUILTINS,
    MUTATING_METHODS,
    PROTECTED_METHODS,
    SAFE_BUILTIN_FUNCTIONS,
    SAFE_FUNCTION_NAMES,
    SAFE_TO_ATTRIBUTES,
    STRING_AT_LOCAL,
    STRING_CALL,
    STRING_MODULE_PATH,
)


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
        if DUNDER_IN_TEXT.search(text):
            self._reject(node, "string literal containing a dunder name "
                               f"{DUNDER_IN_TEXT.search(text).group(0)!r}")
        if STRING_AT_LOCAL.search(text):
            self._reject(node, "string literal using pandas' '@local' expression syntax "
                               "(eval/query run code from strings)")
        match = STRING_MODULE_PATH.search(text) or STRING_CALL.search(text)
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
