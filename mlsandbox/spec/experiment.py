"""The experiment spec: one YAML file per sandbox project, loaded into typed, validated objects.

Every key is checked at the boundary: a typo'd key, a wrong type or an out-of-range value raises
:class:`SpecError` naming the key, the bad value and what is allowed. This module is pure (pydantic
only): checks that need the OP registry (a known OP, its params) are :mod:`mlsandbox.project`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from mlsandbox.credentials import hide_url_passwords
from mlsandbox.errors import KeyValueError, SpecError, describe_validation_error, listed
from mlsandbox.spec._base import MAX_REPEAT, DataPath, LocalFolder, Seed, Seeds, StrictModel
from mlsandbox.spec.fidelity import RaceSpec, ScreenSpec, TransferSpec
from mlsandbox.spec.models import MEDIA_MODEL_TYPES, ModelSpec, NgramSpec
from mlsandbox.spec.scoring import BenchmarkSpec, EvaluatorSpec
from mlsandbox.spec.search import SearchSpec

#: The most stats worker processes (``stats.workers``, ``--workers``).
MAX_WORKERS = 256

BUILTIN_DATASET = "builtin:demo"
#: The model of the default ``--quick`` profile: the n-gram proxy fits in seconds and has no seed noise.
QUICK: dict[str, Any] = {"model": {"type": "ngram", "order": 4}}
#: What every ``--quick`` profile starts from: one model, no screen, no race (a profile may set them).
QUICK_BASE: dict[str, Any] = {"screen": None, "race": None}


class DatasetSpec(StrictModel):
    """Where the samples come from and which fields hold the text (caption) and the image or video."""

    path: DataPath = Field(
        default=BUILTIN_DATASET, min_length=1,  # "" would load every data file under the project's folder
        description="file, folder, glob, HF dataset name, builtin:demo, or builtin:<file under mlsandbox/resources>",
    )
    format: Literal["auto", "jsonl", "json", "parquet", "csv", "hf", "images", "videos"] = Field(
        default="auto",
        description="'images' / 'videos': a folder of image / video files, each with a caption in <name>.txt beside it",
    )
    text_field: str = Field(default="text", min_length=1)
    image_field: str | None = Field(
        default=None, min_length=1,
        description="column with each sample's image: a path (relative to the data file) or the image bytes",
    )
    video_field: str | None = Field(
        default=None, min_length=1,
        description="column with each sample's video: a path (relative to the data file) or the encoded video bytes",
    )
    id_field: str | None = Field(default=None, min_length=1, description="column with unique sample ids (default: 'id' if present)")
    split: str = Field(default="train", description="split of a Hugging Face dataset")
    on_error: Literal["raise", "skip"] = Field(default="raise", description="malformed rows: fail, or skip and count")
    max_image_bytes: int = Field(
        default=64 * 2**20, ge=1, description="largest image (file or bytes) a sample may have; larger ones are errors"
    )
    max_video_bytes: int = Field(
        default=2**30, ge=1, description="largest video (file or bytes) a sample may have; larger ones are errors"
    )

    def has(self, media: Literal["images", "videos"]) -> bool:
        """Whether the samples hold ``media``: its field is set, or the dataset is a folder of them."""
        return getattr(self, f"{media.removesuffix('s')}_field") is not None or self.format == media

    @model_validator(mode="after")
    def _one_kind_of_media(self) -> DatasetSpec:
        if self.has("videos") and self.has("images"):
            key = "video_field" if self.video_field is not None else "format"
            raise KeyValueError(key, getattr(self, key), "a sample has an image or a video, not both: set image_field "
                                "(format: images) or video_field (format: videos)")
        return self


class OpSpec(StrictModel):
    """One OP of the project: its Data-Juicer name and the params that change its statistic."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class PoolSpec(StrictModel):
    """How single-OP pools are cut from a stat's distribution."""

    splits: list[str] = Field(default_factory=lambda: ["low", "mid", "high"], min_length=2)
    quantiles: list[float] | None = Field(
        default=None, description="inner cut points in (0, 1), one fewer than splits; default: equal parts"
    )
    size: int | None = Field(default=None, ge=1, description="samples per pool; default: the smallest split")
    seed: Seed = Field(default=42, description="seed of the random control pool and of the subsampling of splits")

    @field_validator("splits")
    @classmethod
    def _unique_splits(cls, v: list[str]) -> list[str]:
        if any(not name or "/" in name for name in v):  # a pool is named <op>/<split>
            raise ValueError("split names must be non-empty and without '/' (a pool is named <op>/<split>)")
        if len(set(v)) != len(v) or "random" in v:
            raise ValueError("split names must be unique and not 'random'")
        by_key: dict[str, list[str]] = {}
        for name in v:
            by_key.setdefault(metric_name_part(name), []).append(name)
        if clash := next((names for names in by_key.values() if len(names) > 1), None):
            raise ValueError(f"splits {clash[0]!r} and {clash[1]!r} would share the MLflow metric name part "
                             f"{metric_name_part(clash[0])!r} (characters MLflow does not take become _): rename one")
        return v

    @model_validator(mode="after")
    def _cut_points(self) -> PoolSpec:
        q = self.quantiles
        if q is None:
            return self
        if len(q) != len(self.splits) - 1:
            raise KeyValueError("quantiles", q, f"needs {len(self.splits) - 1} cut points for splits {self.splits}")
        if any(not 0.0 < x < 1.0 for x in q) or sorted(q) != q or len(set(q)) != len(q):
            raise KeyValueError("quantiles", q, "must be strictly increasing values in (0, 1)")
        return self

    def cut_points(self) -> list[float]:
        n = len(self.splits)
        return list(self.quantiles) if self.quantiles else [i / n for i in range(1, n)]


