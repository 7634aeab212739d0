"""Encoded videos: read a header, check a clip opens, sample frames in one decode. The one place
that opens video bytes (PyAV).

Datasets check every video when they load (:func:`check_video`: container, codec, first frame,
and the count of coded frames against the header's).
Header statistics come from :func:`read_header`, which decodes nothing. Frame statistics ask for
frames by a :data:`FrameSampling` (Data-Juicer's key frames, uniform frames, or every n-th frame
for optical flow); :func:`sample_frames` serves any number of samplings from **one** pass over
the stream, converting only the frames some sampling keeps to RGB.
"""

from __future__ import annotations

import io
import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsandbox.errors import DataError, first_line

if TYPE_CHECKING:
    import av.container
    import av.video.frame
    import av.video.stream

#: FFmpeg's time unit for container durations (``AV_TIME_BASE``).
_AV_TIME_BASE = 1_000_000


@dataclass(frozen=True)
class VideoHeader:
    """What a video's container header says about its first video stream (nothing decoded)."""

    width: int
    height: int
    #: Seconds: the stream's duration, else the container's (what Data-Juicer reads).
    duration: Fraction
    #: Average frame rate (frames per second), else FFmpeg's guess; 0 when unknown.
    fps: float
    #: Frame count the container declares; 0 when it declares none.
    frames: int
    #: Frame count as OpenCV reports it: the declared count, else ``round(seconds * fps)``.
    estimated_frames: int
    #: Seconds per timestamp unit of the stream.
    time_base: Fraction


@dataclass(frozen=True)
class KeyFrames:
    """Every key frame, in order (Data-Juicer's ``"all_keyframes"``); the first frame if none is key."""


@dataclass(frozen=True)
class UniformFrames:
    """``frame_num`` frames spread over the duration (Data-Juicer's ``"uniform"``).

    Target times are ``duration / 2`` for one frame, else ``i * duration / (frame_num - 1)``
    for ``i = 0 .. frame_num - 1``; each takes the first frame not yet taken whose timestamp is
    at or after it, and targets past the last frame take the last frame once. ``frame_num`` is
    capped at the declared frame count.
    """

    frame_num: int


@dataclass(frozen=True)
class SteppedFrames:
    """Every ``step``-th frame from the first, ``step = round(fps / min(sampling_fps, fps))``
    clamped to ``[1, frames - 1]`` (Data-Juicer's motion-score sampling)."""

    sampling_fps: float

    def step(self, header: VideoHeader) -> int:
        if header.fps <= 0:
            return 1
        step = round(header.fps / min(self.sampling_fps, header.fps))
        return max(min(step, header.estimated_frames - 1), 1)


FrameSampling = KeyFrames | UniformFrames | SteppedFrames

#: Decoded frames: ``(height, width, 3)`` uint8 RGB arrays.
Frames = list[np.ndarray]


def read_header(data: bytes) -> VideoHeader:
    """The header of the first video stream; decodes no frame. :class:`DataError` if unreadable."""
    with _open(data) as container:
        return _header(container)


def check_video(data: bytes) -> VideoHeader:
    """The header, after checking that the container opens with a codec FFmpeg decodes, its first
    frame decodes, and its stream holds the frames its header declares (:func:`_check_complete` on
    the count of coded frames).

    The stream is read to its end but decoded only up to its first frame: a clip cut short is
    refused when the dataset loads, where ``on_error: skip`` can skip it. Decoding every frame
    would catch a clip corrupt inside its later frames too, but would cost a decode pass on every
    load (0.25 s of CPU against 0.04 s for a 10 s 360p H.264 clip); such a clip fails where its
    frames are decoded, naming its sample (a frame OP, a video model's cell), or, in a benchmark,
    when it loads (:func:`check_every_frame`)."""
    with _open(data) as container:
        header = _header(container)
        stream = container.streams.video[0]
        coded = decoded = 0
        for packet in _demux(container, stream):
            coded += packet.size > 0  # the demuxer ends with an empty packet that flushes the decoder
            if not decoded:
                decoded = len(_decode_packet(stream, packet))
        if not decoded:
            raise DataError("no frame of the video stream decodes (empty or truncated video)")
        _check_complete(header, coded)
        return header


def check_every_frame(data: bytes) -> None:
    """:func:`check_video`, then every frame decoded: for sets read whole and small (benchmarks),
    where a clip corrupt inside its later frames must stop the load rather than the scoring that
    follows the training. :class:`DataError` if one does not decode."""
    with _open(data) as container:
        header = _header(container)
        _check_complete(header, decoded=sum(1 for _ in _decode(container, container.streams.video[0])))


def sample_frames(data: bytes, samplings: Collection[FrameSampling]) -> dict[FrameSampling, Frames]:
    """The frames of every sampling, from one decoding pass over the video.

    Only frames some sampling keeps are converted to RGB; a frame kept by several samplings is
    converted once and shared. When every sampling wants key frames only, the decoder skips the
    other frames altogether.
    """
    if not samplings:
        return {}
    with _open(data) as container:
        header = _header(container)
        stream = container.streams.video[0]
        keys_only = all(isinstance(s, KeyFrames) for s in samplings)
        if keys_only:
            stream.codec_context.skip_frame = "NONKEY"
        pickers = {s: _picker(s, header) for s in samplings}
        kept: dict[int, np.ndarray] = {}
        index, last = -1, None
        for index, frame in enumerate(_decode(container, stream)):
            # Every picker sees every frame: each keeps its own state.
            if any([picker.offer(index, frame.pts, frame.key_frame) for picker in pickers.values()]):
                kept[index] = _rgb(frame)
            last = frame
        if last is None and keys_only:  # no key frame at all: the first frame stands in
            stream.codec_context.skip_frame = "DEFAULT"
            container.seek(0)
            last = next(_decode(container, stream), None)
            index = 0 if last is not None else -1
        if not keys_only:
            _check_complete(header, decoded=index + 1)
        for picker in pickers.values():
            picker.finish(index)
            if picker.indices and picker.indices[-1] == index and index not in kept and last is not None:
                kept[index] = _rgb(last)
    return {s: [kept[i] for i in picker.indices] for s, picker in pickers.items()}


