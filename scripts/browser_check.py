#!/usr/bin/env python
"""Look at a finished blofin_daily run the way a person would: in headless Debian chromium.

Logs in to the Airflow 3 UI (simple auth manager form), opens the DAG's grid, the run's
task instances, one task's log, the Trigger form and the run's HTML report (file://),
saves a screenshot of each page, and prints what the pages show as JSON (task ids and
states, log lines, report headings, the form's params with their defaults), so a test
can assert on it. It drives chromium with python playwright (`executable_path`, no
browser download).

    python scripts/browser_check.py --url http://127.0.0.1:8080 --run-id RUN_ID \\
        --report $BLOFIN_WORKSPACE/data/reports/2026-11-24.html \\
        --out $BLOFIN_WORKSPACE/screenshots [--log-task ingest_candles --log-task score_strategies:0] \
        [--json-out FILE]

Exit code 0 when every page was rendered and read, 1 otherwise (the error is printed).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

CHROMIUM = "/usr/bin/chromium"
# Known to work on these machines: without the networking flags chromium keeps trying to
# reach Google's hosts through a closed network.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 90_000  # a loaded 2-core machine renders the UI slowly


def fetch_json(url: str, token: str | None = None, body: dict | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def dag_params(url: str, user: str, password: str, dag_id: str) -> dict[str, dict]:
    """The DAG's params (value, description, schema) as the REST API reports them."""
    token = fetch_json(f"{url}/auth/token", body={"username": user, "password": password})["access_token"]
    details = fetch_json(f"{url}/api/v2/dags/{dag_id}/details", token)
    return details.get("params") or {}


def login(page, url: str, user: str, password: str, next_path: str) -> None:
    page.goto(f"{url}/auth/login?next={quote(next_path)}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/auth/login" not in u, timeout=TIMEOUT_MS)