class StatsSpec(StrictModel):
    """How statistics are computed."""

    workers: int = Field(
        default=0, ge=0, le=MAX_WORKERS, description="worker processes (Ray: tasks or actors); 0 = one per core (of the cluster)")
    batch_size: int = Field(default=2000, ge=1, le=1_000_000,
                            description="samples per batch of the statistical OPs, at most (and at most ~8 MiB of "
                                        "text); model-backed OPs batch on their own")
    engine: Literal["local", "ray"] = Field(
        default="local", description="`ray`: batches as a Ray Dataset on the cluster of `executor.address`")


class ExecutorSpec(StrictModel):
    """Where cells (pool x seed x model) run: in this process, or as tasks on a Ray cluster."""

    type: Literal["local", "ray"] = Field(default="local", description="`ray`: cells as Ray tasks")
    address: str | None = Field(
        default=None, description="Ray cluster address (cells, trials and stats on Ray); default RAY_ADDRESS, else a local one")
    cpus_per_cell: float = Field(default=1.0, gt=0, le=1024, description="Ray CPUs each cell task reserves")
    gpus_per_cell: float = Field(
        default=0.0, ge=0, le=64, description="Ray GPUs each cell task reserves (its model then runs on cuda)")


class AnalyzeSpec(StrictModel):
    """How stats and benchmark metrics are clustered (paper App. B.2)."""

    stat_clusters: int = Field(default=3, ge=1, description="clusters of OP stats (capped at the number of stats)")
    metric_clusters: int = Field(
        default=2, ge=1, description="clusters of benchmark metrics (capped at the number of benchmarks)"
    )
    linkage: Literal["average", "complete", "single", "weighted"] = "average"


class RefineSpec(StrictModel):
    """Multi-OP recipes, the pyramid, the duplication study and threshold refinement."""

    top_k: int = Field(default=3, ge=1, le=6, description="best (OP, split) pools combined; 2^k - 1 pyramid pools")
    duplication: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1,
                                   description="training budgets as multiples of the top pool's size")
    ksigma: float = Field(default=2.0, gt=0, le=10, description="k of the k-sigma threshold recipe")
    percentiles: tuple[float, float] = Field(default=(5.0, 95.0), description="lower, upper percentile bounds recipe")
    min_pool_size: int = Field(default=50, ge=1, description="smaller recipe pools are too small to train on")
    on_small_pool: Literal["skip", "use"] = Field(
        default="skip", description="skip a too-small pool (reason recorded) or use it"
    )

    @field_validator("duplication")
    @classmethod
    def _multiples(cls, v: list[int]) -> list[int]:
        if any(not 1 <= r <= MAX_REPEAT for r in v) or len(set(v)) != len(v):
            raise ValueError(f"duplication multiples must be distinct integers from 1 to {MAX_REPEAT}")
        return sorted(v)

    @field_validator("percentiles")
    @classmethod
    def _percentile_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] < v[1] <= 100:
            raise ValueError("percentiles must satisfy 0 <= lower < upper <= 100")  # the error adds the value as written
        return v


