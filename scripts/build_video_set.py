#!/usr/bin/env python
"""Build the bundled captioned-video demo set and its held-out benchmark sets.

Every clip moves one real, openly licensed picture along a recorded camera path: Noto Color
Emoji glyphs (captioned by their Unicode names) and Tux Paint stamps (captioned by their own
caption files), drifting left/right/up/down, zoomed in or out, or spinning, over a plain
coloured background. The caption says what moves, how, and on which background ("a red apple
drifts left on a blue background"). 40 % of the training rows carry one planted defect, in
equal shares, each one a video OP can catch; the benchmark sets are clean and use subjects the
pool never shows (see ``mlsandbox/resources/videos/PROVENANCE.md``).

The input packages need not be installed: extract them anywhere and pass ``--root``::

    apt-get download fonts-noto-color-emoji tuxpaint-stamps-default fonts-dejavu-core
    for f in *.deb; do dpkg-deb -x "$f" /tmp/video-src; done
    python scripts/build_video_set.py --root /tmp/video-src

The output is byte-identical on every run with the same package versions: every random choice
comes from one seeded ``random.Random`` drawn in a fixed order, clips are encoded by libx264 on
one thread without its assembly routines, the MP4 muxer runs in bit-exact mode, and Parquet is
written with fixed options.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

SEED = 20240917
REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "mlsandbox" / "resources" / "videos"

EMOJI_FONT = "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
TUXPAINT_DIR = "usr/share/tuxpaint/stamps"
DEJAVU_BOLD = "usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
EMOJI_SIZE = 109                      # the only bitmap strike of Noto Color Emoji
SUPERSAMPLE = 4                       # frames are drawn at 4x and box-filtered down: sub-pixel motion
FPS = 8
CRF = 26
SPRITE_SIDE = 160                     # sprites are kept at this longest side before scaling

DEFECTS = ("static", "text_overlay", "watermark", "mismatched_caption", "extreme_aspect", "too_short",
           "near_duplicate")
PER_DEFECT = 200                      # rows per defect: 1,400 of 3,500 (40 %)
POOL_BASE_ROWS = 3300                 # clips rendered for the pool; near-duplicates are added on top
BENCH_SIZES = {"emoji": 240, "stamps": 160}
BENCH_SOURCES = {"emoji": "noto-emoji", "stamps": "tuxpaint"}
PREFIXES = {"noto-emoji": "emoji", "tuxpaint": "stamp"}

# Clip sizes (width, height) with weights: mostly square, some landscape and portrait.
SIZES = (((48, 48), 0.34), ((32, 32), 0.12), ((64, 64), 0.12), ((64, 48), 0.14), ((48, 36), 0.08),
         ((64, 36), 0.08), ((48, 64), 0.06), ((36, 48), 0.06))
EXTREME_SIZES = ((64, 14), (64, 12), (60, 12), (56, 12), (14, 64), (12, 64), (12, 60), (12, 56))
BACKGROUNDS = {
    "white": (244, 244, 240), "black": (22, 22, 26), "blue": (58, 108, 210), "green": (64, 156, 76),
    "yellow": (238, 206, 64), "red": (196, 52, 48), "grey": (128, 128, 128), "pink": (238, 160, 190),
    "purple": (128, 72, 168), "orange": (238, 140, 44),
}
MOTIONS = {
    "left": ("{s} drifts left", "{s} moves to the left", "{s} slides to the left"),
    "right": ("{s} drifts right", "{s} moves to the right", "{s} slides to the right"),
    "up": ("{s} floats upward", "{s} rises up", "{s} moves up"),
    "down": ("{s} sinks down", "{s} falls down", "{s} moves down"),
    "zoom_in": ("zooming in on {s}", "the camera zooms in on {s}", "{s} grows larger"),
    "zoom_out": ("zooming out from {s}", "the camera pulls back from {s}", "{s} shrinks"),
    "rotate_cw": ("{s} spins clockwise", "{s} rotates clockwise", "{s} turns clockwise"),
    "rotate_ccw": ("{s} spins counterclockwise", "{s} rotates counterclockwise", "{s} turns counterclockwise"),
}
# Burned-in overlays: large banner text across the frame (what OCR finds) ...
OVERLAY_TEXTS = ("SALE", "WOW", "NEW", "LOL", "OMG", "HOT", "FREE", "TOP 10", "LIKE", "HD", "LIVE", "WIN")
# ... and small, translucent stock-footage marks in a corner or across the frame.
WATERMARK_TEXTS = ("© clipstock", "SAMPLE", "PREVIEW", "stockvid.com", "© motionbank", "DEMO", "draft")

# Emoji names that describe a written sign rather than a thing: OCR would flag the clean clip.
TEXT_LIKE = re.compile(r"\b(squared|circled|negative|keycap|input|sign|symbol|ideograph|latin|letter|digit|"
                       r"number|button|mark|parenthesized|regional|tag|combining|variation)\b|^no ")
# Tux Paint folders of letters, numbers, coins and road signs (text on the picture).
STAMP_SKIP = ("symbols/alphabets", "symbols/math", "symbols/money", "town/roadsigns", "symbols/chess",
              "symbols/music", "military")


@dataclass
class Subject:
    """One source picture and the noun phrase that names it ("a red apple")."""

    key: str          # code point or stamp path: what the benchmark split holds out
    source: str
    phrase: str
    sprite: Image.Image | None = None


@dataclass
class Plan:
    """Everything needed to render one clip; defects edit a copy."""

    subject: Subject
    motion: str
    background: str
    size: tuple[int, int]
    frames: int
    caption: str
    amount: float                     # pan distance (share of the frame), zoom factor or turn (degrees)
    offset: tuple[float, float]       # the path's centre, off the frame centre (share of the frame)
    scale: float                      # the sprite's longest side, share of the frame's shorter side
    tint: tuple[int, int, int] = (0, 0, 0)
    static: bool = False
    overlay: dict | None = None
    crf: int = CRF
    defect: str | None = None


@dataclass
class Row:
    plan: Plan
    id: str = ""
    video: bytes = b""
    extra: dict = field(default_factory=dict)


class MissingInput(RuntimeError):
    """An input package is not installed or extracted under ``--root``."""


def require(root: Path, rel: str, package: str) -> Path:
    """``rel`` under ``root``, else where the package installs it; fails with how to get it."""
    for base in (root, Path("/")):
        if (base / rel).exists():
            return base / rel
    raise MissingInput(f"missing input {root / rel}\n  get it with: apt-get download {package} && "
                       f"dpkg-deb -x {package}_*.deb {root}")


def debian_version(root: Path, package: str, doc: str | None = None) -> str:
    """The package version its Debian changelog names (works for extracted packages too)."""
    import gzip

    changelog = require(root, f"usr/share/doc/{doc or package}/changelog.Debian.gz", package)
    with gzip.open(changelog, "rt", encoding="utf-8") as f:
        match = re.match(r"\S+ \(([^)]+)\)", f.readline())
    return match.group(1) if match else "?"


# --------------------------------------------------------------------------- subjects


def article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def load_emoji(root: Path) -> list[Subject]:
    """Single-code-point emoji of Noto Color Emoji named by Python's Unicode database, minus text-like ones."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(require(root, EMOJI_FONT, "fonts-noto-color-emoji")), lazy=True)
    out = []
    for cp in sorted(font.getBestCmap()):
        ch = chr(cp)
        name = unicodedata.name(ch, "").lower()
        if cp < 0x2000 or unicodedata.category(ch) != "So" or not name or TEXT_LIKE.search(name):
            continue
        if not re.fullmatch(r"[a-z][a-z \-]*[a-z]", name) or len(name.split()) > 5:
            continue
        out.append(Subject(f"U+{cp:04X}", "noto-emoji", article(name)))
    return out


