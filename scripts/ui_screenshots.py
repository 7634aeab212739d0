"""Screenshots of the MLflow UI for docs/mlflow-ui.md, taken in headless Chromium with Playwright.

    pip install playwright            # the browser itself: Chromium from the system
    mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000 &
    python scripts/ui_screenshots.py --url http://127.0.0.1:5000 --tracking-uri sqlite:///mlflow.db

The store needs a finished `mlsandbox workflow` run and a `mlsandbox pool` run in the experiment.
Run ids are looked up with the tracking URI unless given (`--workflow-run`, `--pool-run`).
Writes docs/img/mlflow-ui-{runs,filter,chart,dataset,artifacts}.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import quote

import mlflow
from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1700, 900
MAX_BYTES = 300_000


def find_runs(client: mlflow.MlflowClient, experiment: str, workflow_run: str | None, pool_run: str | None):
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        sys.exit(f"no experiment {experiment!r} in {client.tracking_uri}")
    eid = exp.experiment_id
    if workflow_run is None:
        found = client.search_runs(
            [eid], "tags.`mlsandbox.entry_point` = 'workflow' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        if not found:
            sys.exit("no finished workflow run: run `mlsandbox workflow --quick` first")
        workflow_run = found[0].info.run_id
    if pool_run is None:
        found = client.search_runs(
            [eid], "tags.`mlsandbox.kind` = 'pool' and tags.`mlsandbox.op` = 'stopwords_filter'",
            order_by=["attributes.start_time DESC"], max_results=1,
        ) or client.search_runs([eid], "tags.`mlsandbox.kind` = 'pool'", max_results=1)
        if not found:
            sys.exit("no pool run: run `mlsandbox pool` first")
        pool_run = found[0].info.run_id
    return eid, workflow_run, pool_run


class UI:
    def __init__(self, page: Page, url: str, eid: str, out: Path):
        self.page, self.url, self.eid, self.out = page, url.rstrip("/"), eid, out
        self.state_key = f'MLflowLocalStorage-1.1-ExperimentPage-["{eid}"]-ReactComponentState'

    def dismiss(self) -> None:
        """Close the tip popups and the assistant side panel."""
        for name in ("Got it", "Dismiss"):
            buttons = self.page.get_by_role("button", name=name, exact=True)
            for i in range(buttons.count()):
                if buttons.nth(i).is_visible():
                    buttons.nth(i).click()
        close = self.page.locator("button[aria-label='Close']")
        for i in range(close.count()):
            if close.nth(i).is_visible():
                close.nth(i).click()
        self.page.wait_for_timeout(300)

    def model_training_mode(self) -> None:
        self.page.goto(f"{self.url}/#/experiments/{self.eid}")
        self.page.wait_for_timeout(3000)
        self.dismiss()
        self.page.get_by_text("Model training", exact=True).first.click()
        self.page.get_by_text("matching runs").first.wait_for(timeout=30_000)
        self.dismiss()

    def runs_page(self, search: str = "", order: str = "attributes.start_time", asc: bool = False, view: str = "runs",
                  **state) -> None:
        """The runs table (or chart view) with the table's stored state (columns, expanded rows) set first."""
        # Leave the app first: it writes its own state back to localStorage while it runs.
        self.page.goto(f"{self.url}/health")
        current = json.loads(self.page.evaluate(f"localStorage.getItem({json.dumps(self.state_key)})") or "{}")
        current.update(state)
        self.page.evaluate(f"localStorage.setItem({json.dumps(self.state_key)}, {json.dumps(json.dumps(current))})")
        query = (
            f"workflowType=machine_learning&searchFilter={quote(search)}&orderByKey={quote(order)}"
            f"&orderByAsc={'true' if asc else 'false'}&startTime=ALL&lifecycleFilter=Active"
            f"&modelVersionFilter=All+Runs&datasetsFilter=W10%3D"
        )
        self.page.goto(f"{self.url}/#/experiments/{self.eid}/runs?{query}")
        self.page.get_by_text("matching runs").first.wait_for(timeout=30_000)
        self.settle(2500)
        if view == "chart":
            self.page.locator("label:has(input[name='runs-view-mode'][value='CHART'])").click()
            self.settle(3000)

    def settle(self, ms: int = 2000) -> None:
        self.page.wait_for_timeout(ms)
        self.dismiss()

    def shot(self, name: str, clip: dict | None = None, element=None) -> Path:
        path = self.out / f"mlflow-ui-{name}.png"
        if element is not None:
            element.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), clip=clip)
        size = path.stat().st_size
        print(f"{path} ({size // 1024} KB)")
        if size > MAX_BYTES:
            print(f"  warning: {path.name} is over {MAX_BYTES // 1000} KB", file=sys.stderr)
        return path

    def main_area(self, top: int = 0, height: int | None = None) -> dict:
        """The page without the left navigation bar."""
        box = self.page.locator("main").first.bounding_box() if self.page.locator("main").count() else None
        x = int(box["x"]) if box else 0
        return {"x": x, "y": top, "width": WIDTH - x, "height": (height or HEIGHT) - top}


