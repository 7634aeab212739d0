"""What a search's trials claim: each complete trial's 95% interval and p-value, Holm-adjusted across
the complete trials (the best was picked among them), and the best trial's confirmation on fresh seeds."""

from __future__ import annotations

import math
from dataclasses import asdict

import mlflow
import optuna
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from mlsandbox import artifacts, tracking
from mlsandbox.delta import ALPHA, WIN_TEXT, Confirmation, holm, not_a_win_reason
from mlsandbox.executors.compare import confirm_pool
from mlsandbox.recipes import Recipe
from mlsandbox.search._names import MEASURED_ATTR, NEAREST_POINT, RUN_ATTR, WARM_START, WORKFLOW_START
from mlsandbox.search._objective import TrialContext


def trials(n: int) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{n} trial{'' if n == 1 else 's'}"


Claims = dict[int, dict[str, float]]  #: each complete trial's interval and p-values (:func:`trial_claims`)


def trial_claim(study: optuna.Study, trial: FrozenTrial | None, claims: Claims | None = None) -> dict[str, float]:
    """A trial's 95% interval and p-value, and its p-value Holm-adjusted across every distinct pool
    of the complete trials with one (``family`` of them): the best (or a Pareto trial) was picked
    among those recipes, so only the family-wide correction says whether it beat the control. Trials
    whose recipes select one pool share its cells: one test. NaN where undefined (one seed)."""
    if trial is None:
        return {}
    claims = trial_claims(study) if claims is None else claims
    nan = {"ci_low_pct": math.nan, "ci_high_pct": math.nan, "p_value": math.nan, "p_adjusted": math.nan}
    family = next((c["family"] for c in claims.values()), 0.0)
    return {**nan, **claims.get(trial.number, {}), "family": family}


def trial_claims(study: optuna.Study) -> Claims:
    """:func:`trial_claim`'s interval and p-values of every complete trial, by trial number."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    claims = {t.number: _claim_of(t) for t in complete}
    pools = {t.number: (t.user_attrs.get(MEASURED_ATTR) or {}).get("pool_digest") or f"trial {t.number}"
             for t in complete}  # a version that did not record the pool: each trial its own
    tested: dict[str, float] = {}
    for n, c in claims.items():
        if math.isfinite(c.get("p_value", math.nan)):
            tested.setdefault(pools[n], c["p_value"])
    adjusted = dict(zip(tested, holm(list(tested.values()))))
    return {n: {"ci_low_pct": c.get("delta_ci_low_pct", math.nan), "ci_high_pct": c.get("delta_ci_high_pct", math.nan),
                "p_value": c.get("p_value", math.nan),
                "p_adjusted": adjusted.get(pools[n], math.nan) if math.isfinite(c.get("p_value", math.nan)) else math.nan,
                "family": float(len(tested))}
            for n, c in claims.items()}


#: What a trial's claim is made of: user attributes of the trial, and metrics of its MLflow run.
_CLAIM_KEYS = ("delta_std_pct", "delta_ci_low_pct", "delta_ci_high_pct", "p_value")


def _claim_of(trial: FrozenTrial) -> dict[str, float]:
    """The trial's claim: its user attributes, or where a version that did not record them ran it,
    the same values from its MLflow run's metrics (read once per process)."""
    if "p_value" in trial.user_attrs or RUN_ATTR not in trial.user_attrs:
        return {k: trial.user_attrs[k] for k in _CLAIM_KEYS if k in trial.user_attrs}
    run_id = trial.user_attrs[RUN_ATTR]
    if run_id not in _RUN_CLAIMS:
        try:
            metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
        except MlflowException:  # a run of another store, or deleted
            metrics = {}
        _RUN_CLAIMS[run_id] = {k: metrics[k] for k in _CLAIM_KEYS if k in metrics}
    return _RUN_CLAIMS[run_id]


_RUN_CLAIMS: dict[str, dict[str, float]] = {}


#: The prefix of a claim's entries from its confirmation on fresh seeds (``confirmed_pct``, ...).
CONFIRMED = "confirmed_"


def beat_control(trial: FrozenTrial | None, claim: dict[str, float]) -> bool:
    """Whether a trial picked among the study's (the best, a Pareto trial) beat the random control:
    a positive delta, and its claim's Holm-adjusted p below 0.05."""
    return trial is not None and trial.values[0] > 0 and claim.get("p_adjusted", math.nan) < ALPHA


