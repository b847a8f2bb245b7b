"""scripts/setup.sh says what it does while it does it (a first install takes minutes).

The script runs for real on a copy of the project whose interpreter, uv and airflow are
stubs that record their arguments, so the test needs no network and takes a second.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUB_PYTHON = r"""#!/usr/bin/env bash
# A stand-in interpreter: `-m venv DIR` makes a venv of stubs; anything else is recorded.
echo "python $*" >> "$CALLS"
if [ "${1:-}" = "-m" ] && [ "${2:-}" = "venv" ]; then
  mkdir -p "$3/bin"
  for tool in python airflow; do cp "$0" "$3/bin/$tool"; done
fi
if [ "${1:-}" = "-m" ] && [ "${2:-}" = "pip" ] && [ "${3:-}" = "install" ]; then
  printf '#!/usr/bin/env bash\necho "uv $*" >> "$CALLS"\necho "Resolved 200 packages" >&2\necho "Installed 200 packages" >&2\n' > "$(dirname "$0")/uv"
  chmod +x "$(dirname "$0")/uv"
fi
[ "${1:-}" = "--version" ] && echo "Python 3.11.7"
exit 0
"""


def _project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "scripts/env.sh", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3.11"
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "CALLS": str(tmp_path / "calls.log"),
           "PYTHON": "python3.11"}
    return root, env


def _run(root: Path, env: dict[str, str]) -> str:
    result = subprocess.run(["bash", str(root / "scripts" / "setup.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=60)  # one stream: the order shows
    assert result.returncode == 0, result.stdout
    return result.stdout


def test_every_stage_is_announced_before_it_runs_and_uv_shows_its_progress(tmp_path):
    root, env = _project(tmp_path)
    out = _run(root, env)
    stages = [line for line in out.splitlines() if line.startswith("==> [")]
    assert [s[5:8] for s in stages] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"], out
    n_pinned = sum(1 for line in (ROOT / "requirements.txt").read_text().splitlines() if line[:1].isalnum())
    assert f"installing {n_pinned} pinned packages from requirements.txt" in stages[2]
    assert out.index("==> [3/6]") < out.index("Resolved 200 packages") < out.index("==> [4/6]")
    assert "==> ready in" in out
    uv_calls = [c for c in Path(env["CALLS"]).read_text().splitlines() if c.startswith("uv ")]
    assert len(uv_calls) == 2 and all(" -q" not in c for c in uv_calls), uv_calls  # uv's progress not hidden


def test_a_second_run_says_there_is_nothing_to_install(tmp_path):
    root, env = _project(tmp_path)
    _run(root, env)
    os.remove(env["CALLS"])
    out = _run(root, env)
    assert "==> [1/6] .venv up to date with requirements.txt: nothing to install" in out
    assert not any(c.startswith("uv ") for c in Path(env["CALLS"]).read_text().splitlines())
