"""The one strict base of every spec model: unknown keys are errors, values are frozen."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A spec section: a typo'd key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def digest(self) -> str:
        """sha256 of the canonical JSON of ``model_dump`` (sorted keys, no whitespace)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
