"""`mlsandbox report`: a self-contained HTML (and Markdown) report of a workflow run.

The report is built from what the run logged — its tables, figures, best recipe and cost
metrics — so it can be regenerated for any finished run, on any machine that reaches the
tracking store.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.delta import ALPHA, CARRIED_FAMILY, WIN_TEXT, Confirmation, DeltaSummary, claim_words, not_a_win_reason
from mlsandbox.errors import InvalidRunError
from mlsandbox.executors.compare import table_markdown, without_constant
from mlsandbox.executors.fidelity import DECIDE, SCREEN
from mlsandbox.files import published, scratch_folder
from mlsandbox.project import output_folder
from mlsandbox.recipes import RANDOM_SELECTOR

FIGURES = [
    (artifacts.RANKING_FIGURE, "Single-OP pools against the random pool"),
    (artifacts.STAT_CORRELATION_FIGURE, "Correlation of OP stats"),
    (artifacts.STAT_DENDROGRAM, "Clusters of OP stats"),
    (artifacts.METRIC_CORRELATION_FIGURE, "Correlation of benchmark scores"),
    (artifacts.METRIC_DENDROGRAM, "Clusters of benchmarks"),
    (artifacts.PYRAMID_FIGURE, "The pyramid of the top-k pools"),
    (artifacts.DUPLICATION_FIGURE, "The duplication study"),
]
TABLES = [("Ranking of single-OP pools", artifacts.RANKING_TABLE), ("Refined recipes", artifacts.RECIPES_TABLE)]
COST = [("wall_s", "wall time (s)"), ("stats_s", "of which before the steps: data, stats, checks (s)"), ("cells_run", "cells run"), ("cells_reused", "cells reused"),
        ("cells_failed", "cells failed"), ("confirm.cells_run", "cells run to confirm the answer"),
        ("cells_run.screen", "cells run by the screening model"),
        ("cells_run.decide", "cells run by the deciding model"), ("train_eval_s", "training + evaluation (s)"),
        ("overhead_share", "sandbox overhead share of the steps (after the stats)")]


@dataclass(frozen=True)
class Answer:
    """What the run found, in numbers: the best candidate of the last step and whether it won.

    ``kind`` names what was compared (``recipe``, ``single-OP pool``); ``name`` is empty when
    nothing was measured. ``delta_pct`` and its 95% interval are over seeds; ``p_adjusted`` is
    Holm-adjusted across the ``family`` distinct pools that one model (``fidelity``: the deciding
    model's or the screen's family) compared in one step (``family_step``: ``probe`` for a recipe
    refine carried from the probe; empty in a run logged before it was recorded); ``kept`` of ``documents`` is how
    many distinct documents of the dataset the candidate's pool keeps. ``others`` are the other
    pools of the step that beat the control after the correction. ``confirmed_*`` are the
    winner's delta, interval and plain p-value on ``confirmed_seeds`` fresh seeds (0: not
    measured again; the spec's ``confirm:``).
    """

    kind: str
    name: str
    delta_pct: float = math.nan
    ci_low_pct: float = math.nan
    ci_high_pct: float = math.nan
    p_adjusted: float = math.nan
    family: int = 0
    kept: int = 0
    documents: int = 0
    others: tuple[str, ...] = ()
    confirmed_seeds: int = 0
    confirmed_pct: float = math.nan
    confirmed_ci_low_pct: float = math.nan
    confirmed_ci_high_pct: float = math.nan
    confirmed_p: float = math.nan
    fidelity: str = DECIDE
    family_step: str = ""

    @property
    def won(self) -> bool:
        """Above the random control after Holm's correction (adjusted p < 0.05, positive delta)."""
        return bool(self.name) and self.delta_pct > 0 and self.p_adjusted < ALPHA

    @property
    def confirmed(self) -> bool:
        """Above the random control again on fresh seeds (p < 0.05, positive delta)."""
        return self.confirmed_seeds > 0 and self._confirmation().held

    def text(self) -> str:
        """The answer in words: the best candidate, its delta and interval, its documents, the verdict."""
        if not self.name:
            return f"No {self.kind} was measured (every cell failed or was skipped): there is no answer."
        interval = (f"[{self.ci_low_pct:+.2f}, {self.ci_high_pct:+.2f}]%"
                    if math.isfinite(self.ci_low_pct) and math.isfinite(self.ci_high_pct) else "n/a (no spread over seeds)")
        p = (f"Holm-adjusted p = {self.p_adjusted:.3g} across {self.family_words()}"
             if math.isfinite(self.p_adjusted) else "no p-value")
        share = f" ({100 * self.kept / self.documents:.1f}%)" if self.documents else ""
        facts = (f"{self.name}: {self.delta_pct:+.2f}% over an equal-size random pool (95% interval over "
                 f"seeds {interval}; {p}); its pool keeps {self.kept} of the dataset's {self.documents} "
                 f"samples{share}.")
        if self.won:
            return (f"Best {self.kind}, {facts} {WIN_TEXT} "
                    f"As the best of the {self.kind}s compared, its delta is more likely over- than underestimated"
                    + (f". {self._confirmation().text()}." if self.confirmed_seeds else
                       ": confirm its size on fresh seeds (`confirm:` in the spec)."))
        why = not_a_win_reason(self.p_adjusted)
        if not self.others:
            return (f"No {self.kind} beat the random control after Holm's correction (adjusted p < {ALPHA:g}). "
                    f"The highest delta was {facts} This is not a win: {why}.")
        return (f"The best {self.kind} did not beat the random control after Holm's correction (adjusted p < "
                f"{ALPHA:g}): {facts} This is not a win: {why}. These other pools of the step did beat the control "
                f"after the correction: {', '.join(self.others)}.")

    def family_words(self) -> str:
        """Holm's family exactly: with a screen, the step compared more pools than the answer's model did."""
        model = "screening" if self.fidelity == SCREEN else "deciding"
        where = {artifacts.PROBE: " in the probe", artifacts.REFINE: " in refine"}.get(self.family_step, "")
        return f"the {self.family} distinct pool{'' if self.family == 1 else 's'} the {model} model compared{where}"

    def confirmed_by(self, summary: DeltaSummary | None, seeds: int) -> Answer:
        """This answer with its pool's delta on ``seeds`` fresh seeds (None: every cell failed)."""
        confirmation = asdict(Confirmation.of(summary, seeds))
        return replace(self, **{f"confirmed_{key}": value for key, value in confirmation.items()})

    def _confirmation(self) -> Confirmation:
        return Confirmation(self.confirmed_seeds, self.confirmed_pct, self.confirmed_ci_low_pct,
                            self.confirmed_ci_high_pct, self.confirmed_p)


