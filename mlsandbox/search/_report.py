"""The results of a study: its trials table, best recipe, Pareto front and importances, logged.

Every call (each worker, each resume) logs the whole study again to the study's parent run, so
the run always shows the study as it stands: artifacts under ``search/`` are rewritten, and the
counts are metrics and tags, which may change, not params, which may not.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from mlsandbox import figures, tracking
from mlsandbox.executors.compare import table_markdown
from mlsandbox.files import scratch_folder
from mlsandbox.recipes import Recipe, data_juicer_keys, export_recipe, parse_recipe, word_lists_folder
from mlsandbox.search._claims import (
    Claims,
    beat_control,
    claim_text,
    confirmed_claim,
    is_confirmed,
    train_confirmation,
    trial_claim,
    trial_claims,
    trials,
    verdict_text,
    withdrawn_confirmation,
)
from mlsandbox.search._names import (
    ARTIFACTS,
    FAIL_REASON,
    INTERRUPTED,
    INVOCATIONS,
    MEASURED_ATTR,
    PRUNE_REASON,
    RECIPE_ATTR,
    RUN_ATTR,
    WARM_START,
)
from mlsandbox.search._objective import TrialContext
from mlsandbox.search._space import SearchSpace, describe_space, objective_names
from mlsandbox.search._storage import pruner_name
from mlsandbox.search._trials import counts_towards_total
from mlsandbox.spec import SearchSpec

log = logging.getLogger(__name__)

#: The reason shown for a FAILED trial that recorded none: its worker was killed (SIGKILL, out of
#: memory) or its heartbeat stopped, and the next run or another worker failed it.
LOST_WORKER = "its worker stopped without an outcome (killed, or its heartbeat was lost)"


@dataclass
class SearchResult:
    """What :func:`run_search` did: the study as it stands after this call, and where it is logged."""

    study_name: str
    storage: str  # password hidden
    run_id: str
    trials: pd.DataFrame
    best: FrozenTrial | None
    best_recipe: Recipe | None
    pareto: list[FrozenTrial]
    importances: dict[str, float]
    ran: int  # trials this call ran
    wall_s: float
    where: str
    report: str = ""  # the Markdown section
    claim: dict[str, float] = field(default_factory=dict)  # the best trial's interval and p-values (trial_claim)
    pareto_claims: list[dict[str, float]] = field(default_factory=list)  # the same, per Pareto trial
    failed_now: list[int] = field(default_factory=list)  # the trials this call ran that FAILED

    def all_failed_text(self) -> str | None:
        """A line for a call that ran trials and saw every one of them fail (the command then exits 2);
        None otherwise. A pruned or complete trial is not a failure."""
        if not self.ran or len(self.failed_now) < self.ran:
            return None
        first = self.trials.set_index("trial").loc[self.failed_now[0]]  # the study's table holds every trial
        run = f"; its run {first['run_id']}" if first["run_id"] else ""
        every = f"all {trials(self.ran)}" if self.ran > 1 else "the trial"
        return (f"FAILED: {every} run now failed; the first, trial {first.name}: "
                f"{first['reason'] or 'no reason'}{run}")

    @property
    def best_delta_pct(self) -> float | None:
        """The best trial's delta (%), the first objective."""
        return None if self.best is None else self.best.values[0]

    @property
    def confirmed(self) -> bool:
        """Whether the best trial was measured again on fresh seeds (``confirm:``)."""
        return is_confirmed(self.claim)

    def best_text(self) -> str:
        """The best trial's delta with its interval and p-values, in words."""
        return "" if self.best is None else claim_text(self.best.values[0], self.claim)

    @property
    def won(self) -> bool:
        """Whether the best trial beat the random control after Holm's correction."""
        return beat_control(self.best, self.claim)

    def verdict_text(self) -> str:
        """Whether the best trial beat the control, in words (:func:`verdict_text`; empty without one)."""
        return verdict_text(self.best, self.claim)

    def trials_shown(self) -> pd.DataFrame:
        """The trials as the command line shows them (:func:`shown_trials`: no delta for a pruned trial)."""
        return shown_trials(self.trials)

    def pareto_text(self) -> list[str]:
        """Each Pareto trial's delta with its interval and p-values, its pool size, and whether it beat the
        control (:func:`beat_control`): a Pareto trial is picked among the trials, as the best is."""
        return [f"trial {t.number}, delta {claim_text(t.values[0], claim)}, pool size {t.values[1]:.0f}: "
                + ("beat the random control" if beat_control(t, claim) else "not a win")
                for t, claim in zip(self.pareto, self.pareto_claims)]