class ConfirmSpec(StrictModel):
    """The workflow's winning answer measured again on seeds that took no part in choosing it.

    The best of many pools is the one its noise favoured most, so the step that picked it
    overstates it; new random controls (and new training runs, for a seed-dependent model) give its
    delta free of that choice.
    """

    seeds: Seeds = Field(..., min_length=2, description="fresh seeds, none of `seeds` or `screen.seeds` (>= 2)")


class ExperimentSpec(StrictModel):
    """A sandbox project: dataset, OPs, pools, seeds, proxy model and benchmarks."""

    name: str = Field(..., min_length=1, max_length=500, description="also the MLflow experiment name (at most 500 characters)")
    description: str = ""
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    ops: list[OpSpec] = Field(..., min_length=1)
    pools: PoolSpec = Field(default_factory=PoolSpec)
    stats: StatsSpec = Field(default_factory=StatsSpec)
    seeds: Seeds = Field(default_factory=lambda: [0, 1], min_length=1)
    # The default deciding proxy, chosen by its effect/noise per CPU second (docs/models.md).
    model: ModelSpec = Field(default_factory=lambda: NgramSpec(order=4))
    benchmarks: list[BenchmarkSpec] | None = Field(
        default=None, min_length=1, description="benchmark sets; default: the bundled held-out sets"
    )
    evaluator: EvaluatorSpec = Field(default_factory=EvaluatorSpec)
    analyze: AnalyzeSpec = Field(default_factory=AnalyzeSpec)
    refine: RefineSpec = Field(default_factory=RefineSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    screen: ScreenSpec | None = Field(default=None, description="a cheap model that measures every pool first")
    race: RaceSpec | None = Field(default=None, description="adaptive seeds for the deciding model; "
                                  "None: every pool gets every seed")
    transfer: TransferSpec = Field(default_factory=TransferSpec)
    confirm: ConfirmSpec | None = Field(default=None, description="re-measure a winning answer on fresh seeds")
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    workspace: LocalFolder = Field(default=".mlsandbox", description="cache folder for stats and pools")
    quick: dict[str, Any] = Field(
        default_factory=lambda: dict(QUICK),
        description="overrides (dotted keys) of the --quick profile; default: the n-gram proxy (for an "
                    "image- or video-text model: that model) on the first of `seeds`",
    )

    # Where the spec was read from: relative dataset paths resolve against it.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec's folder unless absolute."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @model_validator(mode="before")
    @classmethod
    def _default_quick_keeps_a_media_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "quick" not in data:  # the profile --quick applies, as the spec shows it
            return {**data, "quick": dict(default_quick(data))}
        return data

    @model_validator(mode="after")
    def _race_fits_seeds(self) -> ExperimentSpec:
        if self.race is not None and self.race.max_seeds > len(self.seeds):
            raise KeyValueError("race.max_seeds", self.race.max_seeds,
                                f"needs that many `seeds`, and there are {len(self.seeds)}")
        return self

    @field_validator("benchmarks")
    @classmethod
    def _benchmark_names_are_distinct(cls, value: list[BenchmarkSpec] | None) -> list[BenchmarkSpec] | None:
        names = [b.name for b in value or ()]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"benchmark names must be distinct (each names its metrics): {repeated} repeated")
        return value

    @model_validator(mode="after")
    def _screen_is_another_model(self) -> ExperimentSpec:
        # by digest: keys that change no result (threads, a time limit) do not make another model
        if self.screen is not None and self.screen.model.digest() == self.model.digest():
            given = {"type": self.screen.model.type, **self.screen.model.model_dump(exclude_defaults=True)}
            raise KeyValueError("screen.model", given, "is the deciding `model` itself (the same digest): a screen is a "
                                f"cheaper model that settles the clear pools first (got {given!r})")
        return self

    @model_validator(mode="after")
    def _confirm_seeds_are_fresh(self) -> ExperimentSpec:
        if self.confirm is not None:
            choosing = set(self.seeds) | set(self.screen.seeds if self.screen else ())
            if used := sorted(choosing & set(self.confirm.seeds)):
                raise KeyValueError("confirm.seeds", self.confirm.seeds,
                                    f"must be fresh: {used} also choose the answer (`seeds` or `screen.seeds`)")
        return self

    def shown_yaml(self) -> str:
        """The spec as YAML, as it is logged and saved beside results: ``env`` values masked, no URL's
        password (a storage, a Ray address, a trainer's argument)."""
        return hide_url_passwords(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))

    def decision_seeds(self) -> tuple[int, int]:
        """How many of ``seeds`` a pool gets from the deciding model: (at least, at most)."""
        if self.race is None:
            return len(self.seeds), len(self.seeds)
        return self.race.min_seeds, self.race.max_seeds

    def trial_seeds(self) -> list[int]:
        """The seeds a search trial gets, one at a time (its pruner may stop it early): the race's
        minimum where the spec races, else every seed."""
        return self.seeds[: self.decision_seeds()[0]]

    @property
    def workspace_dir(self) -> Path:
        return Path(self.workspace).expanduser().resolve()