COLUMNS = [
    "params.`pool`", "params.`op`", "params.`split`", "params.`seed`",
    "metrics.`delta_pct`", "metrics.`score_sum`", "tags.`mlsandbox.kind`",
]
POOL_COLUMNS = ["params.`op`", "params.`split`", "metrics.`size`", "metrics.`stat_mean`", "tags.`mlsandbox.pool_digest`"]
# Widths (pixels) of the chosen columns, so that pool names and values are not cut.
NAME_WIDTH = {
    "params.`pool`": 260, "params.`op`": 200, "params.`split`": 80, "params.`seed`": 60,
    "metrics.`delta_pct`": 110, "metrics.`score_sum`": 110, "tags.`mlsandbox.kind`": 110,
}


def take(ui: UI, wf: str, pool: str, only: set[str] | None) -> None:
    page = ui.page
    want = lambda name: only is None or name in only

    if want("runs"):  # the workflow run expanded into its cells
        ui.runs_page(asc=True, selectedColumns=COLUMNS, runsExpanded={wf: True}, columnWidths=NAME_WIDTH)
        ui.shot("runs", clip=ui.main_area())

    if want("filter"):  # one OP's pools and cells, best first
        ui.runs_page(
            search="tags.mlsandbox.op = 'stopwords_filter'", order="metrics.`delta_pct`",
            selectedColumns=COLUMNS, runsExpanded={}, columnWidths=NAME_WIDTH,
        )
        ui.shot("filter", clip=ui.main_area(height=520))

    if want("chart"):  # delta_pct of every probed single-OP cell
        ui.runs_page(
            search=f"tags.mlflow.parentRunId = '{wf}' and params.split != 'random'",
            view="chart", selectedColumns=COLUMNS, runsExpanded={wf: True}, runsHiddenMode="SHOW_ALL",
            columnWidths=NAME_WIDTH,
        )
        page.get_by_placeholder("Search metric charts").fill("^delta_pct$")
        ui.settle()
        ui.shot("chart", clip=ui.main_area())

    if want("dataset"):  # a pool run: its dataset input
        page.goto(f"{ui.url}/#/experiments/{ui.eid}/runs/{pool}")
        page.get_by_text("About this run", exact=True).first.wait_for(timeout=30_000)
        ui.settle()
        ui.shot("dataset", clip=ui.main_area())

    if want("artifacts"):  # the workflow run's ranking figure
        page.goto(f"{ui.url}/#/experiments/{ui.eid}/runs/{wf}/artifacts/probe/ranking.png")
        ui.settle(3000)
        ui.shot("artifacts", clip=ui.main_area())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:5000", help="the MLflow UI")
    ap.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="the store the UI serves (to find runs)")
    ap.add_argument("--experiment", default="text-quality")
    ap.add_argument("--workflow-run", help="a finished workflow run (default: the latest)")
    ap.add_argument("--pool-run", help="a pool child run (default: the latest stopwords_filter pool)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    ap.add_argument("--only", nargs="*", help="runs filter chart dataset artifacts")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    args = ap.parse_args()

    eid, wf, pool = find_runs(mlflow.MlflowClient(args.tracking_uri), args.experiment, args.workflow_run, args.pool_run)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        ui = UI(page, args.url, eid, args.out)
        ui.model_training_mode()
        take(ui, wf, pool, set(args.only) if args.only else None)
        browser.close()


if __name__ == "__main__":
    main()