def trials_frame(study: optuna.Study, search: SearchSpec, space: SearchSpace, claims: Claims | None = None) -> pd.DataFrame:
    """One row per trial: trial, state, objectives, the delta's 95% interval and Holm-adjusted p across
    the complete trials (``claims``, default :func:`trial_claims`), params, reason, warm_start, duration_s, run_id:
    Optuna's own table, with the objectives named, the params in the order of the space, and the user
    attributes people read (why a trial ended as it did, its warm start, its MLflow run) as plain columns."""
    raw = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"),
                                 multi_index=True)
    if raw.empty:
        return pd.DataFrame()
    values = _group(raw, "values" if search.multi_objective else "value").astype(float)
    values.columns = pd.Index(objective_names(search))  # by position: Optuna numbers them
    params = _group(raw, "params")
    searched = space.param_names()  # then any param the space no longer has (an older study's)
    params = params[[n for n in searched if n in params] + sorted(set(params.columns) - set(searched))]
    attrs = _group(raw, "user_attrs").reindex(columns=[PRUNE_REASON, FAIL_REASON, INTERRUPTED, WARM_START, RUN_ATTR])
    text = attrs.where(attrs.map(lambda v: isinstance(v, str)), "").astype(str)  # missing: empty text
    reason = text[PRUNE_REASON]  # the first reason given: pruned, failed, or interrupted
    for key in (FAIL_REASON, INTERRUPTED):
        reason = reason.mask(reason == "", text[key])
    state = _group(raw, "state").iloc[:, 0]
    reason = reason.mask((reason == "") & (state == TrialState.FAIL.name), LOST_WORKER)
    numbers = _group(raw, "number").iloc[:, 0]
    claims = trial_claims(study) if claims is None else claims
    claim = pd.DataFrame([{k: claims.get(int(n), {}).get(k, math.nan) for k in ("ci_low_pct", "ci_high_pct", "p_adjusted")}
                          for n in numbers], index=raw.index)
    return pd.concat([
        pd.DataFrame({"trial": numbers, "state": state}),
        values,
        claim,
        params,
        pd.DataFrame({
            "reason": reason,
            "warm_start": text[WARM_START],
            "duration_s": pd.to_timedelta(_group(raw, "duration").iloc[:, 0]).dt.total_seconds(),
            "run_id": text[RUN_ATTR],
        }),
    ], axis=1)


def shown_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """The trials table as people read it: no delta for a PRUNED trial (``n/a``). Its ``delta_pct``
    is Optuna's last intermediate value, a running delta after some seeds with no interval or
    p-value, which would read as a claim; its reason says where it was pruned and at what value.
    ``trials.csv`` keeps the raw value (documented there as the last intermediate value)."""
    if frame.empty or "delta_pct" not in frame:
        return frame
    return frame.assign(delta_pct=frame["delta_pct"].mask(frame["state"] == TrialState.PRUNED.name))


