"""Data files shipped with mlsandbox.

``DEMO_CORPUS`` is the embedded default dataset: about 12,800 real-text documents, 42 % of them
with one planted defect (``repetition_spam``, ``gibberish``, ``non_english``,
``markup_boilerplate``, ``fragment``). ``DEMO_BENCHMARKS`` are three clean held-out evaluation
sets of 500 documents each, in different domains. All are gzip-compressed JSON lines with the
fields ``id``, ``text``, ``source`` and ``defect``; see ``text/PROVENANCE.md`` for sources,
licences and how ``scripts/build_demo_corpus.py`` rebuilds them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RESOURCES_DIR", "TEXT_DIR", "DEMO_CORPUS", "DEMO_BENCHMARKS", "DEMO_DEFECT_TYPES", "DEMO_PROVENANCE"]

RESOURCES_DIR: Path = Path(__file__).resolve().parent
TEXT_DIR: Path = RESOURCES_DIR / "text"

DEMO_CORPUS: Path = TEXT_DIR / "corpus.jsonl.gz"
DEMO_BENCHMARKS: dict[str, Path] = {
    "wiki": TEXT_DIR / "bench_wiki.jsonl.gz",  # encyclopedic: held-out Wikipedia articles
    "news": TEXT_DIR / "bench_news.jsonl.gz",  # news articles and held-out political speeches
    "tech": TEXT_DIR / "bench_tech.jsonl.gz",  # technical prose: held-out Linux kernel documentation
}
DEMO_PROVENANCE: Path = TEXT_DIR / "PROVENANCE.md"
DEMO_DEFECT_TYPES: tuple[str, ...] = (
    "repetition_spam",
    "gibberish",
    "non_english",
    "markup_boilerplate",
    "fragment",
)
