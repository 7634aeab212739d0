"""Image-text datasets: every source form loads to the same checked bytes; bad images are named;
image OPs read pixels through one shared decode; pools write images beside the pool file."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import write_jsonl
from PIL import Image

from mlsandbox.data import load_dataset
from mlsandbox.errors import DataError, EvaluationError, SpecError
from mlsandbox.models.benchmarks import load_benchmark
from mlsandbox.ops import ImageBatch, Op, create_op
from mlsandbox.pools import BoundsOrigin, Pool, materialize
from mlsandbox.project import load_project
from mlsandbox.spec import BenchmarkSpec, DatasetSpec
from mlsandbox.stats import compute_stats

CAPTIONS = ["a red square", "a green bar", "a blue dot", "a tall grey post"]
SIZES = [(32, 32), (64, 16), (8, 8), (10, 50)]
COLOURS = ["red", "green", "blue", "grey"]


def _png(size: tuple[int, int], colour: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def image_files(tmp_path: Path) -> Path:
    """A JSONL file whose rows name PNG files in an ``img/`` folder beside it."""
    (tmp_path / "img").mkdir()
    rows = []
    for i, (caption, size, colour) in enumerate(zip(CAPTIONS, SIZES, COLOURS)):
        (tmp_path / "img" / f"{i}.png").write_bytes(_png(size, colour))
        rows.append({"id": f"s{i}", "caption": caption, "file": f"img/{i}.png"})
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def _load(path: Path, **kw: object):
    return load_dataset(DatasetSpec(path=str(path), text_field="caption", **kw))


def test_paths_bytes_and_image_folders_load_to_the_same_table(image_files: Path, tmp_path: Path) -> None:
    from_paths = _load(image_files, image_field="file")
    assert from_paths.table.column_names[:3] == ["id", "text", "image"]
    assert from_paths.images == [_png(s, c) for s, c in zip(SIZES, COLOURS)]

    frame = pd.DataFrame({"id": [f"s{i}" for i in range(4)], "caption": CAPTIONS, "png": from_paths.images})
    frame.to_parquet(tmp_path / "pairs.parquet")
    from_bytes = _load(tmp_path / "pairs.parquet", image_field="png")
    assert from_bytes.digest == from_paths.digest

    folder = tmp_path / "folder"
    folder.mkdir()
    for i, caption in enumerate(CAPTIONS):
        (folder / f"s{i}.png").write_bytes(from_paths.images[i])
        (folder / f"s{i}.txt").write_text(caption + "\n")
    from_folder = load_dataset(DatasetSpec(path=str(folder), format="images"))
    assert from_folder.table["id"].to_pylist() == [f"s{i}" for i in range(4)]
    assert from_folder.digest == from_paths.digest
    for loaded in (from_paths, from_bytes, from_folder):  # 64-bit offsets: past 2 GiB of images or captions
        assert loaded.table.schema.field("image").type == pa.large_binary()
        assert loaded.table.schema.field("text").type == pa.large_string()


def test_image_bytes_change_the_digest(image_files: Path) -> None:
    before = _load(image_files, image_field="file").digest
    (image_files.parent / "img" / "0.png").write_bytes(_png((32, 32), "black"))
    assert _load(image_files, image_field="file").digest != before


@pytest.mark.parametrize("damage", ["missing", "truncated", "not_an_image"])
def test_bad_images_name_the_row_or_are_skipped_and_counted(image_files: Path, damage: str) -> None:
    target = image_files.parent / "img" / "2.png"
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:40])
    else:
        target.write_text("hello")
    with pytest.raises(DataError, match=r"sample 's2'.*on_error: skip"):
        _load(image_files, image_field="file")
    skipped = _load(image_files, image_field="file", on_error="skip")
    assert skipped.skipped == 1
    assert skipped.table["id"].to_pylist() == ["s0", "s1", "s3"]


def test_a_bad_benchmark_image_is_named_without_a_skip_that_does_not_apply(image_files: Path) -> None:
    (image_files.parent / "img" / "2.png").unlink()
    bench = BenchmarkSpec(name="b", path=str(image_files), text_field="caption", image_field="file")
    with pytest.raises(EvaluationError, match=r"benchmark 'b': .*sample 's2'") as err:
        load_benchmark(bench)
    assert "on_error" not in str(err.value)  # a benchmark is read whole: no row of it is skipped


def test_a_benchmark_without_its_image_field_names_the_benchmarks_key(image_files: Path) -> None:
    bench = BenchmarkSpec(name="b", path=str(image_files), text_field="caption", image_field="picture")
    with pytest.raises(EvaluationError, match=r"benchmark 'b': .*no image field 'picture'") as err:
        load_benchmark(bench)
    assert "set the benchmark's image_field" in str(err.value) and "dataset." not in str(err.value)


def _point_row_2_at(image_files: Path, target: str) -> None:
    rows = [json.loads(line) for line in image_files.read_text().splitlines()]
    rows[2]["file"] = target
    write_jsonl(image_files, rows)


@pytest.mark.parametrize("kind", ["device", "pipe", "folder"])
def test_an_image_path_that_is_not_a_regular_file_is_refused_unread(image_files: Path, kind: str) -> None:
    if kind == "device":
        if not Path("/dev/zero").exists():
            pytest.skip("needs /dev/zero")
        target, what = "/dev/zero", "is not a regular file"
    elif kind == "pipe":
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs named pipes")
        target, what = str(image_files.parent / "pipe.png"), "is not a regular file"
        os.mkfifo(target)  # opening it for reading the usual way would wait for a writer
    else:
        target, what = str(image_files.parent / "img"), "is a folder"
    _point_row_2_at(image_files, target)
    with pytest.raises(DataError, match=rf"sample 's2': image path {target} {what}; expected an image file"):
        _load(image_files, image_field="file")
    assert _load(image_files, image_field="file", on_error="skip").skipped == 1


@pytest.mark.parametrize(("target", "said"), [
    ("https://example.org/cat.png", "image path https://example.org/cat.png is a URL; datasets read local files"),
    ("s3://bucket/cat.png", "image path s3://bucket/cat.png is a URL"),
    ("", "empty image path"),
    ("  ", "empty image path"),
])
def test_an_image_path_that_is_a_url_or_empty_says_so(image_files: Path, target: str, said: str) -> None:
    _point_row_2_at(image_files, target)
    with pytest.raises(DataError, match=rf"sample 's2': {re.escape(said)}"):
        _load(image_files, image_field="file")
    assert _load(image_files, image_field="file", on_error="skip").skipped == 1


def test_a_regular_file_that_is_not_an_image_is_named_without_its_size(image_files: Path) -> None:
    other = image_files.parent / "notes.txt"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n" * 3)
    _point_row_2_at(image_files, str(other))
    with pytest.raises(DataError) as err:
        _load(image_files, image_field="file")
    assert f"image file {other}: not an image (no format Pillow reads)" in str(err.value)
    words = str(err.value).replace(str(image_files.parent), "")  # a temporary folder's name may hold the digits
    assert str(other.stat().st_size) not in words and "bytes" not in words


def test_images_larger_than_max_image_bytes_are_refused(image_files: Path, tmp_path: Path) -> None:
    assert DatasetSpec().max_image_bytes == 64 * 2**20
    sizes = [len(_png(s, c)) for s, c in zip(SIZES, COLOURS)]
    big = max(sizes)
    largest = sizes.index(big)
    with pytest.raises(DataError, match=rf"sample 's{largest}': image file .*{largest}\.png is larger than dataset\.max_image_bytes \({big - 1} bytes\)"):
        _load(image_files, image_field="file", max_image_bytes=big - 1)
    assert len(_load(image_files, image_field="file", max_image_bytes=big)) == 4
    frame = pd.DataFrame({"id": ["a"], "caption": ["x"], "png": [_png((8, 8), "red")]})
    frame.to_parquet(tmp_path / "bytes.parquet")
    with pytest.raises(DataError, match=r"sample 'a': image is larger than dataset\.max_image_bytes \(10 bytes\)"):
        _load(tmp_path / "bytes.parquet", image_field="png", max_image_bytes=10)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        DatasetSpec(max_image_bytes=0)


def test_missing_image_field_and_caption_file_are_named(image_files: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no image field 'picture'"):
        _load(image_files, image_field="picture")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png((4, 4), "red"))
    with pytest.raises(DataError, match="no caption file a.txt"):
        load_dataset(DatasetSpec(path=str(folder), format="images"))
    (folder / "a.txt").mkdir()  # a caption path that is no file: named, or skipped with the sample
    with pytest.raises(DataError, match=r"caption file a.txt cannot be read \(Is a directory\)"):
        load_dataset(DatasetSpec(path=str(folder), format="images"))
    (folder / "b.png").write_bytes(_png((4, 4), "blue"))
    (folder / "b.txt").write_text("a blue square")
    assert load_dataset(DatasetSpec(path=str(folder), format="images", on_error="skip")).texts == ["a blue square"]


def test_a_caption_without_an_image_read_here_is_named_or_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(_png((4, 4), "red"))
    (tmp_path / "a.txt").write_text("a red square")
    (tmp_path / "icon.svg").write_text("<svg/>")
    (tmp_path / "icon.txt").write_text("an icon")
    with pytest.raises(DataError, match=r"icon\.txt: a caption without an image: icon\.svg is not an image format read "
                                        r"here \(\.png"):
        load_dataset(DatasetSpec(path=str(tmp_path), format="images"))
    (tmp_path / "icon.svg").unlink()
    skipped = load_dataset(DatasetSpec(path=str(tmp_path), format="images", on_error="skip"))
    assert (skipped.texts, skipped.skipped) == (["a red square"], 1)
    with pytest.raises(DataError, match=r"icon\.txt: a caption without an image: no image of that name beside it"):
        load_dataset(DatasetSpec(path=str(tmp_path), format="images"))


def test_two_images_of_one_name_in_a_folder_are_refused(tmp_path: Path) -> None:
    """Their ids (the path without its suffix) and their caption file would be one."""
    (tmp_path / "a.png").write_bytes(_png((4, 4), "red"))
    (tmp_path / "a.jpg").write_bytes(_png((4, 4), "red"))
    (tmp_path / "a.txt").write_text("a red square")
    with pytest.raises(DataError, match=r"a.jpg and a.png share the id 'a' and the caption a.txt"):
        load_dataset(DatasetSpec(path=str(tmp_path), format="images"))


def test_a_jpeg_cut_short_is_named_when_the_dataset_loads(image_files: Path) -> None:
    target = image_files.parent / "img" / "2.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="JPEG")
    target.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # a name's suffix is not its format
    with pytest.raises(DataError, match=r"sample 's2'.*truncated"):
        _load(image_files, image_field="file")


def test_image_ops_need_an_image_dataset(tmp_path: Path, small_corpus: Path) -> None:
    (tmp_path / "sandbox.yaml").write_text(
        f"name: t\ndataset: {{path: {small_corpus}}}\nops: [{{name: image_shape_filter}}]\n"
    )
    with pytest.raises(SpecError, match="set dataset.image_field"):
        load_project(tmp_path)


def test_header_ops_and_shared_decode(image_files: Path) -> None:
    ds = _load(image_files, image_field="file")
    batch = ImageBatch(ds.texts, ds.images, ds.table["id"].to_pylist())
    shape = create_op("image_shape_filter").compute(batch)
    assert shape["image_width"].tolist() == [w for w, _ in SIZES]
    assert shape["image_height"].tolist() == [h for _, h in SIZES]
    ratio = create_op("image_aspect_ratio_filter").compute(batch)["aspect_ratios"]
    np.testing.assert_allclose(ratio, [w / h for w, h in SIZES])
    assert create_op("image_size_filter").compute(batch)["image_sizes"].tolist() == [len(b) for b in ds.images]
    assert "rgb" not in batch.__dict__  # header OPs never decode pixels
    assert batch.rgb is batch.rgb and batch.rgb[1].getpixel((0, 0)) == (0, 128, 0)


@pytest.mark.parametrize(("kind", "orientation", "shown"), [
    ("JPEG", 1, (40, 20)), ("JPEG", 3, (40, 20)), ("JPEG", 6, (20, 40)), ("JPEG", 8, (20, 40)), ("PNG", 6, (20, 40)),
    ("WEBP", 5, (20, 40)),
])
def test_header_ops_read_the_shape_an_exif_orientation_shows(kind: str, orientation: int, shown: tuple[int, int]) -> None:
    """A phone's portrait photo is stored wide with orientation 6: its shape, its aspect ratio and its
    decoded pixels all describe the upright picture, as Data-Juicer's loading (exif_transpose) does."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(buffer, format=kind, exif=exif.tobytes())
    batch = ImageBatch(["a photo"], [buffer.getvalue()], ["p"])
    shape = create_op("image_shape_filter").compute(batch)
    assert (shape["image_width"][0], shape["image_height"][0]) == shown
    assert create_op("image_aspect_ratio_filter").compute(batch)["aspect_ratios"][0] == shown[0] / shown[1]
    assert "rgb" not in batch.__dict__  # still no pixel decode
    assert batch.rgb[0].size == shown


