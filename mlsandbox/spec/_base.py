"""The one strict base of every spec model (unknown keys are errors, values are frozen), and the
value types several sections share."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A spec section: a typo'd key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def digest(self) -> str:
        """sha256 of the canonical JSON of ``model_dump`` (sorted keys, no whitespace)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


#: The largest seed every consumer takes: numpy's legacy ``RandomState`` (which Optuna's samplers
#: use) needs 0 <= seed < 2**32; ``default_rng`` and torch need seed >= 0.
MAX_SEED = 2**32 - 1


def _check_seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"a seed must be an integer from 0 to {MAX_SEED} (numpy's seed range)")
    return value


#: A random seed, bounded at the spec so that a bad one is named by its key, not by numpy later.
Seed = Annotated[int, AfterValidator(_check_seed)]
