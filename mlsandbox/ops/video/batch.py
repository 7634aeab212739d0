"""The batch video OPs read: captions, encoded videos, header views and shared sampled frames."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from mlsandbox import videos
from mlsandbox.errors import DataError
from mlsandbox.ops.batch import TextBatch
from mlsandbox.videos import Frames, FrameSampling, VideoHeader

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")


class VideoBatch(TextBatch):
    """Captions with their encoded videos; each video is decoded at most once per batch.

    ``headers`` reads container headers only. ``frames(sampling)`` returns every video's frames
    for one :data:`~mlsandbox.videos.FrameSampling`; the first call decodes each video once for
    **all** the ``samplings`` the batch was built with (the frame OPs' plan, from
    :func:`~mlsandbox.ops.video.frame_samplings`), so OPs sampling frames the same or different
    ways share one decode. A sampling outside the plan costs one more pass. A corrupt video
    raises :class:`DataError` naming the sample id.
    """

    def __init__(
        self,
        texts: Sequence[str],
        videos: Sequence[bytes],
        ids: Sequence[str] | None = None,
        samplings: Iterable[FrameSampling] = (),
    ) -> None:
        super().__init__(texts)
        if len(videos) != len(self.texts):
            raise ValueError(f"a video batch needs one video per text ({len(videos)} videos, {len(self.texts)} texts)")
        self.videos: list[bytes] = list(videos)
        self.ids: list[str] = list(ids) if ids is not None else [str(i) for i in range(len(self.texts))]
        self._plan: list[FrameSampling] = list(dict.fromkeys(samplings))
        self._frames: dict[FrameSampling, list[Frames]] = {}
        self._images: dict[FrameSampling, list[list[Image.Image]]] = {}

    @cached_property
    def headers(self) -> list[VideoHeader]:
        """Each video's container header (size, duration, frame rate); no frame is decoded."""
        return [self._checked(i, videos.read_header) for i in range(len(self.videos))]

    def frames(self, sampling: FrameSampling) -> list[Frames]:
        """Each video's frames for ``sampling``: ``(height, width, 3)`` uint8 RGB arrays, shared (read-only)."""
        if sampling not in self._frames:
            todo = [s for s in dict.fromkeys([*self._plan, sampling]) if s not in self._frames]
            per_video = [self._checked(i, lambda data: videos.sample_frames(data, todo)) for i in range(len(self))]
            for s in todo:
                self._frames[s] = [sampled[s] for sampled in per_video]
        return self._frames[sampling]

    def images(self, sampling: FrameSampling) -> list[list[Image.Image]]:
        """``frames(sampling)`` as RGB Pillow images (what Hugging Face processors take), made once."""
        if sampling not in self._images:
            from PIL import Image

            self._images[sampling] = [[Image.fromarray(f) for f in video] for video in self.frames(sampling)]
        return self._images[sampling]

    def _checked(self, i: int, read: Callable[[bytes], T]) -> T:
        try:
            return read(self.videos[i])
        except DataError as err:
            raise DataError(f"sample {self.ids[i]!r}: {err}") from None