def _check_complete(header: VideoHeader, decoded: int) -> None:
    """Refuse a stream that ends well before its header says: a file cut short decodes its first
    frames without an error. A declared frame count is exact; one implied by duration x fps is
    allowed a tenth (at least a frame) of slack."""
    expected = header.frames or header.estimated_frames
    slack = 0 if header.frames else max(1, round(0.1 * expected))
    if decoded < expected - slack:
        said = "declares" if header.frames else "implies"
        raise DataError(f"the stream ends after {decoded} of the {expected} frames its header {said} (truncated video)")


# --- opening and decoding --------------------------------------------------------------------


#: The extra that installs what video datasets and OPs need.
INSTALL = "pip install 'mlsandbox[video]'"


def _open(data: bytes) -> av.container.InputContainer:
    try:
        import av
    except ImportError:
        raise DataError(f"reading videos needs PyAV: {INSTALL}") from None
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(f"not a video FFmpeg can read ({first_line(err)})") from None
    if not container.streams.video:
        container.close()
        raise DataError("the container has no video stream")
    if container.streams.video[0].codec_context is None:
        container.close()
        raise DataError("FFmpeg has no decoder for the video stream's codec (unknown or corrupt codec tag)")
    if container.format.name.endswith("_pipe") or container.format.name == "image2":  # FFmpeg's still images
        name = container.format.name
        container.close()
        raise DataError(f"a still image ({name}), not a video")
    return container


def _header(container: av.container.InputContainer) -> VideoHeader:
    stream = container.streams.video[0]
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise DataError("the video stream declares no frame size")
    time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, _AV_TIME_BASE)
    container_seconds = Fraction(container.duration, _AV_TIME_BASE) if container.duration else None
    if stream.duration:
        duration = stream.duration * time_base
    else:
        duration = container_seconds or Fraction(0)
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    frames = int(stream.frames or 0)
    seconds = container_seconds if container_seconds is not None else duration
    estimated = frames or math.floor(float(seconds) * fps + 0.5)
    return VideoHeader(width, height, duration, fps, frames, estimated, time_base)


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[Any]:
    """The stream's frames in presentation order; the single place frames are decoded."""
    import av

    try:
        yield from container.decode(stream)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(f"cannot decode the video (truncated or corrupt): {first_line(err)}") from None


def _demux(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[Any]:
    """The stream's coded packets, without decoding them."""
    import av

    try:
        yield from container.demux(stream)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(f"cannot read the video (truncated or corrupt): {first_line(err)}") from None


def _decode_packet(stream: av.video.stream.VideoStream, packet: Any) -> list[Any]:
    import av

    try:
        return list(stream.decode(packet))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise DataError(f"cannot decode the video (truncated or corrupt): {first_line(err)}") from None


def _rgb(frame: av.video.frame.VideoFrame) -> np.ndarray:
    pixels = frame.to_ndarray(format="rgb24")
    pixels.flags.writeable = False  # shared by every OP and sampling that keeps this frame
    return pixels


# --- which frames each sampling keeps --------------------------------------------------------


class _Picker(ABC):
    """Decides, frame by frame, whether a sampling keeps a frame; ``indices`` lists its choices."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    @abstractmethod
    def offer(self, index: int, pts: int | None, key: bool) -> bool:
        """Whether the frame must be kept: chosen, or possibly needed by :meth:`finish`."""

    @abstractmethod
    def finish(self, last: int) -> None:
        """After the last frame (index ``last``, -1 for none): add any frame chosen at the end."""


class _KeyPicker(_Picker):
    def offer(self, index: int, pts: int | None, key: bool) -> bool:
        if key:
            self.indices.append(index)
        return key or index == 0  # the first frame stands in when no frame is key

    def finish(self, last: int) -> None:
        if not self.indices and last >= 0:
            self.indices.append(0)


class _UniformPicker(_Picker):
    def __init__(self, sampling: UniformFrames, header: VideoHeader) -> None:
        super().__init__()
        n = min(sampling.frame_num, header.frames) if header.frames else sampling.frame_num
        d = header.duration
        seconds = [d / 2] if n == 1 else [d / (n - 1) * i for i in range(n)]
        self.targets = [s / header.time_base for s in seconds]  # in timestamp units, exact

    def offer(self, index: int, pts: int | None, key: bool) -> bool:
        done = len(self.indices)
        if pts is None or done >= len(self.targets) or pts < self.targets[done]:
            return False
        self.indices.append(index)
        return True

    def finish(self, last: int) -> None:
        if len(self.indices) < len(self.targets) and last >= 0:  # targets past the end: the last frame, once
            self.indices.append(last)


class _SteppedPicker(_Picker):
    def __init__(self, sampling: SteppedFrames, header: VideoHeader) -> None:
        super().__init__()
        self.step = sampling.step(header)

    def offer(self, index: int, pts: int | None, key: bool) -> bool:
        if index % self.step:
            return False
        self.indices.append(index)
        return True

    def finish(self, last: int) -> None:
        """Nothing: the n-th frames were all chosen as they came."""


def _picker(sampling: FrameSampling, header: VideoHeader) -> _Picker:
    if isinstance(sampling, KeyFrames):
        return _KeyPicker()
    if isinstance(sampling, UniformFrames):
        return _UniformPicker(sampling, header)
    return _SteppedPicker(sampling, header)
