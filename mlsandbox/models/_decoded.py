"""Media decoded once per job for the models that read them (tiny-captioner's images, tiny-t2v's
clips): the same decode, de-duplication, error and device move for both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from mlsandbox.errors import DataError, TrainingError

if TYPE_CHECKING:
    import numpy as np

_Media = TypeVar("_Media", bound="DecodedMedia")


class DecodedMedia:
    """A job's encoded media (images, clips) decoded once: the unique items' uint8 arrays stacked as
    ``pixels``, plus each sample's row of them (``index``), so a pool's duplicates are decoded and
    stored once. ``decode`` raises :class:`DataError` for an item it cannot read, which becomes
    ``error`` naming the ``kind`` of item and the first sample that has it: its id among ``ids``
    where given, else its row, after ``context`` (a benchmark's name)."""

    def __init__(
        self, items: Sequence[bytes], decode: Callable[[bytes], np.ndarray], kind: str, error: type[TrainingError],
        ids: Sequence[str] | None = None, context: str = "",
    ) -> None:
        import numpy as np
        import torch

        rows: dict[bytes, int] = {}
        arrays: list[np.ndarray] = []
        index: list[int] = []
        for i, data in enumerate(items):
            row = rows.get(data)
            if row is None:
                row = rows[data] = len(arrays)
                try:
                    arrays.append(decode(data))
                except DataError as err:
                    where = f"of sample {ids[i]!r}" if ids is not None else f"of row {i + 1}"
                    raise error(f"{context}{kind} {where} ({len(data)} bytes): {err}") from None
            index.append(row)
        self.pixels = torch.from_numpy(np.stack(arrays))
        self.index = torch.tensor(index, dtype=torch.long)

    @property
    def n_unique(self) -> int:
        """How many distinct items were decoded: what a pool's duplicates leave to learn from."""
        return int(self.pixels.shape[0])

    def to(self: _Media, device: str) -> _Media:
        """These items, moved to ``device`` in place (as ``nn.Module.to`` moves weights), so that
        training batches are gathered where the model runs."""
        self.pixels, self.index = self.pixels.to(device), self.index.to(device)
        return self