def stamp_phrase(first_line: str) -> str:
    """``"A red kangaroo."`` -> ``"a red kangaroo"``; '' unless a short plain noun phrase."""
    text = re.split(r"(?<=[.!?])\s", first_line.strip())[0].strip().rstrip(".!")
    words = text.split()
    if not 1 <= len(words) <= 5 or not re.fullmatch(r"[A-Za-z][A-Za-z \-']*", text):
        return ""
    if words[0].lower() in ("a", "an", "the"):
        return " ".join([words[0].lower(), *words[1:]]).lower()
    return article(text.lower()) if len(words) <= 3 else ""


def load_tuxpaint(root: Path) -> list[Subject]:
    """PNG stamps whose caption file's first sentence is a short noun phrase."""
    base = require(root, TUXPAINT_DIR, "tuxpaint-stamps-default")
    out = []
    for txt in sorted(base.rglob("*.txt")):
        png = txt.with_suffix(".png")
        rel = txt.relative_to(base).as_posix()
        if not png.exists() or rel.startswith(STAMP_SKIP):
            continue
        phrase = stamp_phrase(txt.read_text(encoding="utf-8", errors="replace").split("\n")[0])
        if phrase:
            out.append(Subject(png.relative_to(base).as_posix(), "tuxpaint", phrase))
    return out


