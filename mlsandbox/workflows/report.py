"""`mlsandbox report`: a self-contained HTML (and Markdown) report of a workflow run.

The report is built from what the run logged — its tables, figures, best recipe and cost
metrics — so it can be regenerated for any finished run, on any machine that reaches the
tracking store.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.errors import InvalidRunError

FIGURES = [
    (artifacts.RANKING_FIGURE, "Single-OP pools against the random pool"),
    (artifacts.STAT_CORRELATION_FIGURE, "Correlation of OP stats"),
    (artifacts.STAT_DENDROGRAM, "Clusters of OP stats"),
    (artifacts.METRIC_CORRELATION_FIGURE, "Correlation of benchmark scores"),
    (artifacts.PYRAMID_FIGURE, "The pyramid of the top-k pools"),
    (artifacts.DUPLICATION_FIGURE, "The duplication study"),
]
TABLES = [("Ranking of single-OP pools", artifacts.RANKING_TABLE), ("Refined recipes", artifacts.RECIPES_TABLE)]
COST = [("wall_s", "wall time (s)"), ("cells_run", "cells run"), ("cells_reused", "cells reused"),
        ("cells_failed", "cells failed"), ("train_eval_s", "training + evaluation (s)"),
        ("overhead_share", "sandbox overhead share")]


@dataclass
class Report:
    title: str
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (heading, markdown, html)

    def add(self, heading: str, markdown: str, html_body: str) -> None:
        self.sections.append((heading, markdown, html_body))

    def markdown(self) -> str:
        return f"# {self.title}\n\n" + "\n".join(f"## {h}\n\n{md}\n" for h, md, _ in self.sections)

    def html(self) -> str:
        body = "\n".join(f"<section><h2>{html.escape(h)}</h2>\n{b}</section>" for h, _, b in self.sections)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}</body></html>\n")


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
        "pre{background:#f6f8fa;padding:1em;overflow:auto}figcaption{color:#555;font-size:13px}")


#: The entry points whose runs a report describes.
REPORTED_ENTRY_POINTS = ("probe", "analyze", "refine", "workflow")
WORKFLOW_RUN = "the run id of a workflow run (printed by `mlsandbox workflow`, probe, analyze or refine)"


def workflow_run(run_id: str) -> mlflow.entities.Run:
    """The workflow run ``run_id``; InvalidRunError when there is none or it is another kind of run."""
    run = tracking.find_run(run_id, WORKFLOW_RUN)
    tags = run.data.tags
    if tags.get(tracking.KIND) != "workflow" or tags.get(tracking.ENTRY_POINT) not in REPORTED_ENTRY_POINTS:
        raise InvalidRunError(f"run {run_id} is {tracking.describe_run(run)}, not a workflow run; "
                              f"expected {WORKFLOW_RUN}")
    return run


def build_report(run_id: str, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` for a workflow run into ``out_dir``; return both paths."""
    run = workflow_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        root = tracking.download_artifacts(run_id, None, Path(tmp))
        report = _report(run, root)
        out_dir.mkdir(parents=True, exist_ok=True)
        md = out_dir / artifacts.filename(artifacts.REPORT_MARKDOWN)
        page = out_dir / artifacts.filename(artifacts.REPORT_HTML)
        md.write_text(report.markdown(), encoding="utf-8")
        page.write_text(report.html(), encoding="utf-8")
    return page, md


def log_report(run_id: str) -> None:
    """Build the report and log it to the run (``artifacts.REPORT_HTML`` and ``REPORT_MARKDOWN``)."""
    with tempfile.TemporaryDirectory() as tmp:
        build_report(run_id, artifacts.local(Path(tmp), artifacts.REPORT_HTML).parent)
        mlflow.MlflowClient().log_artifacts(run_id, tmp)


def _report(run: mlflow.entities.Run, root: Path) -> Report:
    data = run.data
    report = Report(f"mlsandbox report — {data.tags.get(tracking.PROJECT, '')} ({run.info.run_name})")
    params = {k: data.params.get(k, "") for k in ("dataset", "dataset_digest", "ops", "model_type", "seeds", "benchmarks")}
    report.add("Run", _kv_md(params | {"run id": run.info.run_id}), _kv_html(params | {"run id": run.info.run_id}))
    best = _read_text(root / artifacts.BEST_RECIPE)
    if best is not None:
        delta = data.metrics.get("best_recipe_delta_pct", float("nan"))
        name = data.params.get("best_recipe", "")
        text = f"**{name}**: {delta:+.2f}% over the random pool of the same size."
        dj = (_read_text(root / artifacts.BEST_RECIPE_DATA_JUICER)
              or _read_text(root / artifacts.BEST_RECIPE_DATA_JUICER_NOTE) or "")
        report.add("Best recipe", f"{text}\n\n```yaml\n{best}```\n\nData-Juicer:\n\n```yaml\n{dj}```",
                   f"<p>{html.escape(text).replace('**', '')}</p><pre>{html.escape(best)}</pre>"
                   f"<p>Data-Juicer recipe:</p><pre>{html.escape(dj)}</pre>")
    for title, path in TABLES:
        table = _read_table(root / path)
        if table is not None:
            report.add(title, table.to_markdown(index=False, floatfmt=".4g"),
                       table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
    clusters = _read_text(root / artifacts.CLUSTERS)
    if clusters is not None:
        report.add("Clusters", f"```yaml\n{clusters}```", f"<pre>{html.escape(clusters)}</pre>")
    figs = [(root / p, caption) for p, caption in FIGURES if (root / p).exists()]
    if figs:
        report.add("Figures", "\n\n".join(f"![{c}]({p.relative_to(root)})" for p, c in figs),
                   "".join(f"<figure><img alt='{html.escape(c)}' src='data:image/png;base64,"
                           f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{html.escape(c)}</figcaption></figure>"
                           for p, c in figs))
    cost = {label: _fmt(data.metrics[key]) for key, label in COST if key in data.metrics}
    report.add("Cost", _kv_md(cost), _kv_html(cost))
    return report


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _kv_md(values: Mapping[str, object]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in values.items())


def _kv_html(values: Mapping[str, object]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def _read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _read_table(path: Path) -> pd.DataFrame | None:
    """An MLflow table artifact (``{"columns": [...], "data": [...]}``) as a frame."""
    if not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    return pd.DataFrame(payload["data"], columns=payload["columns"])


__all__ = ["build_report", "log_report", "workflow_run"]
