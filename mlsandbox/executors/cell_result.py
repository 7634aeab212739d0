"""What a training cell is, as every layer above the cells reads it: its result and the tags its
MLflow run carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mlsandbox import tracking
from mlsandbox.executors.fidelity import DECIDE
from mlsandbox.models import BenchmarkMetrics
from mlsandbox.pools import Pool

CELL = tracking.TAG + "cell"
MODEL_DIGEST = tracking.TAG + "model_digest"
BENCHMARKS_DIGEST = tracking.TAG + "benchmarks_digest"
FAILURE = tracking.TAG + "failure"
FIDELITY = tracking.TAG + "fidelity"  # which role the cell's model plays: screen, decide, or a transfer label
MODEL_TYPE = tracking.TAG + "model_type"
BASELINE_RUN = tracking.TAG + "baseline_run"  # + ".<seed>": the control run of that seed's delta_pct


class CellStatus(StrEnum):
    """How a cell ended; the value is the MLflow run status it leaves (and the ``status`` column)."""

    FINISHED = "FINISHED"
    FAILED = "FAILED"


@dataclass
class CellResult:
    pool: Pool
    seed: int
    run_id: str
    status: CellStatus
    metrics: BenchmarkMetrics = field(default_factory=dict)
    reused: bool = False
    reason: str = ""
    train_s: float = 0.0
    eval_s: float = 0.0
    wall_s: float = 0.0
    fidelity: str = DECIDE  # the role of the cell's model in its step (see executors.fidelity)
    baselines: dict[int, str] = field(default_factory=dict)  # seed -> control run of its logged delta_pct

    @property
    def ok(self) -> bool:
        return self.status is CellStatus.FINISHED

    @property
    def scores(self) -> dict[str, float]:
        return {name: m["score"] for name, m in self.metrics.items()}