def metric_name_part(name: str) -> str:
    """``name`` as an MLflow metric name holds it (``&`` spelt out, characters MLflow refuses made
    ``_``): the folding of ``tracking.metric_key``, here so that split names whose metrics would
    overwrite each other are refused at load."""
    return re.sub(r"[^\w\-. :/]", "_", name.replace(" & ", " and "))


def default_quick(raw: dict[str, Any]) -> dict[str, Any]:
    """The ``--quick`` profile of a spec (raw) that names none: the n-gram, or the model itself where it
    trains on images or videos with their captions (an n-gram of the captions alone would not see the
    media), on the spec's first seed (its cells are the full run's; ``confirm``'s seeds stay fresh)."""
    model, seeds = raw.get("model"), raw.get("seeds")
    first = seeds[:1] if isinstance(seeds, list) and seeds else [0]
    media = isinstance(model, dict) and isinstance(model.get("type"), str) and model["type"] in MEDIA_MODEL_TYPES
    return {**({} if media else QUICK), "seeds": first}


def parse_spec(raw: dict[str, Any], base_dir: Path | None = None, origin: str = "spec") -> ExperimentSpec:
    """Validate a spec given as a mapping."""
    try:
        return ExperimentSpec(**raw, base_dir=base_dir or Path.cwd())
    except ValidationError as err:
        raise invalid_spec(origin, describe_validation_error(err, raw, _allowed_keys,
                                                             lambda loc: _schema_at(loc)[0])) from None
    except TypeError as err:
        raise invalid_spec(origin, [str(err)]) from None


def invalid_spec(origin: str, problems: list[str]) -> SpecError:
    """The error for a spec's problems: one line for one problem, else one indented line each."""
    return SpecError(f"{origin}: invalid experiment spec{listed(problems)}")


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model = _schema_at(loc[:-1])[1]
    if model is None:
        return []
    return sorted(k for k, f in model.model_fields.items() if not f.exclude)


def _schema_at(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], type[BaseModel] | None]:
    """An error location without the tags pydantic puts after a tagged union (``model.command.timeout_s``
    is the key ``model.timeout_s`` of a ``type: command`` model), and the spec section it ends in."""
    model: type[BaseModel] | None = ExperimentSpec
    union: dict[str, type[BaseModel]] = {}
    shown: list[Any] = []
    for p in loc:
        if isinstance(p, str) and p in union:
            model, union = union[p], {}
            continue
        shown.append(p)
        if isinstance(p, int) or model is None:
            continue
        field = model.model_fields.get(str(p))
        model, union = _sections_of(field.annotation) if field else (None, {})
    return tuple(shown), model


def _sections_of(annotation: Any) -> tuple[type[BaseModel] | None, dict[str, type[BaseModel]]]:
    """The one section class a field holds, or the classes of a union by their ``type`` tag."""
    classes = list(dict.fromkeys(_models_in(annotation)))
    if len(classes) == 1:
        return classes[0], {}
    return None, {str(c.model_fields["type"].default): c for c in classes if "type" in c.model_fields}


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg)
