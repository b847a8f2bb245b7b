"""The e2e screenshot folders: one per run, so two test runs of one checkout at once (CI and a
developer, say) never delete each other's screenshots (a CI run once lost 01-grid.png that way)."""
from __future__ import annotations

import os

from tests.e2e import conftest


def test_each_run_gets_its_own_folder_and_keeps_the_newest(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOFIN_SCREENSHOTS", str(tmp_path))
    (tmp_path / "server_ui").mkdir()
    (tmp_path / "server_ui" / "01-grid.png").write_bytes(b"old layout")
    first = conftest.screenshots_dir("server_ui")
    (first / "01-grid.png").write_bytes(b"png")
    second = conftest.screenshots_dir("server_ui")
    assert second != first and second.parent == first.parent == tmp_path / "server_ui"
    assert (first / "01-grid.png").read_bytes() == b"png"  # the other run's file survives
    assert os.readlink(tmp_path / "server_ui" / "latest") == second.name
    assert not (tmp_path / "server_ui" / "01-grid.png").exists()
    made = [first, second] + [conftest.screenshots_dir("server_ui") for _ in range(conftest.KEEP_SCREENSHOT_RUNS)]
    kept = sorted(p for p in (tmp_path / "server_ui").iterdir() if not p.is_symlink())
    assert kept == sorted(made[-conftest.KEEP_SCREENSHOT_RUNS:])
