"""SQL lives in include/sql/queries and is run by the store's repositories only."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from blofin_pipeline.store.connection import SQL_DIR

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("blofin_pipeline", "plugins")
STORE = ROOT / "blofin_pipeline" / "store"
# The statements as this project writes them (keywords upper case); prose stays out.
SQL = re.compile(r"\b(SELECT(?=\s+[\w*(])|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)")


def _python_files(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py") if "__pycache__" not in p.parts)


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal; in an f-string each replacement field reads ``_``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "_" for v in node.values)
            found.append((node.lineno, text))
    return found


def sql_outside_store() -> list[str]:
    offences = []
    for path in _python_files(*SOURCES):
        if STORE in path.parents:
            continue
        for line, text in _string_literals(path):
            match = SQL.search(text)
            if match:
                offences.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r} in {text.strip()[:80]!r}")
    return offences


def test_no_sql_text_in_python_outside_store():
    offences = sql_outside_store()
    assert not offences, "SQL in Python outside blofin_pipeline/store (move it to include/sql/queries):\n" + "\n".join(
        offences)


def test_the_scan_finds_sql_in_a_literal(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('q = "SELECT a FROM t"\nu = f"UPDATE {table} SET x = 1"\nok = "select the best strategy"\n')
    hits = [line for line, text in _string_literals(sample) if SQL.search(text)]
    assert hits == [1, 2]


def test_every_query_file_is_referenced_by_python():
    literals = {text for path in _python_files(*SOURCES) for _, text in _string_literals(path)}
    unused = sorted(p.name for p in (SQL_DIR / "queries").glob("*.sql") if p.stem not in literals)
    assert not unused, f"query files no Python module names (delete them or use them): {unused}"


def test_every_query_file_is_run_by_the_repository_it_is_named_for():
    misplaced = []
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        repository = STORE / f"{path.stem.split('_')[0]}.py"
        if not repository.exists() or path.stem not in {text for _, text in _string_literals(repository)}:
            misplaced.append(f"{path.name}: expected in {repository.relative_to(ROOT)}")
    assert not misplaced, "query files are <aggregate>_<what>.sql, run by store/<aggregate>.py:\n" + "\n".join(
        misplaced)