def test_transparency_is_composited_on_white_and_corrupt_pixels_name_the_sample() -> None:
    clear = _png((4, 4), (0, 0, 0, 0), mode="RGBA")
    broken = _png((64, 64), "red")[:-30]  # header intact, pixel data cut
    batch = ImageBatch(["clear", "broken"], [clear, broken], ["c", "b"])
    assert batch.shapes.tolist() == [[4, 4], [64, 64]]
    with pytest.raises(DataError, match="sample 'b'"):
        _ = batch.rgb
    assert ImageBatch(["clear"], [clear]).rgb[0].getpixel((0, 0)) == (255, 255, 255)


def test_stats_of_image_ops_in_workers_and_pools_with_image_files(image_files: Path, tmp_path: Path) -> None:
    ds = _load(image_files, image_field="file")
    ops = [create_op("image_shape_filter"), create_op("text_length_filter")]
    one = compute_stats(ds, ops, tmp_path / "cache", workers=1, batch_size=3, progress=False)
    two = compute_stats(ds, ops, tmp_path / "cache2", workers=2, batch_size=2, progress=False)
    pd.testing.assert_frame_equal(one.frame, two.frame)
    assert one.stat("image_width").tolist() == [w for w, _ in SIZES]

    wide = BoundsOrigin(bounds=(("image_width", 30.0, None),))
    pool = Pool(name="wide", dataset_digest=ds.digest, rows=np.array([0, 1]), repeats=np.array([1, 2]), origin=wide)
    path = materialize(pool, ds, tmp_path / "pools")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["text"] for r in rows] == [CAPTIONS[0], CAPTIONS[1], CAPTIONS[1]]
    assert [(path.parent / r["image"]).read_bytes() for r in rows] == [ds.images[0], ds.images[1], ds.images[1]]
    assert len(list((tmp_path / "pools" / "images").iterdir())) == 2


