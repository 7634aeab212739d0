"""Video-text datasets: paths, bytes and captioned folders load to the same checked bytes; a bad
video is named or skipped and counted; the digest covers the video bytes; frames are sampled as
Data-Juicer samples them, every sampling of a batch from one decode."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import write_jsonl
from PIL import Image
from typer.testing import CliRunner

from mlsandbox import videos
from mlsandbox.cli import app
from mlsandbox.data import load_dataset
from mlsandbox.errors import DataError, SpecError
from mlsandbox.ops import VideoBatch
from mlsandbox.project import load_project
from mlsandbox.spec import DatasetSpec
from mlsandbox.videos import KeyFrames, SteppedFrames, UniformFrames, check_video, read_header, sample_frames

CAPTIONS = ["a square moves right", "a bar slides down", "a still grey field"]
SIZES = [(48, 32), (32, 64), (40, 40)]


def pattern(i: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Frame ``i`` of a clip: a gradient with a square moving 3 px per frame (distinct frames)."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x * 5 + seed * 40) % 256, (y * 7 + i * 9) % 256, np.full_like(x, 60 + 10 * i)], axis=-1)
    left = (3 * i) % max(width - 8, 1)
    frame[height // 4 : height // 4 + 8, left : left + 8] = 255
    return frame.astype(np.uint8)


def encode_clip(
    frames: Sequence[np.ndarray], fps: int = 8, codec: str = "libx264", keyint: int = 4, fmt: str = "mp4",
    faststart: bool = False,
) -> bytes:
    """Frames encoded with PyAV; a key frame every ``keyint`` frames (no scene-cut key frames);
    ``faststart`` puts an MP4's index before its frames, so a copy cut short still opens."""
    import av

    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip"  # a file, not a buffer: faststart re-reads what it wrote
        with av.open(str(path), "w", format=fmt, options={"movflags": "+faststart"} if faststart else {}) as container:
            options = {"x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"} if codec == "libx264" else {}
            stream = container.add_stream(codec, rate=fps, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec != "libx264":
                stream.codec_context.gop_size = keyint
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        return path.read_bytes()


def clip(n: int = 16, size: tuple[int, int] = (48, 32), seed: int = 0, **kw: object) -> bytes:
    return encode_clip([pattern(i, *size, seed=seed) for i in range(n)], **kw)  # type: ignore[arg-type]


def corrupt_packet(mp4: bytes, n: int) -> bytes:
    """An H.264 MP4 whose ``n``-th coded frame claims a NAL unit longer than the packet: the file
    opens, its header is intact and its first frames decode, and the decoder refuses that frame."""
    import av

    with av.open(io.BytesIO(mp4)) as container:
        positions = [p.pos for p in container.demux(container.streams.video[0]) if p.size]
    damaged = bytearray(mp4)
    damaged[positions[n]:positions[n] + 4] = b"\xff\xff\xff\xff"
    return bytes(damaged)


def all_frames(data: bytes) -> list[tuple[int, bool, np.ndarray]]:
    """Every frame's (pts, key flag, RGB pixels), decoded independently of mlsandbox."""
    import av

    with av.open(io.BytesIO(data)) as container:
        return [(f.pts, f.key_frame, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


@pytest.fixture
def video_files(tmp_path: Path) -> Path:
    """A JSONL file whose rows name MP4 clips in a ``clips/`` folder beside it."""
    (tmp_path / "clips").mkdir()
    rows = []
    for i, (caption, size) in enumerate(zip(CAPTIONS, SIZES)):
        (tmp_path / "clips" / f"{i}.mp4").write_bytes(clip(8 + 4 * i, size, seed=i))
        rows.append({"id": f"v{i}", "caption": caption, "file": f"clips/{i}.mp4"})
    return write_jsonl(tmp_path / "clips.jsonl", rows)


def _load(path: Path, **kw: object):
    return load_dataset(DatasetSpec(path=str(path), text_field="caption", **kw))


# --- loading ---------------------------------------------------------------------------------


def test_paths_bytes_and_video_folders_load_to_the_same_table(video_files: Path, tmp_path: Path) -> None:
    from_paths = _load(video_files, video_field="file")
    assert from_paths.table.column_names[:3] == ["id", "text", "video"]
    files = [(tmp_path / "clips" / f"{i}.mp4").read_bytes() for i in range(3)]
    assert from_paths.videos == files and from_paths.has_videos and not from_paths.has_images

    frame = pd.DataFrame({"id": ["v0", "v1", "v2"], "caption": CAPTIONS, "mp4": files})
    frame.to_parquet(tmp_path / "clips.parquet")
    assert _load(tmp_path / "clips.parquet", video_field="mp4").digest == from_paths.digest

    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    for i, caption in enumerate(CAPTIONS):
        target = folder / ("sub" if i == 2 else "") / f"v{i}.mp4"
        target.write_bytes(files[i])
        target.with_suffix(".txt").write_text(caption + "\n")
    from_folder = load_dataset(DatasetSpec(path=str(folder), format="videos"))
    assert from_folder.table["id"].to_pylist() == ["sub/v2", "v0", "v1"]
    assert from_folder.texts == [CAPTIONS[2], CAPTIONS[0], CAPTIONS[1]]
    assert from_folder.videos == [files[2], files[0], files[1]]


def test_the_digest_covers_the_video_bytes(video_files: Path, tmp_path: Path) -> None:
    before = _load(video_files, video_field="file").digest
    (tmp_path / "clips" / "1.mp4").write_bytes(clip(12, SIZES[1], seed=7))
    assert _load(video_files, video_field="file").digest != before


@pytest.mark.parametrize("damage", ["missing", "truncated", "cut after its first frames", "an unknown codec",
                                    "not a video", "empty"])
def test_bad_videos_name_the_sample_or_are_skipped_and_counted(video_files: Path, damage: str) -> None:
    target = video_files.parent / "clips" / "2.mp4"
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    elif damage == "cut after its first frames":  # opens, and its first frames decode
        whole = clip(16, SIZES[2], fmt="matroska")
        target.write_bytes(whole[: int(len(whole) * 0.6)])
    elif damage == "an unknown codec":
        target.write_bytes(clip(16, SIZES[2]).replace(b"avc1", b"zzzz"))
    elif damage == "not a video":
        target.write_text("hello, not a clip")
    else:
        target.write_bytes(b"")
    with pytest.raises(DataError, match=r"sample 'v2'.*on_error: skip"):
        _load(video_files, video_field="file")
    skipped = _load(video_files, video_field="file", on_error="skip")
    assert skipped.skipped == 1 and skipped.table["id"].to_pylist() == ["v0", "v1"]


def test_a_clip_corrupt_past_its_first_frames_fails_its_cells_naming_the_sample(video_files: Path,
                                                                                tracking_uri: str) -> None:
    """It passes the load (which decodes first frames only); the video model's cells name it."""
    clean = write_jsonl(video_files.parent / "bench.jsonl", _rows(video_files))
    _point_row_2_at_a_bad_clip(video_files)
    result = _train_videos(video_files, benchmark=clean)
    assert result.exit_code == 2, result.output
    assert " seed 0: video of sample 'v2'" in result.stderr and "(and 1 more cells" in result.stderr  # the pool and its control


def test_a_benchmark_clip_corrupt_past_its_first_frames_stops_the_command_before_training(video_files: Path,
                                                                                          tracking_uri: str) -> None:
    """A benchmark is read whole and is small: every frame is decoded when it loads, so a bad clip
    costs no training (exit code 2, one line naming the benchmark and its row)."""
    bench = write_jsonl(video_files.parent / "bench.jsonl", _rows(video_files))
    _point_row_2_at_a_bad_clip(bench)
    result = _train_videos(video_files, benchmark=bench)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: benchmark 'b': video of row 3 (")
    assert "cannot decode the video" in result.output and "FAILED" not in result.output
    assert not (video_files.parent / "ws" / "stats").exists()  # nothing computed before the refusal


def _rows(jsonl: Path) -> list[dict]:
    return [json.loads(line) for line in jsonl.read_text().splitlines()]


def _point_row_2_at_a_bad_clip(jsonl: Path) -> None:
    """Row 2 of ``jsonl`` names ``clips/bad.mp4``: a clip whose first frames decode and its 9th does not."""
    (jsonl.parent / "clips" / "bad.mp4").write_bytes(corrupt_packet(clip(16, SIZES[2], seed=2), 8))
    rows = _rows(jsonl)
    rows[2]["file"] = "clips/bad.mp4"
    write_jsonl(jsonl, rows)


def _train_videos(video_files: Path, benchmark: Path):  # type: ignore[no-untyped-def]
    """``train`` of a pool of every sample with a one-step tiny-t2v on ``video_files``, scored on ``benchmark``."""
    write_jsonl(video_files.parent / "pool.jsonl", [{"id": f"v{i}"} for i in range(3)])
    video = {"text_field": "caption", "video_field": "file"}
    spec = {"name": "corrupt", "dataset": {"path": str(video_files), **video}, "ops": [{"name": "video_duration_filter"}],
            "seeds": [0], "stats": {"workers": 1}, "workspace": str(video_files.parent / "ws"),
            "model": {"type": "tiny-t2v", "max_steps": 1}, "benchmarks": [{"name": "b", "path": str(benchmark), **video}]}
    (video_files.parent / "sandbox.yaml").write_text(yaml.safe_dump(spec))
    return CliRunner().invoke(app, ["train", "-p", str(video_files.parent), "--pool-file",
                                    str(video_files.parent / "pool.jsonl"), "-q"])


def test_a_video_path_that_is_not_a_regular_file_is_refused_unread(video_files: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes")
    pipe = video_files.parent / "pipe.mp4"
    os.mkfifo(pipe)  # reading it the usual way would wait for a writer
    rows = [json.loads(line) for line in video_files.read_text().splitlines()]
    rows[1]["file"] = str(pipe)
    write_jsonl(video_files, rows)
    with pytest.raises(DataError, match=rf"sample 'v1': video path {pipe} is not a regular file"):
        _load(video_files, video_field="file")


def test_videos_larger_than_max_video_bytes_are_refused(video_files: Path) -> None:
    largest = max(range(3), key=lambda i: (video_files.parent / "clips" / f"{i}.mp4").stat().st_size)
    size = (video_files.parent / "clips" / f"{largest}.mp4").stat().st_size
    with pytest.raises(DataError, match=rf"sample 'v{largest}': video file .* is larger than dataset\.max_video_bytes"):
        _load(video_files, video_field="file", max_video_bytes=size - 1)
    assert len(_load(video_files, video_field="file", max_video_bytes=size)) == 3


def test_missing_fields_captions_and_mixed_media_are_named(video_files: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no video field 'clip'"):
        _load(video_files, video_field="clip")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip(4))
    with pytest.raises(DataError, match="no caption file a.txt beside the video"):
        load_dataset(DatasetSpec(path=str(folder), format="videos"))
    with pytest.raises(ValueError, match="an image or a video, not both"):
        DatasetSpec(path="x.jsonl", image_field="img", video_field="clip")


def test_a_folders_bad_clip_is_named_once_or_skipped_with_a_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, data in (("a", clip(4)), ("b", b"not a clip")):
        (folder / f"{name}.mp4").write_bytes(data)
        (folder / f"{name}.txt").write_text(f"clip {name}")
    with pytest.raises(DataError) as err:
        load_dataset(DatasetSpec(path=str(folder), format="videos"))
    assert str(err.value).count(str(folder / "b.mp4")) == 1, err.value
    with caplog.at_level("WARNING"):
        loaded = load_dataset(DatasetSpec(path=str(folder), format="videos", on_error="skip"))
    assert loaded.skipped == 1 and "skipped 1 malformed rows" in caplog.text


def test_video_ops_need_a_video_dataset(tmp_path: Path, small_corpus: Path) -> None:
    (tmp_path / "sandbox.yaml").write_text(
        f"name: t\ndataset: {{path: {small_corpus}}}\nops: [{{name: video_duration_filter}}]\n"
    )
    with pytest.raises(SpecError, match="set dataset.video_field"):
        load_project(tmp_path)


def test_a_bad_video_stops_the_command_line_with_one_line(video_files: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mlsandbox.cli import app

    (video_files.parent / "clips" / "0.mp4").write_bytes(b"\x00" * 64)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "sandbox.yaml").write_text(
        f"name: t\nworkspace: {tmp_path / 'ws'}\n"
        f"dataset: {{path: {video_files}, text_field: caption, video_field: file}}\n"
        "ops: [{name: video_duration_filter}]\n"
    )
    result = CliRunner().invoke(app, ["stats", "-p", str(project), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sample 'v0'" in lines[0], result.stderr


# --- headers and frame sampling --------------------------------------------------------------


def test_the_header_is_read_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = clip(16, (48, 32), fps=8)
    monkeypatch.setattr(videos, "_decode", lambda *a: pytest.fail("a header read decoded a frame"))
    header = read_header(data)
    assert (header.width, header.height, header.fps, header.frames) == (48, 32, 8.0, 16)
    assert header.duration == Fraction(2)  # 16 frames at 8 fps


def test_check_video_decodes_the_first_frame() -> None:
    assert check_video(clip(4)).width == 48
    with pytest.raises(DataError, match="not a video FFmpeg can read"):
        check_video(b"plain text, no container")
    for fmt in ("PNG", "JPEG"):
        still = io.BytesIO()
        Image.new("RGB", (8, 8)).save(still, fmt)
        with pytest.raises(DataError, match=r"a still image \(\w+_pipe\), not a video"):
            check_video(still.getvalue())


def dj_uniform(data: bytes, frame_num: int) -> list[int]:
    """Data-Juicer's ``extract_video_frames_uniformly``, as indices of the frames it returns."""
    frames = all_frames(data)
    header = read_header(data)
    n = min(frame_num, header.frames)
    duration = header.duration
    seconds = [duration / 2] if n == 1 else [duration / (n - 1) * i for i in range(n)]
    out, search = [], 0
    for index, (pts, _, _) in enumerate(frames):
        if search < len(seconds) and pts >= seconds[search] / header.time_base:
            out.append(index)
            search += 1
    if search < len(seconds):
        out.append(len(frames) - 1)
    return out


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_samplings_pick_data_juicers_frames_from_one_decode(codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = clip(14, (48, 32), codec=codec, keyint=5)
    frames = all_frames(data)
    wanted = [KeyFrames(), UniformFrames(3), UniformFrames(1), UniformFrames(40), SteppedFrames(2.0)]
    passes = []
    real = videos._decode
    monkeypatch.setattr(videos, "_decode", lambda *a: passes.append(1) or real(*a))
    got = sample_frames(data, wanted)
    assert len(passes) == 1

    def index_of(sampled: list[np.ndarray]) -> list[int]:
        return [next(i for i, (_, _, px) in enumerate(frames) if np.array_equal(px, f)) for f in sampled]

    assert index_of(got[KeyFrames()]) == [i for i, (_, key, _) in enumerate(frames) if key] == [0, 5, 10]
    assert index_of(got[UniformFrames(3)]) == dj_uniform(data, 3) == [0, 7, 13]
    assert index_of(got[UniformFrames(1)]) == dj_uniform(data, 1) == [7]
    capped = dj_uniform(data, 40)  # 14 targets: as many as there are frames
    assert index_of(got[UniformFrames(40)]) == capped and len(capped) == 14 and capped[-1] == 13
    assert index_of(got[SteppedFrames(2.0)]) == [0, 4, 8, 12]  # step round(8 / 2)
    # Key frames alone skip the other frames in the decoder, and give the same frames.
    alone = sample_frames(data, [KeyFrames()])[KeyFrames()]
    assert all(np.array_equal(a, b) for a, b in zip(alone, got[KeyFrames()])) and len(alone) == 3


def test_a_clip_corrupt_past_its_first_frames_loads_and_its_frames_fail_naming_the_sample() -> None:
    """The load decodes the first frame only (a whole decode per load costs too much for long
    clips); the frame pass that decodes the rest names the sample."""
    damaged = corrupt_packet(clip(16), 8)
    assert check_video(damaged).frames == 16
    batch = VideoBatch(["a red square"], [damaged], ["c7"], samplings=[UniformFrames(3)])
    with pytest.raises(DataError, match=r"sample 'c7': cannot decode the video"):
        batch.frames(UniformFrames(3))


def test_a_clip_whose_codec_ffmpeg_cannot_decode_is_one_error() -> None:
    unknown = clip(16).replace(b"avc1", b"zzzz")  # the MP4's codec tag
    for read in (check_video, read_header, lambda data: sample_frames(data, [UniformFrames(3)])):
        with pytest.raises(DataError, match="no decoder for the video stream's codec"):
            read(unknown)


def test_stepped_sampling_keeps_two_frames_of_a_short_clip() -> None:
    header = read_header(clip(3, fps=30))
    assert SteppedFrames(2.0).step(header) == 2  # round(30 / 2) = 15, clamped to frames - 1
    assert SteppedFrames(100.0).step(header) == 1


@pytest.mark.parametrize("fmt", ["matroska", "mp4"])
def test_a_clip_cut_short_is_refused_when_it_loads(fmt: str) -> None:
    """A file cut after a few frames opens and decodes them without an error: the count of coded
    frames against the header's (declared by the MP4, implied by duration x fps in Matroska) tells."""
    whole = clip(16, fmt=fmt, faststart=fmt == "mp4")
    assert check_video(whole).width == 48
    cut = whole[: int(len(whole) * 0.6)]
    assert read_header(cut).width == 48  # the header is intact
    # Matroska ends cleanly after the last whole frame; the MP4's index points past the end.
    said = r"the stream ends after \d+ of the 16 frames its header implies" if fmt == "matroska" else "truncated"
    with pytest.raises(DataError, match=said):
        check_video(cut)
    with pytest.raises(DataError, match=said):
        sample_frames(cut, [UniformFrames(3)])
