"""``ngram``: an interpolated Kneser-Ney n-gram LM, the cheapest fidelity for screening pools.

Counts are held as sorted NumPy arrays of packed int64 n-gram keys, so fitting a few MB of
text takes seconds and scoring is vectorised lookups (``searchsorted``); a pool of a dataset's
documents is counted from the dataset's n-gram index (``_ngram_index``) in a fraction of that.
Fitting has no randomness: the seed does not matter, which is what makes it a good first screen.

Smoothing (Chen & Goodman, 1999, interpolated Kneser-Ney with one discount per order)::

    P_k(w|h) = max(c_k(hw) - D_k, 0) / c_k(h.) + D_k * N1+(h.) / c_k(h.) * P_{k-1}(w|h')

``c_k`` is the raw count at the highest order and the continuation count (number of distinct
left extensions) below it; unseen contexts fall through to the lower order; order 0 is uniform.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsandbox.models._ngram_files import NPZ, TABLES, UNREADABLE_TABLES, read_tables, write_tables
from mlsandbox.models._ngram_index import byte_index, gram_keys, run_starts
from mlsandbox.models._ngram_words import WordCodec
from mlsandbox.models.base import TrainedModel, Trainer, TrainingJob, reading_model_file, utf8_bytes
from mlsandbox.spec import NgramSpec

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass
class _OrderTable:
    """Counts for one order k: n-gram keys/counts and their (k-1)-gram context totals."""

    keys: np.ndarray  # sorted int64 keys of k-grams
    counts: np.ndarray  # float64 count (raw or continuation) per key
    ctx_keys: np.ndarray  # sorted int64 keys of (k-1)-gram contexts
    ctx_totals: np.ndarray  # sum of counts over the context's continuations
    ctx_types: np.ndarray  # number of distinct continuations N1+(h.)
    discount: float

    @classmethod
    def of(cls, keys: np.ndarray, counts: np.ndarray, base: int, discount: float) -> _OrderTable:
        """The table of sorted ``keys`` and their float64 ``counts``, its context totals derived."""
        contexts = keys // base  # drop the predicted symbol: sorted too, so its runs are its distinct values
        first = np.flatnonzero(run_starts(contexts))
        ctx_keys = contexts[first]
        ctx_totals = np.add.reduceat(counts, first) if counts.size else np.zeros(0)
        ctx_types = np.diff(np.append(first, counts.size)).astype(np.float64)
        return cls(keys, counts, ctx_keys, ctx_totals, ctx_types, discount)


#: Arrays of a table in the first saved format, which stored the derived context arrays as well.
_TABLE_ARRAYS = ("keys", "counts", "ctx_keys", "ctx_totals", "ctx_types")

#: What reading a saved model's file raises when it is missing, corrupt or cut short (an array
#: or key it lacks is a KeyError).
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, zlib.error)


@dataclass(frozen=True)
class _DistinctGrams:
    """The n-grams of a text, each scored once: per order k the sorted distinct k-gram keys and,
    from order 2, the index of each one's (k-1)-gram suffix among the order below's; and the index
    of each position's top-order n-gram among that order's."""

    keys: list[np.ndarray]
    suffixes: list[np.ndarray]
    positions: np.ndarray


# Distinct n-grams of recently scored texts: (texts digest, base, order) -> their _DistinctGrams.
# Six entries hold six benchmark sets (~10 MB per 1 MB of text at order 4).
_DISTINCT_GRAMS: dict[tuple[str, int, int], _DistinctGrams] = {}
_DISTINCT_GRAMS_KEPT = 6
#: Symbols of the training text whose n-grams are counted at once (64 MB of int64 keys).
COUNT_CHUNK = 1 << 23


def _seqs_digest(seqs: Sequence[np.ndarray]) -> str:
    """Identity of a list of symbol sequences: their dtypes, sizes and symbols."""
    digest = hashlib.blake2b(digest_size=16)
    for seq in seqs:
        digest.update(f"{seq.dtype.str}{seq.size};".encode())
        digest.update(np.ascontiguousarray(seq).tobytes())
    return digest.hexdigest()


@lru_cache(maxsize=_DISTINCT_GRAMS_KEPT)  # every cell scores the same benchmarks
def _byte_sequences(texts: tuple[str, ...]) -> tuple[list[np.ndarray], str]:
    """The UTF-8 bytes of each non-empty text of ``texts``, and their :func:`_seqs_digest`: remembered
    by the texts themselves, as encoding and hashing them cost more than a lookup."""
    seqs = [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts if t]
    return seqs, _seqs_digest(seqs)


def _lookup(keys: np.ndarray, query: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """Each column's value at each query's key in the sorted ``keys`` (0 where the key is absent);
    sorted queries are found fastest."""
    if keys.size == 0:
        return [np.zeros(query.shape, dtype=np.float64) for _ in columns]
    idx = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    found = keys[idx] == query
    return [np.where(found, column[idx], 0.0) for column in columns]


def _discount(counts: np.ndarray, fixed: float | None) -> float:
    if fixed is not None:
        return fixed
    n1 = float(np.count_nonzero(counts == 1))
    n2 = float(np.count_nonzero(counts == 2))
    if n1 == 0 or n2 == 0:
        return 0.5  # too little data for the count-of-counts estimate
    return min(max(n1 / (n1 + 2 * n2), 0.05), 0.95)


class KneserNey:
    """Interpolated KN over integer symbols ``0..vocab-1``; ``vocab`` is the BOS pad symbol."""

    def __init__(self, vocab: int, order: int, tables: list[_OrderTable]) -> None:
        self.vocab = vocab
        self.order = order
        self.tables = tables
        self.base = vocab + 1
        if self.base ** order >= 2**62:
            raise ValueError(f"order {order} over {vocab} symbols does not fit int64 keys")

    @classmethod
    def _counts(cls, seqs: Sequence[np.ndarray], k: int, base: int, pad: int, order: int) -> tuple[np.ndarray, np.ndarray]:
        """The sorted distinct k-gram keys of ``seqs`` and their counts, counted :data:`COUNT_CHUNK`
        symbols at a time and merged: the keys of every position of a large pool (8 bytes each,
        and as many again to sort them) never sit in memory at once."""
        parts, batch, size = [], [], 0
        for seq in seqs:
            batch.append(seq)
            size += seq.size
            if size >= COUNT_CHUNK:
                parts.append(np.unique(gram_keys(batch, k, base, pad, order), return_counts=True))
                batch, size = [], 0
        if batch or not parts:
            parts.append(np.unique(gram_keys(batch, k, base, pad, order), return_counts=True))
        if len(parts) == 1:
            return parts[0]
        keys, inverse = np.unique(np.concatenate([keys for keys, _ in parts]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([counts for _, counts in parts]), minlength=keys.size)
        return keys, counts.astype(np.int64)

    @classmethod
    def fit(cls, seqs: Sequence[np.ndarray], vocab: int, order: int, discount: float | None,
            counted: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> KneserNey:
        """The model of ``seqs``; ``counted``: their keys and counts at every order, top first, where
        an index counted them (:meth:`GramIndex.counts`)."""
        base = vocab + 1
        if counted is None:
            keys, counts = cls._counts(seqs, order, base, vocab, order)
            counted = [(keys, counts)]
            for k in range(order - 1, 0, -1):
                # Continuation counts: distinct left extensions of each k-gram suffix.
                keys, counts = np.unique(keys % (base ** k), return_counts=True)
                counted.append((keys, counts))
        tables = []
        for keys, counts in reversed(counted):
            tables.append(_OrderTable.of(keys, counts.astype(np.float64), base, _discount(counts, discount)))
        return cls(vocab, order, tables)

    def log2_probs(self, seqs: Sequence[np.ndarray], digest: str | None = None) -> np.ndarray:
        """log2 P(symbol | history) for every symbol of every sequence, concatenated; ``digest``:
        the sequences' :func:`_seqs_digest` where the caller knows it.

        Each order scores the distinct n-grams once, in sorted order (a text repeats most of its
        n-grams, and sorted queries walk the sorted tables in step), each from the probability of its
        suffix one order below; the positions take their top-order n-gram's value at the end.
        """
        base = self.base
        grams = self._distinct_grams(seqs, digest or _seqs_digest(seqs))
        prob = np.zeros(0)
        for k in range(1, self.order + 1):
            table, keys = self.tables[k - 1], grams.keys[k - 1]
            lower = prob[grams.suffixes[k - 1]] if k > 1 else np.full(keys.size, 1.0 / self.vocab)
            (count,) = _lookup(table.keys, keys, table.counts)
            # the contexts of sorted n-grams are sorted too
            total, types = _lookup(table.ctx_keys, keys // base, table.ctx_totals, table.ctx_types)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(count - table.discount, 0.0) + table.discount * types * lower) / safe
            prob = np.where(seen, mixed, lower)
        return np.log2(prob)[grams.positions]

    def _distinct_grams(self, seqs: Sequence[np.ndarray], digest: str) -> _DistinctGrams:
        """The distinct n-grams of ``seqs`` (whose digest is ``digest``) at every order, remembered
        for the last few texts: every cell scores the same benchmarks."""
        key = (digest, self.base, self.order)
        if key not in _DISTINCT_GRAMS:
            if len(_DISTINCT_GRAMS) >= _DISTINCT_GRAMS_KEPT:
                del _DISTINCT_GRAMS[next(iter(_DISTINCT_GRAMS))]  # the oldest
            keys: list[np.ndarray] = []
            suffixes: list[np.ndarray] = []
            positions = np.zeros(0, dtype=np.intp)
            for k in range(1, self.order + 1):
                distinct, positions = np.unique(gram_keys(seqs, k, self.base, self.vocab, self.order),
                                                return_inverse=True)
                # a k-gram's suffix is the (k-1)-gram ending at the same position: always found
                suffixes.append(np.searchsorted(keys[-1], distinct % self.base ** (k - 1)) if keys
                                else np.zeros(0, dtype=np.intp))
                keys.append(distinct)
            _DISTINCT_GRAMS[key] = _DistinctGrams(keys, suffixes, positions)
        return _DISTINCT_GRAMS[key]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Per order: the steps between sorted keys and the counts, each in its narrowest integer
        type, and the discount. The context arrays are derived again on loading: fewer bytes to
        write, for a model saved with every cell."""
        arrays: dict[str, np.ndarray] = {}
        for k, t in enumerate(self.tables, 1):
            counts, steps = t.counts.astype(np.int64), np.diff(t.keys, prepend=np.int64(0))
            arrays[f"o{k}_key_steps"] = steps.astype(np.min_scalar_type(int(steps.max(initial=0))))
            arrays[f"o{k}_counts"] = counts.astype(np.min_scalar_type(int(counts.max(initial=0))))
            arrays[f"o{k}_discount"] = np.array(t.discount)
        return arrays

    @classmethod
    def from_arrays(cls, vocab: int, order: int, arrays: Any) -> KneserNey:
        """The model of :meth:`to_arrays` (or of the first format, which also held the context arrays)."""
        tables = []
        for k in range(1, order + 1):
            discount = float(arrays[f"o{k}_discount"])
            if f"o{k}_ctx_keys" in arrays:
                tables.append(_OrderTable(**{name: arrays[f"o{k}_{name}"] for name in _TABLE_ARRAYS},
                                          discount=discount))
            else:
                keys = np.cumsum(arrays[f"o{k}_key_steps"], dtype=np.int64)
                tables.append(_OrderTable.of(keys, arrays[f"o{k}_counts"].astype(np.float64), vocab + 1, discount))
        return cls(vocab, order, tables)