class PixelMean(Op):
    """Mean pixel value (a stand-in for an image model)."""

    name = "test_pixel_mean"
    modality = "image"
    stat_keys = ("pixel_mean",)
    max_batch = 2

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        return {"pixel_mean": np.array([np.asarray(im).mean() for im in batch.rgb])}


class PixelMax(PixelMean):
    """Max pixel value (another stand-in)."""

    name = "test_pixel_max"
    stat_keys = ("pixel_max",)

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        return {"pixel_max": np.array([np.asarray(im).max() for im in batch.rgb], dtype=float)}


def test_image_model_ops_share_one_pass_and_one_decode(
    image_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, register_ops
) -> None:
    from mlsandbox import stats as stats_module

    register_ops(PixelMean, PixelMax)
    ops = [create_op("text_length_filter"), create_op("test_pixel_mean"), create_op("test_pixel_max")]
    assert [[op.name for op in group] for group in stats_module.passes(ops)] == [
        ["text_length_filter"], ["test_pixel_mean", "test_pixel_max"]]
    decodes = []
    original = ImageBatch._decode
    monkeypatch.setattr(ImageBatch, "_decode", lambda self, i: decodes.append(i) or original(self, i))
    ds = _load(image_files, image_field="file")
    stats = compute_stats(ds, ops, tmp_path, progress=False)
    assert len(decodes) == len(ds)  # each image decoded once for both pixel OPs
    assert stats.stat("pixel_max").tolist() == [255.0, 128.0, 255.0, 128.0]


def test_an_image_with_too_many_pixels_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsandbox.images import check_image, decode_rgb

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses images over twice this
    big = _png((64, 64), "red")
    for check in (check_image, decode_rgb):
        with pytest.raises(DataError, match="too many pixels to decode safely"):
            check(big)
