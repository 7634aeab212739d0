"""The typed experiment spec: one YAML file per sandbox project (pydantic only: no OPs, no torch)."""

from mlsandbox.errors import SpecError
from mlsandbox.spec._base import MAX_NAME, MAX_REPEAT, MAX_SEED, Checked, Device, Seed
from mlsandbox.spec._load import load_spec, spec_file, spec_origin
from mlsandbox.spec._yaml import YAMLInputError, dump_yaml, load_yaml
from mlsandbox.spec.command import CommandSpec
from mlsandbox.spec.experiment import (
    BUILTIN_DATASET,
    QUICK,
    AnalyzeSpec,
    ConfirmSpec,
    DatasetSpec,
    ExecutorSpec,
    ExperimentSpec,
    OpSpec,
    PoolSpec,
    RefineSpec,
    StatsSpec,
    invalid_spec,
    metric_name_part,
    parse_spec,
)
from mlsandbox.spec.fidelity import RaceSpec, ScreenSpec, TransferSpec
from mlsandbox.spec.models import (
    HFLoraSpec,
    ModelSpec,
    NgramSpec,
    TinyCaptionerSpec,
    TinyLMSpec,
    TinyT2VSpec,
    model_spec_from_dict,
)
from mlsandbox.spec.scoring import BenchmarkSpec, EvaluatorSpec
from mlsandbox.spec.search import SearchSpec, ThresholdSearch, WarmStart

__all__ = [
    "MAX_NAME",
    "MAX_REPEAT",
    "MAX_SEED",
    "Checked",
    "Device",
    "Seed",
    "BUILTIN_DATASET",
    "QUICK",
    "AnalyzeSpec",
    "BenchmarkSpec",
    "CommandSpec",
    "ConfirmSpec",
    "DatasetSpec",
    "ExecutorSpec",
    "EvaluatorSpec",
    "ExperimentSpec",
    "HFLoraSpec",
    "ModelSpec",
    "NgramSpec",
    "OpSpec",
    "PoolSpec",
    "RaceSpec",
    "RefineSpec",
    "ScreenSpec",
    "TransferSpec",
    "SearchSpec",
    "SpecError",
    "StatsSpec",
    "ThresholdSearch",
    "TinyCaptionerSpec",
    "TinyLMSpec",
    "TinyT2VSpec",
    "WarmStart",
    "YAMLInputError",
    "dump_yaml",
    "invalid_spec",
    "load_spec",
    "load_yaml",
    "model_spec_from_dict",
    "metric_name_part",
    "parse_spec",
    "spec_file",
    "spec_origin",
]