def grid(page, url: str, dag_id: str, run_id: str, shot: Path) -> dict:
    """Task ids of the grid, and each task's state in the run's column (from its tooltip)."""
    page.goto(f"{url}/dags/{dag_id}")
    cell_prefix = f"grid-{run_id}-"
    page.wait_for_selector(f"[data-testid^='{cell_prefix}']", timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    task_ids = [el.get_attribute("data-testid")[len("task-"):]
                for el in page.query_selector_all("[data-testid^='task-']")
                if el.get_attribute("data-testid") != "task-state-badge"]
    states: dict[str, str] = {}
    for cell in page.query_selector_all(f"[data-testid^='{cell_prefix}']"):
        task_id = cell.get_attribute("data-testid")[len(cell_prefix):]
        cell.hover()
        tip = page.locator("[data-part=content]", has_text=f"Task ID: {task_id}").last
        tip.wait_for(state="visible", timeout=TIMEOUT_MS)
        match = re.search(r"State:\s*([^\n]+)", tip.inner_text())
        states[task_id] = match.group(1).strip() if match else ""
        page.mouse.move(0, 0)
        tip.wait_for(state="hidden", timeout=TIMEOUT_MS)
    page.screenshot(path=str(shot), full_page=True)
    return {"task_ids": task_ids, "states": states, "screenshot": str(shot)}


def run_page(page, url: str, dag_id: str, run_id: str, shot: Path) -> dict:
    """The run's state and its task instance table (task id, map index, state)."""
    page.goto(f"{url}/dags/{dag_id}/runs/{quote(run_id)}")
    page.wait_for_selector("table tbody tr", timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    headers = [h.inner_text().strip() for h in page.query_selector_all("table thead th")]
    col = {name: headers.index(name) for name in ("Task ID", "Map Index", "State") if name in headers}
    rows = []
    for tr in page.query_selector_all("table tbody tr"):
        cells = [td.inner_text().strip() for td in tr.query_selector_all("td")]
        if len(cells) > max(col.values(), default=0):
            rows.append({name.lower().replace(" ", "_"): cells[i] for name, i in col.items()})
    header = page.query_selector("[data-testid=header-card]")
    page.screenshot(path=str(shot), full_page=True)
    return {"header": header.inner_text() if header else "", "task_instances": rows, "screenshot": str(shot)}


def task_log(page, url: str, dag_id: str, run_id: str, task_id: str, map_index: int, shot: Path) -> dict:
    """The lines of a task's log as the log page renders them."""
    path = f"{url}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}"
    if map_index >= 0:
        path += f"/mapped/{map_index}"
    page.goto(path)
    page.wait_for_selector("[data-testid=virtualized-list]", timeout=TIMEOUT_MS)
    page.locator("[data-testid=virtualized-list]", has_text=" INFO - ").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    text = page.inner_text("[data-testid=virtual-scroll-container]")
    page.screenshot(path=str(shot), full_page=True)
    return {"task_id": task_id, "map_index": map_index, "lines": [ln for ln in text.splitlines() if ln.strip()],
            "screenshot": str(shot)}


def _field(name: str) -> str:
    """The form field of a param: an input/textarea named, or a select whose id is, element_<name>."""
    return f"[name='element_{name}'], [id='element_{name}']"


def trigger_form(page, url: str, dag_id: str, params: dict[str, dict], shot: Path,
                 submit: dict[str, Any] | None = None) -> dict:
    """Open Trigger on the DAG page: every param's field, shown value and description.

    With `submit`, type those values into their fields and press Trigger (a run is created).
    """
    page.goto(f"{url}/dags/{dag_id}")
    page.click("[data-testid=trigger-dag-button]", timeout=TIMEOUT_MS)
    dialog = page.locator("[role=dialog][data-state=open]", has_text="Run Parameters")
    dialog.wait_for(timeout=TIMEOUT_MS)
    first = next(iter(params), None)
    if first:
        dialog.locator(_field(first)).first.wait_for(state="attached", timeout=TIMEOUT_MS)
    text = dialog.text_content() or ""
    fields: dict[str, dict] = {}
    for name, spec in params.items():
        el = dialog.locator(_field(name))
        found = el.count() > 0
        shown: Any = None
        if found:
            tag = el.first.evaluate("e => e.tagName.toLowerCase()")
            kind = el.first.get_attribute("type") or ""
            if tag == "input" and kind == "checkbox":
                shown = el.first.is_checked()
            elif tag in ("input", "textarea"):
                shown = el.first.input_value()
            else:  # a select rendered as a div: its text is the chosen value
                shown = (el.first.text_content() or "").strip()
        description = spec.get("description") or ""
        fields[name] = {"in_form": found, "visible": found and el.first.is_visible(), "shown": shown, "default": spec.get("value"),
                        "description": description, "description_shown": bool(description) and description in text,
                        "label_shown": f"{name} *" in text or f"{name}*" in text or name in text}
    # The UI marks a section as erroneous when a required field (a type without "null") is empty.
    required_empty = [name for name in params
                      if dialog.locator(_field(name)).count()
                      and dialog.locator(_field(name)).first.get_attribute("required") is not None
                      and fields[name]["shown"] == ""]
    dialog.screenshot(path=str(shot))
    result = {"fields": fields, "required_but_empty": required_empty, "screenshot": str(shot)}
    if submit:
        for name, value in submit.items():
            dialog.locator(_field(name)).first.fill(str(value))
        button = dialog.locator("[data-testid=trigger-dag-submit]")
        page.wait_for_timeout(500)  # the form validates as it changes
        result["submit_enabled"] = button.is_enabled()
        if result["submit_enabled"]:
            button.click()
            dialog.wait_for(state="detached", timeout=TIMEOUT_MS)
            result["submitted"] = submit
    return result


def report(page, path: Path, shot: Path) -> dict:
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    headings = [h.inner_text().strip() for h in page.query_selector_all("h1, h2, h3")]
    page.screenshot(path=str(shot), full_page=True)
    return {"title": page.title(), "headings": headings, "text": page.inner_text("body"), "screenshot": str(shot)}


def check(args: argparse.Namespace) -> dict:
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = dag_params(args.url, args.user, args.password, args.dag_id)
    result: dict[str, Any] = {"url": args.url, "run_id": args.run_id, "screenshots_dir": str(out)}
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=args.chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1400})
        try:
            browser.set_default_timeout(TIMEOUT_MS)
            page = browser.new_page()
            login(page, args.url, args.user, args.password, f"/dags/{args.dag_id}")
            result["grid"] = grid(page, args.url, args.dag_id, args.run_id, out / "01-grid.png")
            result["run"] = run_page(page, args.url, args.dag_id, args.run_id, out / "02-run.png")
            result["logs"] = []
            for i, spec in enumerate(args.log_task or ["ingest_candles"]):
                task_id, _, map_index = spec.partition(":")
                index = int(map_index) if map_index else -1
                name = task_id + (f"-{index}" if index >= 0 else "")
                result["logs"].append(task_log(page, args.url, args.dag_id, args.run_id, task_id, index,
                                               out / f"03-log-{i + 1}-{name}.png"))
            submit = json.loads(args.submit_trigger) if args.submit_trigger else None
            result["trigger_form"] = trigger_form(page, args.url, args.dag_id, params, out / "04-trigger-form.png",
                                                  submit)
            if args.report:
                result["report"] = report(page, Path(args.report), out / "05-report.png")
        finally:
            browser.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="Airflow UI, e.g. http://127.0.0.1:8080")
    parser.add_argument("--run-id", required=True, help="the DAG run to look at")
    parser.add_argument("--dag-id", default="blofin_daily")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--log-task", action="append",
                        help="TASK_ID or TASK_ID:MAP_INDEX whose log page is opened (repeatable; default ingest_candles)")
    parser.add_argument("--report", help="the run's HTML report, opened as file://")
    parser.add_argument("--out", required=True, help="folder for the screenshots")
    parser.add_argument("--submit-trigger", metavar="JSON",
                        help='fill these params in the Trigger form and press Trigger, e.g. \'{"n_designs": 1}\'')
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--json-out", help="write the result here as well as to stdout")
    args = parser.parse_args(argv)
    try:
        result = check(args)
    except Exception as err:  # report which page failed, then fail
        print(f"browser check failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2, default=str)
    if args.json_out:
        Path(args.json_out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
