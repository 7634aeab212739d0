"""The model interface: trainers, trained models and their registry.

A :class:`Trainer` turns a :class:`TrainingJob` (a pool of texts plus where to write) into a
:class:`TrainedModel`. Every trained model saves itself with a ``manifest.json`` naming its
``type``, so :func:`load_model` can bring any saved model back for evaluation. Trainer modules
are imported only when their type is first used, which keeps ``import mlsandbox.models`` free
of torch.
"""

from __future__ import annotations

import importlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from mlsandbox.credentials import scrub_known
from mlsandbox.errors import EvaluationError, first_line

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

#: Per-benchmark metrics, e.g. ``{"wiki": {"bpb": 1.9, "score": 0.53}}``; ``score`` is
#: positive and higher-is-better so relative deltas over a baseline are meaningful.
BenchmarkMetrics = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark set: its name, texts, the file it came from (if any), and for
    image-text (video-text) benchmarks each text's image (video) as encoded bytes, the text
    being its caption."""

    name: str
    texts: list[str]
    path: Path | None = None
    images: list[bytes] | None = None
    videos: list[bytes] | None = None

    def captioned(self, media: Literal["images", "videos"], model_type: str) -> tuple[list[str], list[bytes]]:
        """The non-empty captions and their ``media`` (``"images"`` or ``"videos"``), for models
        that score a caption against its picture or clip: an empty caption has nothing to score."""
        items: list[bytes] | None = getattr(self, media)
        if items is None:
            kind = media.removesuffix("s")
            raise EvaluationError(f"benchmark {self.name!r} has no {media}; {model_type} needs {kind}-text "
                                  f"benchmarks: set the benchmark's {kind}_field")
        keep = [i for i, t in enumerate(self.texts) if t]
        if not keep:
            raise EvaluationError(f"benchmark {self.name!r} has no non-empty captions")
        return [self.texts[i] for i in keep], [items[i] for i in keep]


ReportCallback = Callable[[int, float], bool]


@dataclass
class TrainingJob:
    """Everything a trainer needs for one cell (pool x seed x model config).

    ``texts`` is the pool in training order, repeats included; ``pool_file`` is the same pool
    materialised as JSONL with a ``text`` field, for external trainers. ``tokenizer_texts`` and
    ``source_digest`` describe the whole source dataset, so a tokenizer is trained once per
    dataset (cached under ``cache_dir``) and shared by all its pools. ``report(step, score)``
    receives intermediate scores (higher is better, computed on ``eval_texts`` when given,
    else on the training stream) and returns True to prune the run. For image-text pools,
    ``images`` holds each text's image (encoded bytes, aligned with ``texts``) and the texts
    are its captions; text-only trainers ignore it. ``videos`` does the same for video-text pools
    (encoded clips, aligned with ``texts``). ``ids`` are the samples' ids, aligned with ``texts``,
    so that an error about one sample's media names it. A trainer that starts MLflow runs of its own
    (an MLflow project) starts them in ``mlflow_experiment_id`` named ``mlflow_run_name``, where
    the cell finds them to link and, if the trainer was stopped, to end them. ``rows``, where
    given, are the positions of ``texts`` in ``tokenizer_texts`` (the dataset): a trainer may
    count statistics of the dataset's documents once and add up those of a pool's rows.
    """

    texts: list[str]
    output_dir: Path
    seed: int = 0
    pool_file: Path | None = None
    tokenizer_texts: list[str] | None = None
    source_digest: str | None = None
    cache_dir: Path = field(default_factory=lambda: Path(".mlsandbox_cache"))
    report: ReportCallback | None = None
    eval_texts: list[str] | None = None
    benchmarks: Sequence[Benchmark] = ()
    images: list[bytes] | None = None
    videos: list[bytes] | None = None
    ids: list[str] | None = None
    mlflow_experiment_id: str | None = None
    mlflow_run_name: str | None = None
    rows: Sequence[int] | None = None

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        self.cache_dir = Path(self.cache_dir)
        if self.pool_file is not None:
            self.pool_file = Path(self.pool_file)
        if not self.texts and self.pool_file is None:
            raise ValueError("a training job needs `texts` or a `pool_file`")
        if self.images is not None and len(self.images) != len(self.texts):
            raise ValueError(f"a training job needs one image per text ({len(self.images)} vs {len(self.texts)})")
        if self.videos is not None and len(self.videos) != len(self.texts):
            raise ValueError(f"a training job needs one video per text ({len(self.videos)} vs {len(self.texts)})")
        if self.ids is not None and len(self.ids) != len(self.texts):
            raise ValueError(f"a training job needs one id per text ({len(self.ids)} vs {len(self.texts)})")
        if self.rows is not None and len(self.rows) != len(self.texts):
            raise ValueError(f"a training job needs one row per text ({len(self.rows)} vs {len(self.texts)})")


def utf8_bytes(texts: Sequence[str]) -> int:
    """Total UTF-8 length of ``texts``: the denominator of bits-per-byte."""
    return sum(len(t.encode("utf-8")) for t in texts)


def score_from_bpb(bpb: float) -> float:
    """Benchmark score from bits-per-byte: ``1 / bpb``, positive and higher-is-better."""
    if not math.isfinite(bpb) or bpb <= 0:
        raise EvaluationError(f"bits-per-byte must be a positive finite number, got {bpb!r}")
    return 1.0 / bpb


def retrieval_accuracy(scored: Iterable[tuple[float, Sequence[float]]]) -> float | None:
    """Share of queries whose own candidate scores lower (better) than every rival, from each query's
    ``(own, rivals)``: a query without a rival cannot be retrieved and is not counted (None if none has one)."""
    wins = [all(own < rival for rival in rivals) for own, rivals in scored if rivals]
    return sum(wins) / len(wins) if wins else None


class TrainedModel(ABC):
    """A trained proxy model that can be saved, loaded back and scored in bits-per-byte."""

    type: ClassVar[str]

    def __init__(
        self,
        spec: BaseModel,
        info: Mapping[str, Any] | None = None,
        metrics: BenchmarkMetrics | None = None,
    ) -> None:
        self.spec = spec
        #: Training summary (steps, tokens, seconds, parameters, final loss).
        self.info: dict[str, Any] = dict(info or {})
        #: Benchmark metrics the trainer produced itself (external commands do), else None.
        self.metrics: BenchmarkMetrics | None = metrics

    @abstractmethod
    def bits_per_byte(self, texts: Sequence[str]) -> float:
        """Total negative log-likelihood of ``texts`` in bits over their total UTF-8 bytes."""

    def benchmark_metrics(self, benchmark: Benchmark) -> dict[str, float]:
        """Metrics on one benchmark: ``bpb`` and ``score = 1 / bpb``; models may add more."""
        bpb = self.bits_per_byte(benchmark.texts)
        return {"bpb": bpb, "score": score_from_bpb(bpb)}

    @abstractmethod
    def _save_payload(self, directory: Path) -> None:
        """Write the model's own files into ``directory`` (the manifest is written after)."""

    @classmethod
    @abstractmethod
    def _load_payload(cls, directory: Path, manifest: dict[str, Any]) -> TrainedModel:
        """Rebuild the model from ``directory`` and its parsed manifest."""

    def save(self, directory: Path | str) -> Path:
        """Save into ``directory`` (created if needed); returns the manifest path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_payload(directory)
        manifest = {
            "type": self.type,
            "format": MANIFEST_FORMAT,
            "spec": self.spec.model_dump(mode="json"),
            "info": self.info,
            "metrics": self.metrics,
        }
        path = directory / MANIFEST
        path.write_text(scrub_known(json.dumps(manifest, indent=2, sort_keys=True, default=str)))
        return path


class Trainer(ABC):
    """Trains one kind of model; constructed from its validated spec.

    Every trainer states its ``version``. A change that alters what a trainer produces for the
    same spec, pool and seed (its defaults, its loss, its schedule, shared training code such as
    :mod:`~mlsandbox.models.torch_training`) must bump it: a cell's identity includes the
    version, so finished cells trained by other code are retrained rather than reused.
    Refactors that keep results unchanged keep the version.
    """

    type: ClassVar[str]
    #: The code version of this trainer's results; see the class docstring.
    version: ClassVar[str] = "1"
    #: Whether it reads the pool file (an external trainer does), which carries each sample whole,
    #: metadata columns included: its cells are then keyed by those columns too. Other trainers
    #: take the job's texts and media, and their pools are recorded by sample ids alone.
    reads_pool_file: ClassVar[bool] = False

    def __init__(self, spec: BaseModel) -> None:
        self.spec = spec

    def files(self) -> list[Path]:
        """The local files and folders its spec names whose content shapes the result (a script, a
        model folder): a cell's identity digests their bytes, so one edited in place is retrained."""
        return []

    def secrets(self) -> list[str]:
        """Values its spec hands the trainer that must be written nowhere (a command's ``env``): its
        cell scrubs them from logs, failure reasons and what the trainer writes."""
        return []

    def check(self) -> None:  # noqa: B027 (a hook: most trainers name nothing to check)
        """Raise :class:`~mlsandbox.errors.ModelUnavailableError` where what its spec names cannot be
        loaded here (a pretrained model neither local nor fetchable): called before a command's work."""

    def pins(self) -> dict[str, str]:
        """What its spec names by a name that can move (a hub model), each as the version it resolves
        to here (``name@commit``): a cell's identity includes them, so a new commit is a new cell."""
        return {}

    @classmethod
    def seeded(cls, spec: BaseModel) -> bool:
        """False when a model trained from ``spec`` does not depend on the seed (given the pool): one
        cell per pool."""
        return True

    @abstractmethod
    def train(self, job: TrainingJob) -> TrainedModel:
        """Train on ``job.texts`` and return the model (not yet saved)."""


