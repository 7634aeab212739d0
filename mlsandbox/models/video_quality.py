"""VBench-style quality dimensions of generated clips, computed without external models.

VBench (Huang et al., 2024) scores generated videos along dimensions, several with pretrained
networks (AMT frame interpolation, RAFT optical flow, ViCLIP). Here each dimension keeps VBench's
definition with a model-free stand-in, so a proxy's clips can be scored offline and the same way
everywhere. Frames are uint8 ``[clips, frames, height, width, 3]``; every score is higher-is-better
except ``dynamic_degree``, which is a share and only says how much the clips move.

* :func:`temporal_flickering`: ``1 - mean |f[t+1] - f[t]|`` over pixels, channels and consecutive
  frame pairs, pixels in ``[0, 1]`` (VBench's ``(255 - MAE) / 255``).
* :func:`motion_smoothness`: VBench drops the odd frames, re-creates them with a frame
  interpolation network and scores ``(255 - MAE) / 255`` against the real ones; here the stand-in
  interpolator is the mean of the two neighbours, exact for motion that is linear in pixel values.
* :func:`dynamic_degree`: the share of clips judged dynamic. As in VBench: per consecutive frame
  pair, dense optical flow (OpenCV's Farneback here, RAFT there) and the mean of its largest 5 %
  magnitudes; a clip is dynamic when at least ``round(4 * frames / 16)`` (at least 1) pairs exceed
  ``6 * min(height, width) / 256`` pixels. Small frames are first enlarged to 64 px with bicubic
  interpolation (Farneback's window needs room), thresholds in the enlarged frame's pixels.
* :func:`alignment_accuracy`: text-video alignment by retrieval. Each clip generated from a caption
  is compared with the real clip of that caption and with distractor real clips of other captions,
  by the distance between colour-layout descriptors (each frame averaged to 4x4 RGB cells, over
  time); the share of generated clips nearest to their own caption's real clip (chance = one over
  the candidates). It rewards clips whose colours, layout and motion follow their caption.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsandbox.errors import EvaluationError

#: Frames are enlarged to at least this side before optical flow.
FLOW_SIDE = 64
#: OpenCV's Farneback settings (Data-Juicer's motion score uses the same).
FARNEBACK: dict[str, Any] = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}
#: Colour-layout cells per side of the alignment descriptor.
LAYOUT_CELLS = 4


def _unit(frames: np.ndarray) -> np.ndarray:
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise EvaluationError(f"clips must be [clips, frames, height, width, 3], got shape {frames.shape}")
    return frames.astype(np.float32) / 255.0


def temporal_flickering(frames: np.ndarray) -> float:
    """``1 - mean |f[t+1] - f[t]|``: 1 for perfectly still clips."""
    x = _unit(frames)
    if x.shape[1] < 2:
        raise EvaluationError("temporal flickering needs clips of at least 2 frames")
    return float(1.0 - np.abs(np.diff(x, axis=1)).mean())


def motion_smoothness(frames: np.ndarray) -> float:
    """``1 - mean |f[t] - (f[t-1] + f[t+1]) / 2|`` over the odd frames ``t`` that have two neighbours."""
    x = _unit(frames)
    if x.shape[1] < 3:
        raise EvaluationError("motion smoothness needs clips of at least 3 frames")
    odd = np.arange(1, x.shape[1] - 1, 2)
    predicted = (x[:, odd - 1] + x[:, odd + 1]) / 2
    return float(1.0 - np.abs(x[:, odd] - predicted).mean())


def dynamic_degree(frames: np.ndarray) -> float:
    """The share of clips with enough large optical-flow magnitudes (VBench's rule, Farneback flow)."""
    try:
        import cv2
    except ImportError:
        raise EvaluationError("dynamic_degree needs OpenCV: pip install 'mlsandbox[video]'") from None
    if frames.ndim != 5 or frames.shape[1] < 2:
        raise EvaluationError(f"dynamic degree needs clips of at least 2 frames, got shape {frames.shape}")
    # Untyped on purpose: OpenCV's stubs differ across releases on the documented None output flow.
    farneback: Any = cv2.calcOpticalFlowFarneback
    _, n_frames, height, width, _ = frames.shape
    scale = max(1.0, FLOW_SIDE / min(height, width))
    size = (round(width * scale), round(height * scale))
    threshold = 6.0 * min(size) / 256.0
    needed = max(1, round(4 * n_frames / 16))
    dynamic = 0
    for clip in frames:
        grey = [cv2.resize(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), size,
                           interpolation=cv2.INTER_CUBIC) for f in clip]
        moving = 0
        for prev, nxt in zip(grey, grey[1:]):
            flow = farneback(prev, nxt, None, **FARNEBACK)
            magnitude = np.hypot(flow[..., 0], flow[..., 1]).ravel()
            top = np.sort(magnitude)[-max(1, int(0.05 * magnitude.size)):]
            moving += bool(top.mean() > threshold)
        dynamic += moving >= needed
    return dynamic / len(frames)


def layout(frames: np.ndarray) -> np.ndarray:
    """Colour-layout descriptors: each frame averaged to ``LAYOUT_CELLS x LAYOUT_CELLS`` RGB cells, ``[clips, D]``."""
    x = _unit(frames)
    n, t, h, w, c = x.shape
    cells = LAYOUT_CELLS
    if h < cells or w < cells:
        raise EvaluationError(f"frames of {h}x{w} px are smaller than the {cells}x{cells} layout grid")
    rows = np.array_split(np.arange(h), cells)
    cols = np.array_split(np.arange(w), cells)
    grid = np.stack([np.stack([x[:, :, r][:, :, :, k].mean(axis=(2, 3)) for k in cols], axis=2) for r in rows], axis=2)
    return grid.reshape(n, t * cells * cells * c)


def alignment_accuracy(generated: np.ndarray, real: np.ndarray, candidates: Sequence[Sequence[int]]) -> float:
    """Share of generated clips ``i`` whose nearest real clip among ``candidates[i]`` (own first) is their own.

    ``generated[i]`` was made from the caption of ``real[candidates[i][0]]``; the others are distractors.
    Real clips are resampled to the generated clips' shape before comparison by the caller.
    """
    if len(generated) != len(candidates):
        raise EvaluationError(f"{len(generated)} generated clips but {len(candidates)} candidate lists")
    gen, ref = layout(generated), layout(real)
    hits = 0
    for g, cands in zip(gen, candidates):
        distances = [float(np.square(ref[j] - g).sum()) for j in cands]
        hits += all(distances[0] < d for d in distances[1:])
    return hits / len(candidates)