def token_budget(seqs: Sequence[np.ndarray], budget: int) -> list[np.ndarray]:
    """Exactly ``budget`` tokens of the documents in their (seeded) training order: a larger pool is
    cut, a smaller one read again from its start, so every pool trains on the same amount of text."""
    if not seqs or not any(s.size for s in seqs):
        return list(seqs)
    out: list[np.ndarray] = []
    left = budget
    while left > 0:
        for seq in seqs:
            out.append(seq[:left])
            left -= out[-1].size
            if left == 0:
                break
    return out


class NgramModel(TrainedModel):
    """A fitted byte- or word-level Kneser-Ney model."""

    type = "ngram"
    spec: NgramSpec

    def __init__(self, spec: NgramSpec, lm: KneserNey, codec: WordCodec | None, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.lm = lm
        self.codec = codec

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        if not any(texts):
            raise ValueError("bits_per_byte needs at least one non-empty text")
        if self.codec is None:
            seqs, digest = _byte_sequences(tuple(texts))
            return -float(self.lm.log2_probs(seqs, digest).sum()) / sum(seq.size for seq in seqs)
        encoded = [self.codec.encode(t) for t in texts if t]  # words, and the spelling of those it lacks
        log2p = self.lm.log2_probs([ids for ids, _ in encoded]).sum() + sum(s for _, s in encoded)
        return -float(log2p) / utf8_bytes(texts)

    def _save_payload(self, directory: Path) -> None:
        write_tables(directory / TABLES, self.lm.to_arrays(), self.lm.order)
        if self.codec is not None:
            payload = {"vocab": self.codec.vocab, "byte_log2": self.codec.byte_log2.tolist()}
            with gzip.open(directory / "vocab.json.gz", "wt", encoding="utf-8") as handle:
                json.dump(payload, handle)

    @classmethod
    def _load_payload(cls, directory: Path, manifest: dict[str, Any]) -> NgramModel:
        spec = NgramSpec.model_validate(manifest["spec"])
        codec = None
        if spec.level == "word":
            with reading_model_file(directory / "vocab.json.gz", *_UNREADABLE, TypeError):
                with gzip.open(directory / "vocab.json.gz", "rt", encoding="utf-8") as handle:
                    payload = json.load(handle)
                if not isinstance(payload, dict) or not {"vocab", "byte_log2"} <= payload.keys():
                    raise ValueError("expected a JSON object with 'vocab' and 'byte_log2'")
                codec = WordCodec(payload["vocab"], np.array(payload["byte_log2"]))
        vocab = 256 if codec is None else len(codec.vocab)
        path = directory / TABLES
        if not path.exists() and (directory / NPZ).exists():  # saved by an earlier version
            path = directory / NPZ
        with reading_model_file(path, *_UNREADABLE, *UNREADABLE_TABLES):
            lm = KneserNey.from_arrays(vocab, spec.order, read_tables(path, spec.order))
        return cls(spec, lm, codec, info=manifest.get("info"), metrics=manifest.get("metrics"))


class NgramTrainer(Trainer):
    """Fits :class:`NgramModel` on the pool (repeats count as extra occurrences)."""

    type = "ngram"
    version = "1"
    spec: NgramSpec

    @classmethod
    def seeded(cls, spec: BaseModel) -> bool:
        # Counts do not depend on the order of the documents, unless a budget cuts the stream.
        return getattr(spec, "max_tokens", None) is not None

    def train(self, job: TrainingJob) -> NgramModel:
        import time

        started = time.perf_counter()
        texts = [t for t in job.texts if t]
        codec = None if self.spec.level == "byte" else WordCodec.fit(texts, self.spec.max_vocab)
        vocab = 256 if codec is None else len(codec.vocab)
        if (vocab + 1) ** self.spec.order >= 2**62:
            raise ValueError(
                f"order {self.spec.order} with {vocab} symbols overflows int64 keys; "
                "lower `order` or `max_vocab`"
            )
        index = None
        if codec is None and self.spec.max_tokens is None and job.rows is not None and job.source_digest is not None \
                and job.tokenizer_texts is not None:  # a selection of a dataset's documents, each read whole
            index = byte_index(job.source_digest, job.tokenizer_texts, self.spec.order)
        if index is not None:
            rows = np.asarray(job.rows)
            lm = KneserNey.fit([], vocab, self.spec.order, self.spec.discount, index.counts(rows))
            tokens = int(index.sizes[rows].sum())
        else:
            if codec is None:
                seqs = [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]
            else:
                seqs = [codec.encode(t)[0] for t in texts]
            if self.spec.max_tokens is not None:
                seqs = token_budget(seqs, self.spec.max_tokens)
            lm = KneserNey.fit(seqs, vocab, self.spec.order, self.spec.discount)
            tokens = sum(s.size for s in seqs)
        info = {
            "train_tokens": int(tokens),
            "vocab": vocab,
            "ngrams": int(lm.tables[-1].keys.size),
            "discounts": [t.discount for t in lm.tables],
            "train_seconds": time.perf_counter() - started,
        }
        return NgramModel(self.spec, lm, codec, info=info)