@dataclass(frozen=True)
class _Registration:
    trainer: str  # "module:Class", imported on first use
    model: str


_REGISTRY: dict[str, _Registration] = {
    "tiny-lm": _Registration("mlsandbox.models.tiny_lm:TinyLMTrainer", "mlsandbox.models.tiny_lm:TinyLM"),
    "tiny-captioner": _Registration(
        "mlsandbox.models.tiny_captioner:TinyCaptionerTrainer", "mlsandbox.models.tiny_captioner:TinyCaptioner"
    ),
    "tiny-t2v": _Registration("mlsandbox.models.tiny_t2v:TinyT2VTrainer", "mlsandbox.models.tiny_t2v:TinyT2V"),
    "ngram": _Registration("mlsandbox.models.ngram:NgramTrainer", "mlsandbox.models.ngram:NgramModel"),
    "hf-lora": _Registration("mlsandbox.models.hf_lora:HFLoraTrainer", "mlsandbox.models.hf_lora:HFLoraModel"),
    "command": _Registration("mlsandbox.models.command:CommandTrainer", "mlsandbox.models.command:CommandModel"),
}


def register_model_type(model_type: str, trainer: str, model: str) -> None:
    """Register a trainer and model class as ``"module:Class"`` paths under ``model_type``."""
    _REGISTRY[model_type] = _Registration(trainer, model)


