"""The bundled captioned-video demo set: what PROVENANCE.md promises about its files, its planted
defects and its held-out benchmark subjects, and that it flows through the data and pool layers
(a pool file names its clips by path, each written once)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlsandbox.data import builtin_path, load_dataset
from mlsandbox.pools import Pool, RandomOrigin, materialize
from mlsandbox.spec import DatasetSpec
from mlsandbox.videos import SteppedFrames, check_video, read_header, sample_frames

DIR = Path(str(builtin_path("builtin:videos")))
BENCHES = ("emoji", "stamps")
DEFECTS = ("static", "text_overlay", "watermark", "mismatched_caption", "extreme_aspect", "too_short",
           "near_duplicate")
COLUMNS = ["id", "text", "video", "source", "subject", "motion", "defect"]


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return pq.read_table(DIR / "clips.parquet").to_pandas()


@pytest.fixture(scope="module")
def benches() -> dict[str, pd.DataFrame]:
    return {name: pq.read_table(DIR / f"bench_{name}.parquet").to_pandas() for name in BENCHES}


def test_shipped_files_exist_and_stay_small() -> None:
    files = sorted(p.name for p in DIR.glob("*.parquet"))
    assert files == ["bench_emoji.parquet", "bench_stamps.parquet", "clips.parquet"]
    assert sum((DIR / f).stat().st_size for f in files) < 6_000_000


def test_every_file_has_the_documented_columns_and_unique_ids(pool: pd.DataFrame, benches: dict) -> None:
    ids: list[str] = []
    for frame in [pool, *benches.values()]:
        assert list(frame.columns) == COLUMNS
        assert frame["text"].str.len().min() > 10
        ids += frame["id"].tolist()
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"(emoji|stamp)-\d{4}", i) for i in ids)


def test_two_fifths_carry_one_defect_in_equal_shares(pool: pd.DataFrame) -> None:
    counts = Counter(pool["defect"].fillna("clean"))
    assert len(pool) == 3500
    assert counts == {"clean": 2100, **{d: 200 for d in DEFECTS}}


def test_benchmarks_are_clean_and_hold_out_whole_subjects(pool: pd.DataFrame, benches: dict) -> None:
    pool_subjects = set(pool["subject"])
    for name, frame in benches.items():
        assert frame["defect"].isna().all()
        assert not set(frame["subject"]) & pool_subjects, f"bench_{name} shares subjects with the pool"
        assert not set(frame["video"]) & set(pool["video"])
    # Every pool caption, mismatched ones included, is about a pool subject; a held-out phrase
    # shows up only inside a longer pool phrase ("a clock face" in "a clock face two oclock").
    held = {s for frame in benches.values() for s in frame["subject"]}
    for caption in pool["text"]:
        padded = f" {caption.lower().rstrip('.')} "
        named_pool = [s for s in pool_subjects if f" {s} " in padded]
        assert named_pool, caption
        assert all(any(h in p for p in named_pool) for h in held if f" {h} " in padded), caption


def test_benchmark_sizes_and_sources(benches: dict) -> None:
    assert len(benches["emoji"]) == 240 and set(benches["emoji"]["source"]) == {"noto-emoji"}
    assert len(benches["stamps"]) == 160 and set(benches["stamps"]["source"]) == {"tuxpaint"}


def test_clip_headers_match_their_defects(pool: pd.DataFrame) -> None:
    sample = pool.groupby(pool["defect"].fillna("clean")).head(25)
    for video, defect in zip(sample["video"], sample["defect"].fillna("clean")):
        header = read_header(video)
        assert header.fps == 8
        ratio = header.width / header.height
        if defect == "too_short":
            assert header.frames in (2, 3)
        else:
            assert 8 <= header.frames <= 16
        if defect == "extreme_aspect":
            assert max(ratio, 1 / ratio) >= 4
        else:
            assert 32 <= min(header.width, header.height) and max(header.width, header.height) <= 64
            assert max(ratio, 1 / ratio) <= 16 / 9 + 1e-9


def test_static_clips_do_not_move_and_clean_clips_do(pool: pd.DataFrame) -> None:
    every = SteppedFrames(float("inf"))

    def change(video: bytes) -> float:
        frames = np.stack(sample_frames(video, [every])[every]).astype(float)
        return float(np.abs(frames[-1] - frames[0]).mean())

    static = pool[pool["defect"] == "static"]["video"].head(10)
    clean = pool[pool["defect"].isna()]["video"].head(10)
    assert max(change(v) for v in static) < 2.0
    assert min(change(v) for v in clean) > 2.0


def test_captions_name_subject_motion_and_background(pool: pd.DataFrame) -> None:
    clean = pool[pool["defect"].isna()]
    for caption, subject in zip(clean["text"], clean["subject"]):
        assert subject in caption and re.search(r" on a \w+ background$", caption)


def test_benchmarks_load_through_the_data_layer() -> None:
    for name in BENCHES:
        dataset = load_dataset(DatasetSpec(path=str(DIR / f"bench_{name}.parquet"), video_field="video"))
        assert dataset.has_videos and len(dataset) in (160, 240)
        check_video(dataset.videos[0])  # type: ignore[index]


def test_a_materialised_pool_of_clips_loads_back_with_the_same_videos(tmp_path: Path) -> None:
    dataset = load_dataset(DatasetSpec(path=str(DIR / "bench_stamps.parquet"), video_field="video"))
    rows = np.array([0, 3, 5])
    pool = Pool("three", dataset.digest, rows, np.array([1, 2, 1]), RandomOrigin(seed=0))
    path = materialize(pool, dataset, tmp_path / "pools")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 4 and all(r["video"].startswith("videos/") and r["video"].endswith(".mp4") for r in records)
    written = [(path.parent / r["video"]).read_bytes() for r in records]
    assert written == [dataset.videos[i] for i in (0, 3, 3, 5)]  # type: ignore[index]
    assert len(list((tmp_path / "pools" / "videos").glob("*.mp4"))) == 3


def test_provenance_reports_the_shipped_counts(pool: pd.DataFrame) -> None:
    text = (DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    assert f"| `clips.parquet` | {len(pool)} | {(DIR / 'clips.parquet').stat().st_size:,} |" in text
    for d in DEFECTS:
        assert f"| `{d}` | 200 |" in text
    assert "scripts/build_video_set.py" in text and "byte-identical" in text