def _group(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """The columns under one top-level name of Optuna's multi-index table (none if no trial has any)."""
    group = raw.loc[:, raw.columns.get_level_values(0) == name]
    group.columns = pd.Index([str(c) for c in group.columns.get_level_values(1)])
    return group


def best_trials(study: optuna.Study, search: SearchSpec) -> tuple[FrozenTrial | None, list[FrozenTrial]]:
    """The best trial (highest delta; on the Pareto front for [delta, size]) and the Pareto front."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None, []
    if not search.multi_objective:
        return study.best_trial, []
    front = sorted(study.best_trials, key=lambda t: t.values[0], reverse=True)
    return front[0], front


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Importances of the delta (optuna's default evaluator); empty below 2 distinct complete values."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({t.values[0] for t in complete}) < 2:
        return {}
    try:
        # The default evaluator (PED-ANOVA) ranks what drives *low* targets: negate the maximised delta
        # (and silence its warning that says so, which would only confuse a reader of the output).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes", category=UserWarning)
            return optuna.importance.get_param_importances(study, target=lambda t: -t.values[0])
    except (ValueError, RuntimeError) as err:  # e.g. every parameter constant across complete trials
        log.warning("no parameter importances: %s", err)
        return {}


def log_results(
    study: optuna.Study, ctx: TrialContext, run_id: str, storage_name: str, ran: int, wall_s: float
) -> SearchResult:
    """Log the study's metrics, tags and ``search/`` artifacts to its parent run; the result."""
    search = ctx.search
    claims = trial_claims(study)  # once for the table, the best trial and the Pareto front (given to each)
    frame = trials_frame(study, search, ctx.space, claims)
    best, pareto = best_trials(study, search)
    importances = param_importances(study)
    best_recipe = _recipe_of(best, ctx)
    counted = {t.number for t in study.get_trials(deepcopy=False) if counts_towards_total(t)}  # not interrupted
    states = _state_counts(frame[frame["trial"].isin(counted)] if not frame.empty else frame)
    metrics = {f"trials_{s.lower()}": float(states.get(s, 0)) for s in ("COMPLETE", "PRUNED", "FAIL")}
    metrics["trials_run_now"] = ran
    metrics["search_wall_s"] = wall_s
    if ctx.run_times:
        trial_s = sum(t["trial_s"] for t in ctx.run_times)
        model_s = sum(t["train_eval_s"] for t in ctx.run_times)
        metrics["overhead_share"] = max(0.0, (trial_s - model_s) / trial_s) if trial_s > 0 else 0.0
    claim = trial_claim(study, best, claims)
    if best_recipe is not None and _to_confirm(best, claim, ctx):
        claim.update(confirmed_claim(ctx, best_recipe, run_id))
    else:
        metrics.update(withdrawn_confirmation(run_id))
    if best is not None:
        metrics["best_delta_pct"] = best.values[0]
        metrics["best_trial"] = best.number
        metrics.update({f"best_{key}": value for key, value in claim.items() if math.isfinite(value)})
    # Metrics and tags, not params: every worker of a study (and every resume) updates them,
    # and MLflow params cannot change once logged.
    tracking.log_batch(run_id, metrics=metrics,
                       tags={tracking.TAG + "best_trial": str(best.number)} if best is not None else None)
    log_trial_claims(study, claims)
    with scratch_folder("search-report") as out:
        if not frame.empty:
            frame.to_csv(out / "trials.csv", index=False)
            history = frame.rename(columns={"delta_pct": "value"})[
                ["trial", "value", "state", "warm_start", "ci_low_pct", "ci_high_pct", "p_adjusted"]]
            if history["value"].notna().any():
                figures.history_curve(history, out / "history.png", title=f"study {ctx.study_name}")
        if importances:
            figures.importance_bars(importances, out / "importance.png", title="parameter importance for the delta",
                                    completed=_state_counts(frame).get("COMPLETE", 0))
        if best_recipe is not None:
            export_recipe(best_recipe, out, **data_juicer_keys(ctx.prepared.spec.dataset))
        pareto_claims = [trial_claim(study, t, claims) for t in pareto]
        report = search_report(ctx, frame, best, claim, list(zip(pareto, pareto_claims)), importances, storage_name, out,
                               not_counted=int((frame["state"] == "FAIL").sum()) - states.get("FAIL", 0))
        (out / "report.md").write_text(report, encoding="utf-8")
        _replace_artifacts(run_id, out, frame)
    return SearchResult(ctx.study_name, storage_name, run_id, frame, best, best_recipe, pareto, importances,
                        ran, wall_s, "", report, claim, pareto_claims)


def log_trial_claims(study: optuna.Study, claims: Claims) -> None:
    """Each complete trial's Holm-adjusted p (``p_adjusted``, over ``p_adjusted_family_size`` pools) on
    its MLflow run, one request per run: its run logged its raw p-value only, and the family grows
    as trials complete, so every call logs them again."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        claim = claims.get(trial.number, {})
        if RUN_ATTR not in trial.user_attrs or not math.isfinite(claim.get("p_adjusted", math.nan)):
            continue  # one seed: no test, so no member of the family
        try:
            tracking.log_batch(trial.user_attrs[RUN_ATTR],
                               metrics={"p_adjusted": claim["p_adjusted"], "p_adjusted_family_size": claim["family"]})
        except MlflowException as err:  # a run of another store, or deleted
            log.warning("trial %d: its run holds no adjusted p-value: %s", trial.number, err)


def confirm_before_report(study: optuna.Study, ctx: TrialContext, run_id: str) -> None:
    """Train the cells that :func:`log_results` will confirm the best trial on, if it will, before
    the study's report lock: the other workers of the study would wait for them under it."""
    best, _ = best_trials(study, ctx.search)
    if (recipe := _recipe_of(best, ctx)) is not None and _to_confirm(best, trial_claim(study, best), ctx):
        train_confirmation(ctx, recipe, run_id)


def _recipe_of(trial: FrozenTrial | None, ctx: TrialContext) -> Recipe | None:
    """The recipe a trial measured, named as the study's best (None for no trial, or one without)."""
    if trial is None or RECIPE_ATTR not in trial.user_attrs:
        return None
    measured = {"measured": trial.user_attrs[MEASURED_ATTR]} if MEASURED_ATTR in trial.user_attrs else {}
    return parse_recipe({**trial.user_attrs[RECIPE_ATTR], "name": f"{ctx.study_name}-best",
                         "description": f"trial {trial.number} of study {ctx.study_name}", **measured},
                        origin=f"trial {trial.number}")


def _to_confirm(best: FrozenTrial | None, claim: dict[str, float], ctx: TrialContext) -> bool:
    """Whether the best trial is measured again on fresh seeds: the spec confirms, and it beat its control."""
    return ctx.prepared.spec.confirm is not None and beat_control(best, claim)


def _replace_artifacts(run_id: str, out: Path, frame: pd.DataFrame) -> None:
    """Put what was rendered in ``out`` under ``search/``, once all of it is rendered: a kill while the
    figures are drawn leaves the earlier report whole. Files this call does not write are removed first
    (the records of every call stay), and each file is put in place whole (a staged copy renamed). A
    folder (the export's word lists) is replaced: files of an earlier best's lists must not stay in it."""
    written = {f"{ARTIFACTS}/{f.name}" for f in out.iterdir() if f.is_file()}
    written |= {f"{ARTIFACTS}/trials.json"} if not frame.empty else set()
    tracking.remove_artifacts(run_id, ARTIFACTS, keep=frozenset({INVOCATIONS, *written}))
    if not frame.empty:
        tracking.log_table(run_id, frame, f"{ARTIFACTS}/trials.json")
    client = mlflow.MlflowClient()
    for path in sorted(out.iterdir()):
        if path.is_dir():
            client.log_artifacts(run_id, str(path), f"{ARTIFACTS}/{path.name}")
        else:
            client.log_artifact(run_id, str(path), ARTIFACTS)


def _exported(out: Path) -> str:
    """Where the best recipe was written, in words: what the export actually wrote."""
    not_exported = out / "best_recipe.data_juicer.txt"
    if not_exported.exists():  # it says why
        return f"Exported as `best_recipe.yaml`; {not_exported.read_text(encoding='utf-8').strip()}."
    folder = word_lists_folder(out / "best_recipe.data_juicer.yaml")
    words = f", with the word lists it counts in `{folder.name}/` beside it" if folder.exists() else ""
    return f"Exported as `best_recipe.yaml` and, for Data-Juicer, `best_recipe.data_juicer.yaml`{words}."


def _state_counts(frame: pd.DataFrame) -> dict[str, int]:
    return frame["state"].value_counts().to_dict() if not frame.empty else {}


def _shown_recipe(best: FrozenTrial, out: Path) -> str:
    """The recipe as exported (``best_recipe.yaml``: its name and what it was measured as), else the trial's."""
    exported = out / "best_recipe.yaml"
    if exported.exists():
        return exported.read_text(encoding="utf-8").rstrip()
    return yaml.safe_dump(best.user_attrs.get(RECIPE_ATTR, {}), sort_keys=False).rstrip()


def search_report(
    ctx: TrialContext, frame: pd.DataFrame, best: FrozenTrial | None, claim: dict[str, float],
    pareto: Sequence[tuple[FrozenTrial, dict[str, float]]], importances: dict[str, float], storage_name: str, out: Path,
    not_counted: int = 0,
) -> str:
    """The Markdown section of the search (``search/report.md``), figures linked relative to it; the
    ``not_counted`` failed trials (interrupted, or not run: see their reasons) are told apart from
    the trials that failed."""
    search = ctx.search
    counts = _state_counts(frame)
    counts.update({"FAIL": counts.get("FAIL", 0) - not_counted, "NOT COUNTED": not_counted})
    states = {s: n for s, n in counts.items() if n > 0}
    lines = [f"## Recipe search: study `{ctx.study_name}`", "",
             (f"{trials(len(frame))} ({', '.join(f'{n} {s.lower()}' for s, n in states.items()) or 'none'}); "
             f"sampler `{search.sampler}`, pruner `{pruner_name(search, len(ctx.prepared.spec.trial_seeds()))}`, "
             f"objectives {search.objectives}; "
             f"model `{ctx.prepared.spec.model.type}` fixed, seeds {ctx.prepared.spec.trial_seeds()}. "
             f"Delta = relative change of the benchmark scores over the random pool of equal size (%)."), "",
             "### Search space", "", pd.DataFrame(describe_space(ctx.space)).to_markdown(index=False), ""]
    if best is not None:
        delta, _, qualified = claim_text(best.values[0], claim).partition(" ")
        lines += ["### Best recipe", "",
                  f"Trial {best.number}: delta **{delta}** {qualified}"
                  + (f", pool size {best.values[1]:.0f}" if search.multi_objective else "")
                  + f". {verdict_text(best, claim)}", "",
                  "It is the best of the study's trials, so its delta is biased upwards (the winner's curse): "
                  "only the Holm-adjusted p-value says whether it beat the control, and "
                  + ("the fresh seeds (`confirm:` in the spec) give its size free of that choice."
                     if is_confirmed(claim) else
                     "its size should be re-measured on fresh seeds before it is relied on: `mlsandbox train "
                     "--recipe best_recipe.yaml --seeds 100,101,102,103,104` (seeds the study did not use)."), "",
                  "```yaml", _shown_recipe(best, out), "```", "", _exported(out), ""]
    else:
        lines += ["No trial completed: see the reasons in the trials table.", ""]
    if pareto:
        rows = [{"trial": t.number, "delta_pct": t.values[0], "ci_low_pct": c.get("ci_low_pct"),
                 "ci_high_pct": c.get("ci_high_pct"), "p_adjusted": c.get("p_adjusted"), "beat_control": beat_control(t, c),
                 "pool_size": t.values[1], **t.params} for t, c in pareto]
        lines += ["### Pareto front (delta vs pool size)", "",
                  table_markdown(pd.DataFrame(rows)), ""]
    if (out / "history.png").exists():
        lines += ["![optimisation history](history.png)", ""]
    if importances:
        table = pd.DataFrame({"param": list(importances), "importance": list(importances.values())})
        lines += ["### Parameter importance", "", table.to_markdown(index=False, floatfmt=".3f"), "",
                  "![parameter importance](importance.png)", ""]
    if not frame.empty:
        shown = shown_trials(frame).drop(columns=["run_id"]).sort_values("trial").tail(30)
        lines += ["### Trials", "", table_markdown(shown), ""]
    lines += [f"Storage: `{storage_name}`. Live view: `optuna-dashboard {storage_name}`.", ""]
    return "\n".join(lines)