def model_types() -> list[str]:
    """The registered model ``type`` names."""
    return sorted(_REGISTRY)


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _registration(model_type: str) -> _Registration:
    try:
        return _REGISTRY[model_type]
    except KeyError:
        raise ValueError(
            f"unknown model type {model_type!r}; registered types: {', '.join(model_types())}"
        ) from None


def trainer_class(spec: BaseModel) -> type[Trainer]:
    """The trainer class for a validated model spec, chosen by its ``type`` field."""
    model_type = getattr(spec, "type", None)
    if not isinstance(model_type, str):
        raise ValueError(f"a model spec needs a string `type`, got {type(spec).__name__}")
    trainer_cls: type[Trainer] = _import(_registration(model_type).trainer)
    return trainer_cls


def trainer_for(spec: BaseModel) -> Trainer:
    """The trainer for a validated model spec, chosen by its ``type`` field."""
    return trainer_class(spec)(spec)


def check_models(specs: Iterable[BaseModel], executor: str = "local") -> None:
    """Each model spec's :meth:`Trainer.check`, where the cells run here (``executor`` local): a model
    that cannot be loaded stops a command before its stats, not as a failure in every cell. On a Ray
    cluster each node loads its own models, so the driver's files and caches decide nothing."""
    if executor != "local":
        return
    for spec in specs:
        trainer_for(spec).check()


def read_manifest(directory: Path | str) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a saved model directory."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvaluationError(f"no saved model at {directory}: {MANIFEST} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or "type" not in manifest:
        raise EvaluationError(f"{path} does not name a model `type`")
    return manifest


@contextmanager
def reading_model_file(path: Path, *errors: type[Exception]) -> Iterator[None]:
    """Read a saved model's file: one of ``errors`` raised inside (the file is missing, corrupt, cut
    short or of another format) becomes one :class:`EvaluationError` naming the file, as a bad
    manifest does, instead of the reading library's traceback."""
    try:
        yield
    except errors as err:
        if isinstance(err, OSError) and err.strerror:
            reason = err.strerror  # the path it names is the one named here
        elif isinstance(err, KeyError) and err.args:
            reason = str(err.args[0])  # not the quotes KeyError adds
        else:
            reason = first_line(err)
        raise EvaluationError(f"{path} is not readable: {reason}") from None


def load_model(directory: Path | str) -> TrainedModel:
    """Load any model saved with :meth:`TrainedModel.save`."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    model_cls = _import(_registration(manifest["type"]).model)
    return model_cls._load_payload(directory, manifest)
