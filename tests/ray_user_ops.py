"""A user's OP module, imported by name where the stats run (the ``cluster`` fixture puts this folder
on Ray's workers' path): its OP registers when the module is imported, as a user's would."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops import Op, TextBatch, register


@register
class RaisingOp(Op):
    """An OP with a bug in its compute."""

    name = "test_raising_on_ray"
    stat_keys = ("own",)

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"own": np.asarray([{}["missing"] for _ in batch.texts])}