#: The metrics and param a run logs its :class:`Answer` under (see :func:`log_answer`).
ANSWER_PREFIX = "answer."
_ANSWER_NUMBERS = ("delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted", "family", "kept", "documents",
                   "confirmed_seeds", "confirmed_pct", "confirmed_ci_low_pct", "confirmed_ci_high_pct", "confirmed_p")
_ANSWER_COUNTS = ("family", "kept", "documents", "confirmed_seeds")


def log_answer(run_id: str, answer: Answer) -> None:
    """Log the answer on the run, for the report: numbers as ``answer.*`` metrics, names as params."""
    values = asdict(answer)
    metrics = {ANSWER_PREFIX + k: float(values[k]) for k in _ANSWER_NUMBERS if math.isfinite(float(values[k]))}
    params = {ANSWER_PREFIX + "kind": answer.kind, ANSWER_PREFIX + "name": answer.name,
              ANSWER_PREFIX + "others": ",".join(answer.others), ANSWER_PREFIX + "fidelity": answer.fidelity,
              ANSWER_PREFIX + "family_step": answer.family_step}
    tracking.log_batch(run_id, metrics=metrics, params=params)


def answer_of_run(run: mlflow.entities.Run) -> Answer | None:
    """The :class:`Answer` a run logged, or None (a run that logged none)."""
    params, metrics = run.data.params, run.data.metrics
    if ANSWER_PREFIX + "kind" not in params:
        return None
    numbers: dict[str, Any] = {k: metrics.get(ANSWER_PREFIX + k, math.nan) for k in _ANSWER_NUMBERS}
    numbers.update({k: int(numbers[k]) if math.isfinite(numbers[k]) else 0 for k in _ANSWER_COUNTS})
    others = params.get(ANSWER_PREFIX + "others", "")
    return Answer(params[ANSWER_PREFIX + "kind"], params.get(ANSWER_PREFIX + "name", ""), **numbers,
                  others=tuple(o for o in others.split(",") if o),
                  fidelity=params.get(ANSWER_PREFIX + "fidelity", DECIDE),
                  family_step=params.get(ANSWER_PREFIX + "family_step", ""))


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
    return _settled(run)


