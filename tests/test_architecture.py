"""The layering rules of docs/ARCHITECTURE.md, enforced on the source.

Every import in the library (top-level or inside a function) may only reach its own
package or a package of a lower layer; the library never imports Airflow; modules and
functions stay small enough to read.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "blofin_pipeline"

# Lowest first. A module may import its own unit and any unit listed before it.
LAYERS: list[tuple[str, ...]] = [
    ("exceptions", "numeric", "costs", "timeframes", "config"),
    ("store",),
    ("market",),
    ("backtest",),
    ("strategies",),
    ("llm",),
    ("ml",),
    ("research",),
    ("ranking",),
    ("reporting",),
    ("steps",),
    ("cli", "__main__", "__init__"),
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}
BASE = set(LAYERS[0])
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Kept longer on purpose, each with its reason (docs/ARCHITECTURE.md repeats them).
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(p for p in LIB.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(path: Path) -> str:
    rel = path.relative_to(LIB)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) == 1 else rel.parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "blofin_pipeline":  # from blofin_pipeline import steps
                found += [(node.lineno, f"blofin_pipeline.{a.name}") for a in node.names]
    return found


def _target_unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "blofin_pipeline" or len(parts) < 2:
        return None
    return parts[1]


def test_every_library_module_belongs_to_a_layer():
    unknown = sorted({_unit(p) for p in _modules()} - set(RANK))
    assert not unknown, f"modules outside every layer (add them to LAYERS and ARCHITECTURE.md): {unknown}"


def test_no_import_runs_back_up_the_layers():
    violations = []
    for path in _modules():
        unit = _unit(path)
        for line, module in _imports(path):
            target = _target_unit(module)
            if target is None or target == unit or target not in RANK:
                continue
            if RANK[target] > RANK[unit] or (unit in BASE and target in BASE and
                                              LAYERS[0].index(target) > LAYERS[0].index(unit)):
                violations.append(f"{path.relative_to(ROOT)}:{line} ({unit}) imports {module} ({target})")
    assert not violations, "imports that run back up the layers:\n" + "\n".join(violations)


def test_the_library_never_imports_airflow():
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {m}" for p in _modules() for line, m in _imports(p)
                 if m.split(".")[0] == "airflow"]
    assert not offenders, offenders


@pytest.mark.parametrize("folder", ["blofin_pipeline", "plugins"])
def test_modules_and_functions_stay_small(folder):
    too_long = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES and rel not in LONG_MODULES:
            too_long.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                key = f"{rel}::{node.name}"
                if length > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                    too_long.append(f"{key}: {length} lines")
    assert not too_long, "over the size limits (split them, or list them with a reason):\n" + "\n".join(too_long)


def test_the_layer_rules_catch_an_upward_import(tmp_path):
    # The checker itself must fail on a violation: a store module importing steps.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from blofin_pipeline.steps import run_all\n")
    assert _imports(bad) == [(2, "blofin_pipeline.steps")]
    assert RANK[_target_unit("blofin_pipeline.steps")] > RANK["store"]