def crop_sprite(im: Image.Image) -> Image.Image | None:
    """The RGBA picture cropped to its opaque part, longest side ``SPRITE_SIDE``; None if blank or elongated."""
    im = im.convert("RGBA")
    box = im.getchannel("A").point(lambda v: 255 if v > 24 else 0).getbbox()
    if box is None:
        return None
    im = im.crop(box)
    w, h = im.size
    if max(w, h) < 24 or max(w, h) / min(w, h) > 2.5:
        return None
    scale = SPRITE_SIDE / max(w, h)
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def load_sprites(subjects: list[Subject], root: Path) -> list[Subject]:
    font = ImageFont.truetype(str(require(root, EMOJI_FONT, "fonts-noto-color-emoji")), EMOJI_SIZE)
    kept = []
    for s in subjects:
        if s.source == "noto-emoji":
            canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((80, 80), chr(int(s.key[2:], 16)), font=font, embedded_color=True, anchor="mm")
            sprite = crop_sprite(canvas)
        else:
            with Image.open(require(root, TUXPAINT_DIR, "tuxpaint-stamps-default") / s.key) as opened:
                sprite = crop_sprite(opened)
        if sprite is not None:
            s.sprite = sprite
            kept.append(s)
    return kept


# --------------------------------------------------------------------------- plans


def weighted(rng: random.Random, options: tuple) -> object:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def motion_amount(motion: str, rng: random.Random) -> float:
    if motion in ("left", "right", "up", "down"):
        return rng.uniform(0.3, 0.55)
    if motion in ("zoom_in", "zoom_out"):
        return rng.uniform(1.5, 2.1)
    return rng.uniform(120.0, 240.0)


def make_plan(subject: Subject, rng: random.Random, motion: str | None = None) -> Plan:
    motion = motion or rng.choice(sorted(MOTIONS))
    background = rng.choice(sorted(BACKGROUNDS))
    caption = rng.choice(MOTIONS[motion]).format(s=subject.phrase) + f" on a {background} background"
    return Plan(subject, motion, background, weighted(rng, SIZES), rng.randint(8, 16), caption,
                motion_amount(motion, rng), (rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06)),
                rng.uniform(0.5, 0.68))


def sprite_path(plan: Plan, t: float) -> tuple[float, float, float, float]:
    """Centre (share of width, of height), scale factor and angle (degrees, counterclockwise) at time ``t``."""
    cx, cy = 0.5 + plan.offset[0], 0.5 + plan.offset[1]
    d = plan.amount
    u = t - 0.5
    if plan.motion == "left":
        return cx - d * u, cy, 1.0, 0.0
    if plan.motion == "right":
        return cx + d * u, cy, 1.0, 0.0
    if plan.motion == "up":
        return cx, cy - d * u, 1.0, 0.0
    if plan.motion == "down":
        return cx, cy + d * u, 1.0, 0.0
    if plan.motion == "zoom_in":
        return cx, cy, d ** (t - 1.0), 0.0       # ends at full size
    if plan.motion == "zoom_out":
        return cx, cy, d ** (-t), 0.0
    return cx, cy, 1.0, (-1.0 if plan.motion == "rotate_cw" else 1.0) * d * t


def render(plan: Plan) -> list[np.ndarray]:
    """The clip's frames as ``(height, width, 3)`` uint8 RGB."""
    w, h = plan.size
    big_w, big_h = w * SUPERSAMPLE, h * SUPERSAMPLE
    colour = tuple(int(np.clip(c + t, 0, 255)) for c, t in zip(BACKGROUNDS[plan.background], plan.tint))
    sprite = plan.subject.sprite
    assert sprite is not None
    side = plan.scale * min(big_w, big_h)
    overlay = overlay_layer(plan, big_w, big_h) if plan.overlay else None
    frames = []
    for i in range(plan.frames):
        t = 0.0 if plan.static or plan.frames == 1 else i / (plan.frames - 1)
        cx, cy, zoom, angle = sprite_path(plan, t)
        k = side * zoom / max(sprite.size)
        im = sprite.resize((max(1, round(sprite.width * k)), max(1, round(sprite.height * k))), Image.Resampling.BICUBIC)
        if angle:
            im = im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        canvas = Image.new("RGBA", (big_w, big_h), (*colour, 255))
        canvas.paste(im, (round(cx * big_w - im.width / 2), round(cy * big_h - im.height / 2)), im)
        if overlay is not None:
            canvas.alpha_composite(overlay)
        frames.append(np.asarray(canvas.convert("RGB").resize((w, h), Image.Resampling.BOX)))
    return frames