def _settled(run: mlflow.entities.Run) -> mlflow.entities.Run:
    """The run, KILLED first if it is RUNNING while its owner is gone (``kill -9``, a machine that went
    down): such a run never ends, nor logs its own report. The runs of its experiment that its
    owner left are ended with it (:func:`tracking.reconcile_stale_runs`, as the next command would)."""
    if run.info.status != "RUNNING" or _own(run.info.run_id):
        return run
    if run.info.run_id not in tracking.reconcile_stale_runs(run.info.experiment_id):
        return run
    return mlflow.MlflowClient().get_run(run.info.run_id)


def _own(run_id: str) -> bool:
    """Whether the run is this process's active run (a workflow reporting on itself as its last step)."""
    return (active := mlflow.active_run()) is not None and active.info.run_id == run_id


def build_report(run_id: str, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` for a workflow run into ``out_dir``, with the figures the
    Markdown links beside it (the HTML embeds them); return both paths.

    The report is rendered before ``out_dir`` is touched; then the previous report's files are
    removed and each new file is put in place whole, the HTML last. A kill leaves the previous
    report, or files of the new one only: never one run's Markdown beside another's HTML.
    """
    run = workflow_run(run_id)
    md = out_dir / artifacts.filename(artifacts.REPORT_MARKDOWN)
    page = out_dir / artifacts.filename(artifacts.REPORT_HTML)
    output_folder(out_dir, [md.name, page.name, *(p for p, _ in FIGURES)])
    with scratch_folder("report") as tmp:
        root = tracking.download_artifacts(run_id, None, tmp)
        report = _report(run, root)
        texts = {md: report.markdown(), page: report.html()}
        for old in (page, md, *(out_dir / p for p, _ in FIGURES)):
            old.unlink(missing_ok=True)
        for figure in (p for p, _ in FIGURES if (root / p).exists()):
            with published(out_dir / figure) as part:
                shutil.copyfile(root / figure, part)
        for path, text in texts.items():
            with published(path) as part:
                part.write_text(text, encoding="utf-8")
    return page, md


def log_report(run_id: str) -> bool:
    """Build the report and log it to the run (``artifacts.REPORT_HTML`` and ``REPORT_MARKDOWN``);
    False, logging nothing, while another process runs it: a partial report would replace, or be
    replaced by, the one the run logs when it ends. A run whose process is gone is ended KILLED first."""
    if not _own(run_id) and _settled(mlflow.MlflowClient().get_run(run_id)).info.status == "RUNNING":
        return False
    with scratch_folder("report") as tmp:
        build_report(run_id, artifacts.local(tmp, artifacts.REPORT_HTML).parent)
        mlflow.MlflowClient().log_artifacts(run_id, str(tmp))
    return True


def _status(run: mlflow.entities.Run) -> str:
    """The run's status, and for one that has not finished, that the report shows it part-way."""
    status = run.info.status
    if status == "RUNNING":
        return "RUNNING: still at work, so this report shows only what it has logged so far"
    if status != "FINISHED":
        reason = run.data.tags.get(tracking.END_REASON, "")
        return f"{status}{f' ({reason})' if reason else ''}: it stopped early, so this report shows only what it logged"
    return status


def _report(run: mlflow.entities.Run, root: Path) -> Report:
    data = run.data
    report = Report(f"mlsandbox report — {data.tags.get(tracking.PROJECT, '')} ({run.info.run_name})")
    params = {k: data.params.get(k, "") for k in ("dataset", "dataset_digest", "ops", "model_type", "seeds", "benchmarks")}
    params |= {"run id": run.info.run_id}
    if not _own(run.info.run_id):  # not its own report, its last step
        params["status"] = _status(run)
    report.add("Run", _kv_md(params), _kv_html(params))
    answer = answer_of_run(run)
    if answer is not None:
        report.add("Answer", answer.text(), f"<p>{html.escape(answer.text())}</p>")
    best = _read_text(root / artifacts.BEST_RECIPE)
    if best is not None:
        delta = data.metrics.get("best_recipe_delta_pct", float("nan"))
        name = data.params.get("best_recipe", "")
        verdict = "" if answer is None else (" It beat the random control after Holm's correction." if answer.won
                                             else " It did not beat the random control after Holm's correction.")
        claim = (f" ({claim_words(answer.ci_low_pct, answer.ci_high_pct, answer.p_adjusted)} across {answer.family_words()})"
                 if answer is not None and answer.name == name and math.isfinite(answer.p_adjusted)
                 else " (no interval: see the answer above)")
        text = f"**{name}**: {delta:+.2f}% over the random pool of the same size{claim}.{verdict}"
        dj = _read_text(root / artifacts.BEST_RECIPE_DATA_JUICER)
        if dj is not None and f"- {RANDOM_SELECTOR}:" in dj:  # an earlier version's export
            text += (f" Its Data-Juicer export ends with the sandbox's equal-size draw as a `{RANDOM_SELECTOR}`: "
                     "remove that step for a full-scale run, or it keeps only as many samples as the pool had.")
        # A recipe Data-Juicer cannot express has a note saying why: prose, not a YAML block.
        note = "" if dj is not None else (_read_text(root / artifacts.BEST_RECIPE_DATA_JUICER_NOTE) or "").strip()
        note = note[:1].upper() + note[1:]
        markdown = f"Data-Juicer:\n\n```yaml\n{dj}```" if dj is not None else note
        shown = (f"<p>Data-Juicer recipe:</p><pre>{html.escape(dj)}</pre>" if dj is not None
                 else f"<p>{html.escape(note)}</p>")
        report.add("Best recipe", f"{text}\n\n```yaml\n{best}```\n\n{markdown}",
                   f"<p>{html.escape(text).replace('**', '')}</p><pre>{html.escape(best)}</pre>{shown}")
    for title, path in TABLES:
        table = _read_table(root / path)
        if table is not None:
            table = without_constant(table, "fidelity")
            note = _STATISTICS_NOTE if "p_adjusted" in table else ""
            report.add(title, note + table_markdown(table),
                       f"<p>{html.escape(note.strip())}</p>" * bool(note)
                       + table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a"))
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
    if "cells_run" not in data.metrics:  # stopped early: the totals are logged last, each step's counts as it ends
        cost |= {f"{key.replace('.cells_', ': cells ')}": _fmt(value) for key, value in sorted(data.metrics.items())
                 if re.fullmatch(r"\w+\.cells_(run|reused|failed)", key)}
    if cost:
        report.add("Cost", _kv_md(cost), _kv_html(cost))
    return report


_STATISTICS_NOTE = ("delta_pct: mean over seeds of the relative change over an equal-size random pool (each seed "
                    "draws its own); ci_low_pct/ci_high_pct: its 95% t-interval over seeds, which counts the pool as one "
                    "draw of documents as well as the controls' spread (n/a with one seed; for a raced pool "
                    "corrected for the race's looks, so wider, and its p_value multiplied by them); "
                    "p_value: the t-test of that mean against 0; p_adjusted: Holm-adjusted across "
                    f"the pools of the step that the same model decided ({CARRIED_FAMILY}); seeds: how many seeds the "
                    "pool got "
                    "(a race stops early once the answer is clear); fidelity: the model that decided the row "
                    "(decide: the project's model; screen: the cheap screening model, for the pools it settled), "
                    "the deciding model's rows ranked first; screen_delta_pct (with a screen): the screen's delta of "
                    "the pool, with its interval (screen_ci_low_pct, screen_ci_high_pct) and its p-value Holm-adjusted "
                    "across the pools the screen measured in that step (screen_p_adjusted; refine's single-OP rows: "
                    "the probe's screen).\n\n")


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


__all__ = ["Answer", "answer_of_run", "build_report", "log_answer", "log_report", "workflow_run"]