def verdict_text(best: FrozenTrial | None, claim: dict[str, float]) -> str:
    """Whether the best trial beat the control (:func:`beat_control`), in the workflow answer's
    words: its delta and interval alone read as a win even where it is negative or untested."""
    if best is None:
        return ""
    verdict = WIN_TEXT if beat_control(best, claim) else \
        f"This is not a win: {not_a_win_reason(claim.get('p_adjusted', math.nan))}."
    return verdict + _chosen_before(best)


def _chosen_before(best: FrozenTrial) -> str:
    """The workflow's best recipe, as a warm start, was chosen by the workflow's deltas (on the project's
    seeds and no budget, the very cells the trial reuses): the study's correction does not count that choice."""
    label = str(best.user_attrs.get(WARM_START, ""))
    if not label.startswith(f"{WORKFLOW_START}: ") or label.endswith(NEAREST_POINT):  # the nearest point: another pool
        return ""
    return (" It is the workflow's best recipe (a warm start), which the workflow chose by its deltas: the "
            "correction across the study's trials does not count that choice, a confirmation on fresh seeds does.")


def confirmed_claim(ctx: TrialContext, recipe: Recipe, run_id: str) -> dict[str, float]:
    """The best trial's recipe measured again on the spec's fresh ``confirm.seeds`` (see
    :func:`~mlsandbox.executors.compare.confirm_pool`): ``confirmed_*`` entries of its claim. Its
    cells may have been trained already by :func:`train_confirmation` (``ctx.confirm_trained``)."""
    confirm = ctx.prepared.spec.confirm
    assert confirm is not None
    pool = recipe.select(ctx.prepared.stats)
    trained = ctx.confirm_trained.get(pool.digest)  # by train_confirmation, which showed its progress then
    shown = ctx.progress.style if ctx.progress is not None and trained is None else False
    summary = confirm_pool(ctx.prepared, pool, ctx.benchmarks, run_id, progress=shown,
                           trained=trained or ()).items[0].summary
    confirmation = asdict(Confirmation.of(summary, len(confirm.seeds)))
    return {f"{CONFIRMED}{key}": float(value) for key, value in confirmation.items()}


def train_confirmation(ctx: TrialContext, recipe: Recipe, run_id: str) -> None:
    """Train (or find) the cells :func:`confirmed_claim` will measure the recipe on, logging nothing
    on the study's run; the ones trained now are kept in ``ctx.confirm_trained`` (by pool: another
    worker may change the best trial meanwhile), so that its counters count them as run."""
    pool = recipe.select(ctx.prepared.stats)
    comparisons = confirm_pool(ctx.prepared, pool, ctx.benchmarks, run_id,
                               progress=ctx.progress.style if ctx.progress is not None else False, log=False)
    ctx.confirm_trained[pool.digest] = frozenset(c.run_id for c in comparisons.cells if not c.reused)


def withdrawn_confirmation(run_id: str) -> dict[str, float]:
    """An earlier call's confirmation, which was of another best trial or of a claim that no longer
    beats the control: its ``confirm/`` tables removed and its metrics to log again as NaN."""
    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    stale = {key: math.nan for key, value in logged.items() if key.startswith(f"best_{CONFIRMED}") and math.isfinite(value)}
    if stale:
        tracking.remove_artifacts(run_id, artifacts.CONFIRM)
    return stale


def is_confirmed(claim: dict[str, float]) -> bool:
    """Whether a claim holds its re-measurement on fresh seeds (``confirm:``)."""
    return f"{CONFIRMED}seeds" in claim


def claim_text(delta_pct: float, claim: dict[str, float]) -> str:
    """``+0.352% (95% interval [+0.10, +0.61]%, p = 0.004, Holm-adjusted p = 0.02 across the complete
    trials' 6 distinct pools with a p-value)``,
    and what fresh seeds gave where the spec confirms the best trial."""
    if not math.isfinite(claim.get("p_value", math.nan)):
        return f"{delta_pct:+.3f}% (no interval: no spread over seeds)"
    text = (f"{delta_pct:+.3f}% (95% interval [{claim['ci_low_pct']:+.2f}, {claim['ci_high_pct']:+.2f}]%, "
            f"p = {claim['p_value']:.3g}, Holm-adjusted p = {claim['p_adjusted']:.3g} across the complete trials' "
            f"{int(claim['family'])} distinct pool{'' if int(claim['family']) == 1 else 's'} with a p-value)")
    if not is_confirmed(claim):
        return text
    confirmation = Confirmation(int(claim[f"{CONFIRMED}seeds"]),
                                *(claim[f"{CONFIRMED}{key}"] for key in ("pct", "ci_low_pct", "ci_high_pct", "p")))
    return f"{text}. {confirmation.text()}"