def overlay_layer(plan: Plan, big_w: int, big_h: int) -> Image.Image:
    """A transparent layer with the plan's burned-in text or watermark, drawn at the supersampled size."""
    spec = plan.overlay or {}
    layer = Image.new("RGBA", (big_w, big_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = spec["text"]
    height = spec["height"] * big_h
    font = ImageFont.truetype(spec["font"], max(8, round(height)))
    box = draw.textbbox((0, 0), text, font=font, stroke_width=spec.get("stroke", 0))
    tw = box[2] - box[0]
    if tw > 0.94 * big_w:  # shrink to fit the frame's width
        font = ImageFont.truetype(spec["font"], max(8, round(height * 0.94 * big_w / tw)))
        box = draw.textbbox((0, 0), text, font=font, stroke_width=spec.get("stroke", 0))
    tw, th = box[2] - box[0], box[3] - box[1]
    x = spec["x"] * (big_w - tw) - box[0]
    y = spec["y"] * (big_h - th) - box[1]
    draw.text((x, y), text, font=font, fill=tuple(spec["fill"]), stroke_width=spec.get("stroke", 0),
              stroke_fill=tuple(spec.get("stroke_fill", (0, 0, 0, 255))))
    if spec.get("angle"):
        layer = layer.rotate(spec["angle"], resample=Image.Resampling.BICUBIC)
    return layer


# --------------------------------------------------------------------------- encoding


def encode(frames: list[np.ndarray], crf: int = CRF) -> bytes:
    """H.264 (yuv420p) in MP4 at ``FPS``; deterministic: one encoder thread, no assembly, a bit-exact muxer.

    x264's SIMD routines (in the PyAV wheel's build) let some clips' bytes depend on what the
    process did before (some read memory the clip does not own); its plain C code does not.

    x264 writes its settings banner (an SEI unit, about 650 bytes) into every clip; FFmpeg's
    ``filter_units`` bitstream filter could drop it, but through PyAV it made the output vary from
    run to run, so the banner stays.
    """
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": str(crf), "preset": "veryslow",
                                                                     "x264-params": "threads=1:asm=0"})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(yuv420p(pixels), format="yuv420p")))
        container.mux(stream.encode())
    return buf.getvalue()


