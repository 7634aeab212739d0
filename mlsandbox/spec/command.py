"""The spec of an external trainer: a script run as an argv list (no shell), or an MLflow project."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from mlsandbox.errors import KeyValueError
from mlsandbox.spec._base import KnownHome, OutputFile, StrictModel

#: What a cell passes every trainer command; ``params`` may not take these names.
COMMAND_PLACEHOLDERS = ("pool_file", "output_dir", "seed", "metrics_file", "benchmarks_file", "cache_dir")


class CommandSpec(StrictModel):
    """An external training script (argv, no shell) or an MLflow project.

    Placeholders substituted in each argument: ``{pool_file}``, ``{output_dir}``, ``{seed}``,
    ``{metrics_file}``, ``{benchmarks_file}``, ``{cache_dir}``. ``params`` are appended as
    ``--key value`` (or passed as ``-P key=value`` to an MLflow project). The script writes
    ``metrics_file`` (relative to ``output_dir``) in the format documented in
    :mod:`mlsandbox.models.command`.
    """

    type: Literal["command"] = "command"
    command: list[str] | None = Field(default=None, min_length=1)
    mlflow_project: Annotated[str, Field(min_length=1), KnownHome] | None = Field(
        default=None, description="MLflow project URI")
    entry_point: str = Field(default="main", min_length=1)
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    env: dict[str, SecretStr] = Field(default_factory=dict, description="extra environment (never written out)")
    timeout_s: float = Field(default=3600.0, gt=0)
    metrics_file: OutputFile = "metrics.json"

    limit_keys: ClassVar[frozenset[str]] = frozenset({"timeout_s"})

    def digest(self) -> str:
        """As other sections', with each ``env`` value counted by its sha256: a value can change the
        result, so it is part of a cell's identity, but it is often a credential, so it is written
        out nowhere (params, manifests and spec files show ``**********``)."""
        if not self.env:
            return super().digest()
        hashed = {k: hashlib.sha256(v.get_secret_value().encode()).hexdigest() for k, v in sorted(self.env.items())}
        return hashlib.sha256(f"{super().digest()}{json.dumps(hashed)}".encode()).hexdigest()

    def environment(self) -> dict[str, str]:
        """``env`` with its values, for the command's process alone."""
        return {k: v.get_secret_value() for k, v in self.env.items()}

    @field_validator("params", mode="before")
    @classmethod
    def _scalar_params(cls, params: Any) -> Any:
        """One line for a list or mapping value (pydantic would list each branch of the union it missed)."""
        for key, value in params.items() if isinstance(params, dict) else ():
            if isinstance(value, (list, dict)) or value is None:
                raise KeyValueError(str(key), value, "a param is a string, a number or true/false (passed as "
                                    "--key value)")
        return params

    @field_validator("env")
    @classmethod
    def _settable_env(cls, env: dict[str, SecretStr]) -> dict[str, SecretStr]:
        """Names and values the OS takes, checked here rather than by every cell's start; a value is never shown."""
        for key, value in env.items():
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} cannot name an environment variable (no =, NUL or empty name)")
            if "\0" in value.get_secret_value():
                raise KeyValueError(key, None, "an environment variable's value cannot hold a NUL character")
        return env

    @model_validator(mode="after")
    def _one_target(self) -> CommandSpec:
        if (self.command is None) == (self.mlflow_project is None):
            raise ValueError("set exactly one of `command` (an argv list) or `mlflow_project`")
        if clash := sorted(set(self.params) & set(COMMAND_PLACEHOLDERS)):
            raise KeyValueError(f"params.{clash[0]}", self.params[clash[0]],
                                "would replace what the cell passes its command; use another name")
        return self
