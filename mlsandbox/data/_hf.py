"""Hugging Face datasets (the ``hf`` extra): a folder written by ``save_to_disk``, or a dataset name."""

from __future__ import annotations

from pathlib import Path

from mlsandbox.data._dataset import Dataset, make_dataset
from mlsandbox.data._files import normalise
from mlsandbox.data._images import load_images
from mlsandbox.errors import DataError, first_line
from mlsandbox.spec import DatasetSpec


def load_hf(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """The split ``spec.split`` of a saved dataset folder (relative to ``base_dir``) or of a named dataset."""
    try:
        import datasets
    except ImportError:
        raise DataError("Hugging Face datasets need the 'hf' extra: pip install 'mlsandbox[hf]'") from None
    local = Path(spec.path).expanduser()
    if not local.is_absolute() and base_dir is not None and (base_dir / local).exists():
        local = base_dir / local
    try:
        loaded = (datasets.load_from_disk(str(local)) if local.is_dir()
                  else datasets.load_dataset(spec.path, split=spec.split))
    except (OSError, ValueError) as err:  # no such folder, file or hub dataset; no hub; a bad split
        reason = first_line(err)
        raise DataError(f"{spec.path}: cannot load it as a Hugging Face dataset ({reason})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if spec.split not in loaded:
            raise DataError(f"{spec.path}: no split {spec.split!r} (splits: {', '.join(loaded)})")
        loaded = loaded[spec.split]
    table = loaded.data.table if hasattr(loaded.data, "table") else loaded.with_format("arrow")[:]
    table = normalise(table, Path(spec.path), spec)
    skipped = 0
    if spec.image_field is not None:
        table, skipped = load_images(table, local if local.is_dir() else Path.cwd(), spec, spec.path)
    return make_dataset(table, spec.path, Path(spec.path).name, skipped, [local] if local.is_dir() else [])