def yuv420p(rgb: np.ndarray) -> np.ndarray:
    """RGB to planar YUV 4:2:0 (BT.601, limited range, chroma averaged over 2x2 blocks), as the
    ``(height * 3 / 2, width)`` array PyAV takes. Converting here rather than in FFmpeg's swscale
    makes each clip's bytes depend on its frames alone: a reused swscale context carries state
    from one clip to the next."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = y.shape
    half = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).ravel()  # noqa: E731
    planes = np.concatenate([y.ravel(), half(cb), half(cr)]).reshape(h * 3 // 2, w)
    return np.clip(np.round(planes), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- split and defects


def split(subjects: list[Subject], rng: random.Random) -> tuple[list[Subject], dict[str, list[Subject]]]:
    """Benchmark subjects: whole phrase groups held out per source (no phrase on both sides)."""
    groups: dict[str, list[Subject]] = {}
    for s in subjects:
        groups.setdefault(s.phrase, []).append(s)
    held: dict[str, list[Subject]] = {}
    held_phrases: set[str] = set()
    for bench, source in BENCH_SOURCES.items():
        phrases = sorted({s.phrase for s in subjects if s.source == source})
        rng.shuffle(phrases)
        chosen: list[Subject] = []
        for phrase in phrases:
            if len(chosen) >= BENCH_SIZES[bench]:
                break
            members = [s for s in groups[phrase] if s.source == source]
            if phrase in held_phrases or len(chosen) + len(members) > BENCH_SIZES[bench]:
                continue
            if any(s.source != source for s in groups[phrase]):
                continue  # a phrase shared across sources stays in the pool
            chosen += members
            held_phrases.add(phrase)
        held[bench] = chosen
    pool = [s for s in subjects if s.phrase not in held_phrases]
    return pool, held


def overlay_spec(rng: random.Random, root: Path, watermark: bool) -> dict:
    font = str(require(root, DEJAVU_BOLD, "fonts-dejavu-core"))
    if watermark:
        corner = rng.choice(["tl", "tr", "bl", "br", "diag"])
        if corner == "diag":
            return {"text": rng.choice(WATERMARK_TEXTS), "font": font, "height": rng.uniform(0.16, 0.22),
                    "x": 0.5, "y": 0.5, "angle": rng.uniform(20, 40), "fill": (255, 255, 255, rng.randint(90, 130))}
        return {"text": rng.choice(WATERMARK_TEXTS), "font": font, "height": rng.uniform(0.13, 0.18),
                "x": 0.04 if corner[1] == "l" else 0.96, "y": 0.04 if corner[0] == "t" else 0.96,
                "fill": (255, 255, 255, rng.randint(110, 160)), "stroke": 0}
    return {"text": rng.choice(OVERLAY_TEXTS), "font": font, "height": rng.uniform(0.3, 0.42),
            "x": 0.5, "y": rng.choice([0.5, 0.85, 0.15]), "fill": (255, 255, 255, 255),
            "stroke": SUPERSAMPLE, "stroke_fill": (0, 0, 0, 255)}


def shares_subject(a: Plan, b: Plan) -> bool:
    words = lambda p: {w for w in p.subject.phrase.split() if len(w) > 2}
    return bool(words(a) & words(b))


def caption_variant(text: str, rng: random.Random) -> str:
    """A trivial variation: capitalised, a full stop, or both."""
    kind = rng.choice(["cap", "stop", "both"])
    if kind in ("cap", "both"):
        text = text[0].upper() + text[1:]
    if kind in ("stop", "both"):
        text += "."
    return text


def plant_defects(plans: list[Plan], rng: random.Random, root: Path) -> list[Plan]:
    """Give ``PER_DEFECT`` distinct rows each in-place defect, then add ``PER_DEFECT`` near-duplicates."""
    order = list(range(len(plans)))
    rng.shuffle(order)
    in_place = [d for d in DEFECTS if d != "near_duplicate"]
    chosen = {d: order[i * PER_DEFECT:(i + 1) * PER_DEFECT] for i, d in enumerate(in_place)}
    clean = order[len(in_place) * PER_DEFECT:]
    out = list(plans)
    for defect in in_place:
        for i in chosen[defect]:
            p = replace(plans[i], defect=defect)
            if defect == "static":
                p.static = True
            elif defect in ("text_overlay", "watermark"):
                p.overlay = overlay_spec(rng, root, defect == "watermark")
            elif defect == "mismatched_caption":
                while True:
                    donor = plans[rng.randrange(len(plans))]
                    if donor.motion != p.motion and not shares_subject(donor, p):
                        break
                p.caption = donor.caption
            elif defect == "extreme_aspect":
                p.size = rng.choice(EXTREME_SIZES)
                wide = p.size[0] > p.size[1]
                if p.motion in ("up", "down") and wide or p.motion in ("left", "right") and not wide:
                    p.amount *= 0.3  # little room across a strip
                p.scale = rng.uniform(0.8, 0.95)
            elif defect == "too_short":
                p.frames = rng.randint(2, 3)
            out[i] = p
    for i in sorted(rng.sample(clean, PER_DEFECT)):
        base = plans[i]
        dx, dy = rng.choice([-1, 1]) * rng.uniform(0.02, 0.05), rng.choice([-1, 1]) * rng.uniform(0.02, 0.05)
        out.append(replace(base, defect="near_duplicate", offset=(base.offset[0] + dx, base.offset[1] + dy),
                           tint=tuple(rng.randint(-10, 10) for _ in range(3)), crf=rng.randint(28, 32),
                           caption=base.caption if rng.random() < 0.5 else caption_variant(base.caption, rng),
                           amount=base.amount * rng.uniform(0.92, 1.08)))
    return out


# --------------------------------------------------------------------------- build and write

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("video", pa.binary()), ("source", pa.string()),
                    ("subject", pa.string()), ("motion", pa.string()), ("defect", pa.string())])


def build(root: Path, seed: int = SEED) -> tuple[list[Row], dict[str, list[Row]], dict]:
    rng = random.Random(seed)
    candidates = load_emoji(root) + load_tuxpaint(root)
    subjects = load_sprites(candidates, root)
    info = {"candidates": Counter(s.source for s in candidates), "subjects": Counter(s.source for s in subjects)}
    pool_subjects, held = split(subjects, rng)
    # Every pool subject gets three clips with different motions; a seeded draw keeps POOL_BASE_ROWS.
    plans: list[Plan] = []
    for s in pool_subjects:
        plans += [make_plan(s, rng, m) for m in rng.sample(sorted(MOTIONS), 3)]
    rng.shuffle(plans)
    plans = plans[:POOL_BASE_ROWS]
    pool_plans = plant_defects(plans, rng, root)
    rng.shuffle(pool_plans)
    pool = [Row(p) for p in pool_plans]
    benchmarks = {name: [Row(make_plan(s, rng)) for s in subs] for name, subs in held.items()}
    counters: Counter = Counter()
    for rows in [pool, *benchmarks.values()]:
        for row in rows:
            prefix = PREFIXES[row.plan.subject.source]
            counters[prefix] += 1
            row.id = f"{prefix}-{counters[prefix]:04d}"
            row.video = encode(render(row.plan), row.plan.crf)
    return pool, benchmarks, info


def write_parquet(path: Path, rows: list[Row]) -> None:
    table = pa.Table.from_pylist([
        {"id": r.id, "text": r.plan.caption, "video": r.video, "source": r.plan.subject.source,
         "subject": r.plan.subject.phrase, "motion": r.plan.motion, "defect": r.plan.defect} for r in rows
    ], schema=SCHEMA)
    pq.write_table(table, path, compression="zstd", compression_level=9, row_group_size=1024,
                   use_dictionary=["source", "motion", "defect"], write_statistics=False)


SOURCE_INFO = {
    "noto-emoji": ("fonts-noto-color-emoji", "NotoColorEmoji.ttf, single code points",
                   "SIL OFL-1.1 (the font; Debian lists Apache-2.0 for the project's other files); subjects are the "
                   "Unicode character names (Python `unicodedata`, Unicode licence), lower-cased, with an article; "
                   "glyphs rendered with Pillow at 109 px (the font's bitmap size)"),
    "tuxpaint": ("tuxpaint-stamps-default", "stamps/**/*.png with their caption file *.txt",
                 "GPL-2 (pictures and captions; Bill Kendrick and contributors); subjects are the caption file's first "
                 "sentence when it is a short noun phrase ('A red kangaroo.' -> 'a red kangaroo')"),
}
DEFECT_RECIPES = {
    "static": "the subject never moves (every frame is the first), while the caption still says how it moves",
    "text_overlay": "burned-in banner text ('SALE', 'WOW', 'TOP 10', ...) in white DejaVu Sans Bold with a black "
                    "outline, 30-42 % of the frame height, across the middle, top or bottom of every frame",
    "watermark": "a translucent stock-footage mark ('© clipstock', 'SAMPLE', 'stockvid.com', ...) in DejaVu Sans Bold, "
                 "13-18 % of the frame height in a corner, or 16-22 % across the frame at 20-40 degrees",
    "mismatched_caption": "the caption of another pool clip with another motion and no shared subject word",
    "extreme_aspect": "a strip of 12-14 x 56-64 px (aspect ratio 4-5.3, either way), the subject filling its short side",
    "too_short": "2-3 frames (0.25-0.375 s) instead of 8-16",
    "near_duplicate": "an extra row: another clean pool clip re-rendered with its path shifted by 2-5 % of the frame, "
                      "its motion 0.92-1.08x, colours shifted by up to 10 levels and encoded at CRF 28-32, with the "
                      "same caption or a trivial variant (capitalised and/or a final full stop)",
}
MOTION_INFO = {
    "left / right / up / down": "the subject drifts across 30-55 % of the frame",
    "zoom_in / zoom_out": "the subject grows from 1/1.5-1/2.1 of its size to full size, or shrinks the same way",
    "rotate_cw / rotate_ccw": "the subject turns by 120-240 degrees",
}


def clip_stats(rows: list[Row]) -> str:
    sizes = Counter(f"{r.plan.size[0]}x{r.plan.size[1]}" for r in rows)
    frames = np.array([r.plan.frames for r in rows])
    size = np.array([len(r.video) for r in rows])
    top = ", ".join(f"{k} {v}" for k, v in sizes.most_common(4))
    return (f"{frames.min()}-{frames.max()} frames (median {np.median(frames):.0f}); sizes {top}, ... "
            f"({len(sizes)} kinds); MP4 {size.mean():.0f} B mean, {size.max()} B max")


def provenance(pool: list[Row], benchmarks: dict[str, list[Row]], info: dict, root: Path, seed: int,
               file_bytes: dict[str, int]) -> str:
    from importlib import metadata

    n_defect = sum(r.plan.defect is not None for r in pool)
    lines = [
        "# Demo captioned-video set: provenance",
        "",
        "Built by `scripts/build_video_set.py` from real, openly licensed pictures and names that install offline",
        "from Debian. Each clip moves one real picture along a camera path over a plain coloured background; its",
        "caption names the picture, the motion and the background. Defects are planted on copies of clean clips.",
        "",
        "## Files",
        "",
        "| file | rows | bytes | content |",
        "|---|---:|---:|---|",
        f"| `clips.parquet` | {len(pool)} | {file_bytes['clips.parquet']:,} | mixed-quality training pool, "
        f"{n_defect / len(pool):.0%} with one planted defect |",
    ]
    for name, rows in benchmarks.items():
        lines.append(f"| `bench_{name}.parquet` | {len(rows)} | {file_bytes[f'bench_{name}.parquet']:,} | clean "
                     f"benchmark: {BENCH_SOURCES[name]} subjects the pool never shows |")
    lines += [
        "",
        "Columns, in every file: `id` (`emoji-NNNN` or `stamp-NNNN`, numbered per source in file order, pool first; "
        "ids say nothing about defects), `text` (the caption), `video` (the encoded clip: MP4 bytes), `source`, "
        "`subject` (the noun phrase of the picture), `motion` (" + ", ".join(f"`{m}`" for m in MOTIONS) + ") and "
        "`defect` (null for clean rows, else one of " + ", ".join(f"`{d}`" for d in DEFECTS) + "). Rows are in a "
        "seeded random order. `source`, `subject`, `motion` and `defect` are metadata no OP reads.",
        "",
        "Captions read like \"a red apple drifts left on a blue background\", \"zooming in on a hedgehog on a "
        "white background\" or \"a taxi spins clockwise on a green background\": one of three wordings per "
        f"motion, then one of {len(BACKGROUNDS)} background colours (" + ", ".join(BACKGROUNDS) + ").",
        "",
        "## Clips",
        "",
        f"H.264 (libx264, CRF {CRF} unless noted, yuv420p) in MP4 at {FPS} frames per second, 8-16 frames (1-2 s). "
        f"Frames are drawn at {SUPERSAMPLE}x and box-filtered down, so motion is smooth to a quarter pixel. The "
        "picture's longest side is 50-68 % of the frame's shorter side; its path is centred within 6 % of the "
        "frame centre. Motions:",
        "",
        "| motion | path |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in MOTION_INFO.items()],
        "",
        "| file | clips |",
        "|---|---|",
        f"| `clips.parquet`, clean rows | {clip_stats([r for r in pool if r.plan.defect is None])} |",
        f"| `clips.parquet`, all rows | {clip_stats(pool)} |",
        *[f"| `bench_{name}.parquet` | {clip_stats(rows)} |" for name, rows in benchmarks.items()],
        "",
        "## Held-out subjects",
        "",
        "Benchmark clips are clean and show subjects the pool never shows: subjects are grouped by their noun "
        "phrase, and whole phrase groups are held out per source (a phrase found in both sources stays in the "
        "pool), so no benchmark subject, picture or subject phrase appears in the pool, not even in a mismatched "
        "caption (`tests/test_video_set.py` checks this). Each held-out subject has one clip with a random motion "
        "and background; each pool subject has three clips with three different motions, of which a seeded draw "
        f"keeps {POOL_BASE_ROWS}.",
        "",
        "## Sources",
        "",
        "| source (`source`) | Debian package (version) | files | licence / notes | subjects: candidates / usable | "
        "pool rows | benchmark rows |",
        "|---|---|---|---|---|---:|---:|",
    ]
    pool_counts = Counter(r.plan.subject.source for r in pool)
    bench_counts = Counter(r.plan.subject.source for rows in benchmarks.values() for r in rows)
    for source, (package, files, licence) in SOURCE_INFO.items():
        lines.append(f"| {source} | {package} {debian_version(root, package)} | {files} | {licence} | "
                     f"{info['candidates'][source]} / {info['subjects'][source]} | {pool_counts[source]} | "
                     f"{bench_counts[source]} |")
    lines += [
        "",
        "Emoji whose name describes a written sign (squared, circled, keycap, letter, digit, sign, symbol, button, "
        "'no ...', ...) and Tux Paint folders of letters, numbers, coins, chess pieces, notes, road signs and "
        "military memorials are left out: OCR would flag their clean clips. Pictures are cropped to their opaque "
        "part; blank ones and those more elongated than 2.5:1 are dropped.",
        "",
        "Other inputs:",
        "",
        "| package (version) | used for | licence |",
        "|---|---|---|",
        f"| Debian fonts-dejavu-core {debian_version(root, 'fonts-dejavu-core', 'fonts-dejavu-core')} | DejaVu Sans "
        "Bold for the overlays and watermarks | Bitstream Vera licence (free) |",
    ]
    for package, use, licence in (("av", "encodes the clips (FFmpeg and libx264 inside the wheel)", "BSD-3-Clause; "
                                   "the wheel's FFmpeg is LGPL/GPL"),
                                  ("pillow", "drawing, emoji rendering, resizing", "MIT-CMU"),
                                  ("fonttools", "reads the emoji font's character map", "MIT"),
                                  ("numpy", "frame arrays", "BSD-3-Clause"),
                                  ("pyarrow", "writes the Parquet files", "Apache-2.0")):
        lines.append(f"| PyPI {package} {metadata.version(package)} | {use} | {licence} |")
    by = Counter((str(r.plan.defect), r.plan.subject.source) for r in pool)
    per_source = lambda d: ", ".join(f"{s} {by[(d, s)]}" for s in SOURCE_INFO if by[(d, s)])
    lines += [
        "",
        "## Planted defects",
        "",
        f"{PER_DEFECT} rows per defect (equal shares), each defect on distinct clips. Which video OP catches it, on "
        "these clips: `static` a motion score near 0 (`video_motion_score_filter`); `text_overlay` an OCR area ratio "
        "of 0.2-0.4 where 84 % of clean clips have 0 (`video_ocr_area_ratio_filter`, `det_limit_side_len: 96`); "
        "`extreme_aspect` the aspect ratio (`video_aspect_ratio_filter`) and resolution; `too_short` the duration "
        "(`video_duration_filter`); `watermark` a watermark classifier (`video_watermark_filter`, model from the "
        "hub; the small translucent marks mostly escape OCR); `mismatched_caption` a CLIP similarity "
        "(`video_frames_text_similarity_filter`, model from the hub); `near_duplicate` a video deduplicator.",
        "",
        "| defect | rows | by source | how it was made |",
        "|---|---:|---|---|",
        f"| (none: clean) | {sum(r.plan.defect is None for r in pool)} | {per_source('None')} | the clip as planned |",
        *[f"| `{d}` | {sum(by[(d, s)] for s in SOURCE_INFO)} | {per_source(d)} | {DEFECT_RECIPES[d]} |" for d in DEFECTS],
        "",
        "## Rebuilding",
        "",
        f"Seed: `{seed}` (one `random.Random`, drawn in a fixed order). libx264 runs on one thread without its "
        "assembly routines (`asm=0`: with them some clips' bytes varied between runs), frames are converted to "
        "YUV in numpy, the MP4 muxer runs in bit-exact mode, and Parquet (zstd) is written with fixed options, so a rebuild with the same "
        "package versions is byte-identical.",
        "",
        "```bash",
        "apt-get download fonts-noto-color-emoji tuxpaint-stamps-default fonts-dejavu-core",
        "for f in *.deb; do dpkg-deb -x \"$f\" /tmp/video-src; done",
        "pip install av pillow fonttools numpy pyarrow",
        "python scripts/build_video_set.py --root /tmp/video-src",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/"), help="where the input packages are installed or extracted")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        pool, benchmarks, info = build(args.root, args.seed)
    except MissingInput as err:
        print(err, file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_parquet(args.out / "clips.parquet", pool)
    for name, rows in benchmarks.items():
        write_parquet(args.out / f"bench_{name}.parquet", rows)
    file_bytes = {f.name: f.stat().st_size for f in args.out.glob("*.parquet")}
    (args.out / "PROVENANCE.md").write_text(provenance(pool, benchmarks, info, args.root, args.seed, file_bytes),
                                            encoding="utf-8")
    print(f"candidates {dict(info['candidates'])}, with a usable picture {dict(info['subjects'])}")
    print(f"pool {len(pool)} rows: {dict(sorted(Counter(r.plan.defect or 'clean' for r in pool).items()))}")
    for name, rows in benchmarks.items():
        print(f"bench_{name}: {len(rows)} rows")
    for f in sorted(args.out.glob("*.parquet")):
        print(f"{f.name}: {f.stat().st_size:,} bytes")
    print(f"built in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
