"""Recipes select pools from the stats table, round-trip through YAML and Data-Juicer configs,
and refine thresholds by k-sigma or percentiles."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from pathlib import Path

import _dj_reference as dj
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import write_jsonl

from mlsandbox.data import load_dataset
from mlsandbox.errors import InvalidInputError, PoolError, RecipeError
from mlsandbox.ops import TextBatch, create_op, list_ops
from mlsandbox.ops.text.flagged_words_filter import flagged_words
from mlsandbox.ops.text.stopwords_filter import LANGUAGES, stopwords
from mlsandbox.pools import RecipeOrigin
from mlsandbox.recipes import (
    Condition,
    Recipe,
    data_juicer_keys,
    export_recipe,
    from_data_juicer,
    ksigma_recipe,
    load_recipe,
    parse_recipe,
    percentile_recipe,
    read_data_juicer,
    save_data_juicer,
    save_recipe,
    to_data_juicer,
)
from mlsandbox.recipes._bounds import stored_bound
from mlsandbox.recipes._word_lists import WORDS_MARK
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import StatsTable, compute_stats

TEXT_LEN = [1.0, 2.0, 3.0, 4.0, 100.0]
ALNUM = [0.9, 0.2, 0.6, 0.8, 0.5]
LANG = ["en", "en", "de", "en", "fr"]
LANG_SCORE = [0.9, 0.5, 0.95, 0.99, 0.7]


@pytest.fixture
def stats() -> StatsTable:
    """Five samples with hand-picked stats; OPs with default params."""
    frame = pd.DataFrame({
        "id": [f"d{i}" for i in range(5)],
        "text_len": TEXT_LEN,
        "alnum_ratio": ALNUM,
        "lang": np.array(LANG, dtype=object),
        "lang_score": LANG_SCORE,
    })
    ops = [create_op("text_length_filter"), create_op("alphanumeric_filter"), create_op("language_id_score_filter")]
    return StatsTable(frame, "dataset-digest", ops, [])


def recipe(*conditions: Condition, **kw) -> Recipe:
    return Recipe(name=kw.pop("name", "r"), conditions=list(conditions), **kw)


# --- selection -------------------------------------------------------------------------------


def test_selection_is_the_intersection_of_inclusive_bounds(stats) -> None:
    r = recipe(Condition(op="text_length_filter", min=2, max=4), Condition(op="alphanumeric_filter", min=0.6))
    pool = r.select(stats)
    expected = np.flatnonzero((np.array(TEXT_LEN) >= 2) & (np.array(TEXT_LEN) <= 4) & (np.array(ALNUM) >= 0.6))
    assert list(pool.rows) == list(expected) == [2, 3]
    assert list(pool.repeats) == [1, 1]


def test_conditions_on_the_same_stat_are_intersected(stats) -> None:
    r = recipe(Condition(op="text_length_filter", min=2), Condition(op="text_length_filter", max=3))
    assert list(r.select(stats).rows) == [1, 2]


def test_no_conditions_select_all_data(stats) -> None:
    assert recipe().select(stats).unique_size == 5


def test_a_categorical_condition_keeps_the_listed_values(stats) -> None:
    r = recipe(Condition(op="language_id_score_filter", stat="lang", values=["en", "fr"]),
               Condition(op="language_id_score_filter", min=0.8))
    assert list(r.select(stats).rows) == [0, 3]


def test_the_default_stat_is_the_ops_split_stat() -> None:
    assert Condition(op="language_id_score_filter", min=0.5).stat == "lang_score"
    assert Condition(op="alphanumeric_filter", max=0.5).stat == "alnum_ratio"


def test_repeat_multiplies_every_sample(stats) -> None:
    pool = recipe(Condition(op="text_length_filter", max=3), repeat=3).select(stats)
    assert pool.unique_size == 3 and pool.size == 9 and set(pool.repeats) == {3}
    assert pool.name == "r"


def test_sampling_is_seeded_and_drawn_from_the_selection(stats) -> None:
    cond = Condition(op="text_length_filter", max=4)
    a = recipe(cond, sample_size=2, seed=1).select(stats)
    b = recipe(cond, sample_size=2, seed=1).select(stats)
    assert a.unique_size == 2 and set(a.rows) <= {0, 1, 2, 3}
    assert list(a.rows) == list(b.rows)
    draws = {tuple(recipe(cond, sample_size=2, seed=s).select(stats).rows) for s in range(10)}
    assert len(draws) > 1
    assert recipe(cond, sample_size=2, repeat=2).select(stats).size == 4


def test_a_sample_larger_than_the_selection_is_an_error(stats) -> None:
    with pytest.raises(PoolError, match=r"sample_size=4 but only 3 samples pass text_length_filter.text_len in \[-inf, 3\]"):
        recipe(Condition(op="text_length_filter", max=3), sample_size=4).select(stats)


def test_an_empty_selection_names_the_conditions(stats) -> None:
    with pytest.raises(PoolError, match=r"empty selection.*text_length_filter.text_len in \[200, inf\]"):
        recipe(Condition(op="text_length_filter", min=200)).select(stats)
    with pytest.raises(PoolError, match="do not overlap"):
        recipe(Condition(op="text_length_filter", min=5), Condition(op="text_length_filter", max=4)).select(stats)


def test_the_pool_origin_names_the_recipe_its_digest_and_repeat(stats) -> None:
    r = recipe(Condition(op="text_length_filter", max=3), name="short").model_copy(update={"repeat": 3})
    pool = r.select(stats)
    assert pool.origin == RecipeOrigin("short", r.digest(), None, r.seed, 3)
    assert set(pool.repeats) == {3}


def test_an_op_missing_from_the_table_or_computed_with_other_params_is_an_error(stats) -> None:
    with pytest.raises(RecipeError, match="condition stopwords_filter.stopwords_ratio.*not in this stats table"):
        recipe(Condition(op="stopwords_filter", min=0.1)).select(stats)
    frame = pd.DataFrame({"id": ["a", "b"], "char_rep_ratio": [0.1, 0.2]})
    table = StatsTable(frame, "d", [create_op("character_repetition_filter", {"rep_len": 5})], [])
    with pytest.raises(RecipeError, match=r"bounds character_repetition_filter with \{'rep_len': 10\} \(its defaults\), "
                                          r"but the stats table computed it with \{'rep_len': 5\}"):
        recipe(Condition(op="character_repetition_filter", max=0.15)).select(table)
    assert recipe(Condition(op="character_repetition_filter", max=0.15, params={"rep_len": 5})).select(table).size == 1


def test_a_condition_names_an_ops_local_file_by_its_bytes_not_its_spelling(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("lm.arpa", "other.arpa"):
        (tmp_path / name).write_text(f"\\data\\\n{name}\n")
    frame = pd.DataFrame({"id": ["a", "b"], "perplexity": [10.0, 20.0]})
    table = StatsTable(frame, "d", [create_op("perplexity_filter", {"kenlm_model": str(tmp_path / "lm.arpa")})], [])
    assert recipe(Condition(op="perplexity_filter", max=15, params={"kenlm_model": "./lm.arpa"})).select(table).size == 1
    with pytest.raises(RecipeError, match="other.arpa.*but the stats table computed it with"):  # another model's
        recipe(Condition(op="perplexity_filter", max=15, params={"kenlm_model": "other.arpa"})).select(table)


def test_min_max_on_a_categorical_stat_and_values_on_a_numeric_one_are_errors(stats) -> None:
    with pytest.raises(RecipeError, match="lang is categorical; use values"):
        recipe(Condition(op="language_id_score_filter", stat="lang", min=1)).select(stats)
    with pytest.raises(RecipeError, match="text_len is numeric; use min/max, not values"):
        recipe(Condition(op="text_length_filter", values=["en"])).select(stats)


def test_selection_matches_a_mask_over_computed_stats(tmp_path: Path) -> None:
    rows = [{"text": t} for t in ["tiny", "a somewhat longer text here", "x" * 40, "hello world, again", "1234"]]
    dataset = load_dataset(DatasetSpec(path=str(write_jsonl(tmp_path / "d.jsonl", rows))))
    table = compute_stats(dataset, [create_op("text_length_filter"), create_op("alphanumeric_filter")],
                          tmp_path, progress=False)
    pool = recipe(Condition(op="text_length_filter", min=5), Condition(op="alphanumeric_filter", min=0.9)).select(table)
    lengths = np.array([len(r["text"]) for r in rows])
    alnum = np.array([sum(c.isalnum() for c in r["text"]) / len(r["text"]) for r in rows])
    assert list(pool.rows) == list(np.flatnonzero((lengths >= 5) & (alnum >= 0.9))) == [2]


# --- digest and YAML -------------------------------------------------------------------------


def test_the_digest_is_stable_and_content_addressed() -> None:
    a = recipe(Condition(op="text_length_filter", max=3.0))
    assert a.digest() == recipe(Condition(op="text_length_filter", stat="text_len", max=3)).digest()
    assert len(a.digest()) == 16 and set(a.digest()) <= set("0123456789abcdef")
    assert a.digest() != recipe(Condition(op="text_length_filter", max=4)).digest()
    assert a.digest() != recipe(Condition(op="text_length_filter", max=3), repeat=2).digest()
    # Params equal to the OP's defaults are the same OP.
    assert recipe(Condition(op="character_repetition_filter", max=0.2, params={"rep_len": 10})).digest() == \
        recipe(Condition(op="character_repetition_filter", max=0.2)).digest()


def test_yaml_round_trip(tmp_path: Path) -> None:
    r = Recipe(name="best", description="top-2", source="top-2 intersection", sample_size=10, seed=7, repeat=2,
               conditions=[Condition(op="character_repetition_filter", max=0.2, params={"rep_len": 5}),
                           Condition(op="language_id_score_filter", stat="lang", values=["en"])])
    path = save_recipe(r, tmp_path / "recipes" / "best.yaml")
    loaded = load_recipe(path)
    assert loaded == r and loaded.digest() == r.digest()
    raw = yaml.safe_load(path.read_text())
    assert raw["conditions"][0] == {"op": "character_repetition_filter", "stat": "char_rep_ratio", "max": 0.2,
                                    "params": {"rep_len": 5}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "r", "conditions": [{"op": "nope_filter", "min": 1}]},
         r"conditions\[0\]: unknown OP 'nope_filter'; known OPs: .*alphanumeric_filter"),
        ({"name": "r", "conditions": [{"op": "text_length_filter", "stat": "num_words", "min": 1}]},
         r"conditions\[0\]: condition on text_length_filter: unknown stat 'num_words'; text_length_filter has text_len"),
        ({"name": "r", "conditions": [{"op": "text_length_filter", "min": 5, "max": 1}]},
         r"condition on text_length_filter.text_len: min 5.0 is above max 1.0"),
        ({"name": "r", "conditions": [{"op": "text_length_filter"}]},
         r"condition on text_length_filter.text_len: set min, max"),
        ({"name": "r", "conditions": [{"op": "language_id_score_filter", "stat": "lang", "values": ["en"], "min": 1}]},
         r"give either values or min/max"),
        ({"name": "r", "conditions": [{"op": "stopwords_filter", "min": 0.1, "params": {"lang": "xx"}}]},
         r"condition on stopwords_filter.stopwords_ratio: invalid params for OP 'stopwords_filter'"),
        ({"name": "r", "repeat": 0}, r"repeat: Input should be greater than or equal to 1"),
        ({"name": "r", "repeat": 10**9}, r"repeat: Input should be less than or equal to 1000"),
        ({"name": "r", "repeat": True}, r"repeat: true/false where a number is expected"),
        ({"name": "r", "conditions": [{"op": "text_length_filter", "min": True}]},
         r"conditions\[0\].min: true/false where a number is expected \(got True\)"),
        ({"name": "r", "ids": ["a", "b"], "id_repeats": [1, 10**12]}, r"id_repeats needs one count from 1 to 1000"),
        ({"name": "r", "sample_size": 0}, r"sample_size: Input should be greater than or equal to 1"),
        ({"name": "r", "seed": -1}, r"seed: a seed must be an integer from 0 to 4294967295"),
        ({"name": "r", "conditions": [{"op": "text_length_filter", "min": 1, "maximum": 3}]},
         r"conditions\[0\].maximum: unknown key"),
    ],
)
def test_invalid_recipe_files_name_the_file_and_key(tmp_path: Path, raw: dict, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match=message) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: invalid recipe: ") and "\n" not in str(err.value)  # one problem, one line


def test_unreadable_recipe_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no recipe file at"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match="is a folder: give the recipe file in it"):
        load_recipe(tmp_path)
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(RecipeError, match="broken.yaml: not valid YAML"):
        load_recipe(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="list.yaml: a recipe must be a mapping"):
        load_recipe(tmp_path / "list.yaml")


# --- Data-Juicer export ----------------------------------------------------------------------

#: One recipe condition per OP and the Data-Juicer 1.6.1 entry it must become.
DJ_EXPORTS = [
    (Condition(op="alphanumeric_filter", min=0.5),
     {"tokenization": False, "min_ratio": 0.49999999995}),  # max default sys.maxsize: open, left out;
    # a fractional bound lies half a step of Data-Juicer's stored decimals (1e-10) outside
    (Condition(op="alphanumeric_filter", max=0.9),
     {"tokenization": False, "min_ratio": 0.0, "max_ratio": 0.90000000005}),  # min default 0.25 cuts: opened
    (Condition(op="character_repetition_filter", min=0.1, params={"rep_len": 5}),
     {"rep_len": 5, "min_ratio": 0.09999999995, "max_ratio": 1.0}),  # max default 0.5 cuts
    (Condition(op="word_repetition_filter", max=0.3),
     {"lang": "en", "tokenization": False, "rep_len": 10, "max_ratio": 0.30000000005}),
    (Condition(op="special_characters_filter", min=0.05, max=0.3),
     {"min_ratio": 0.04999999995, "max_ratio": 0.30000000005}),
    (Condition(op="text_length_filter", max=500.7),
     {"min_len": 0, "max_len": 500}),  # int args, rounded inward
    (Condition(op="words_num_filter", min=20.2),
     {"lang": "en", "tokenization": False, "min_num": 21}),
    (Condition(op="stopwords_filter", max=0.6),
     {"tokenization": False, "lang": "en", "min_ratio": 0.0, "max_ratio": 0.60000000005}),
    (Condition(op="flagged_words_filter", min=0.0001),
     {"tokenization": False, "lang": "en", "min_ratio": 0.00009999995, "max_ratio": 1.0}),
    (Condition(op="language_id_score_filter", min=0.7),
     {"min_score": 0.69999999995}),
    (Condition(op="language_id_score_filter", stat="lang", values=["en"]),
     {"lang": "en", "min_score": 0.0}),  # min_score default 0.8 cuts
    (Condition(op="image_shape_filter", stat="image_height", min=16),
     {"any_or_all": "any", "min_height": 16}),
    (Condition(op="image_aspect_ratio_filter", min=0.5),
     {"any_or_all": "any", "min_ratio": 0.49999999995, "max_ratio": sys.maxsize}),  # max default 3.0 cuts
]


@pytest.mark.parametrize(("condition", "args"), DJ_EXPORTS, ids=lambda x: getattr(x, "label", ""))
def test_each_op_exports_data_juicer_argument_names(condition: Condition, args: dict) -> None:
    config = to_data_juicer(recipe(condition))
    assert config["process"] == [{condition.op: args}]


def test_every_mapped_op_is_tested() -> None:
    # video OPs' exports are tested with the video OPs (tests/test_video_ops.py)
    mapped = {cls.name for cls in list_ops() if cls.data_juicer is not None and not cls.needs_videos()}
    assert {c.op for c, _ in DJ_EXPORTS} == mapped
    assert len(mapped) == 11


def test_each_op_maps_every_one_of_its_stats_to_data_juicer() -> None:
    mapped = {cls.name: cls for cls in list_ops() if cls.data_juicer is not None}
    assert {name: cls.data_juicer.stat_keys() for name, cls in mapped.items()} == {
        name: set(cls.stat_keys) for name, cls in mapped.items()
    }


@pytest.mark.parametrize(("dataset", "keys"), [
    (DatasetSpec(path="d.jsonl", text_field="content"), {"text_key": "content"}),
    (DatasetSpec(path="pairs.parquet", image_field="picture", text_field="caption"),
     {"text_key": "caption", "image_key": "picture"}),
    (DatasetSpec(path="clips/", format="videos"), {"text_key": "text", "video_key": "video"}),
])
def test_a_projects_fields_name_the_data_juicer_keys(dataset: DatasetSpec, keys: dict) -> None:
    """Data-Juicer's image and video filters keep every sample without their key: it must be named."""
    assert data_juicer_keys(dataset) == keys
    config = to_data_juicer(recipe(Condition(op="text_length_filter", min=10)), **keys)
    assert {k: config[k] for k in ("text_keys", "image_key", "video_key") if k in config} == {
        k.replace("text_key", "text_keys"): v for k, v in keys.items()}


def test_an_op_without_a_mapping_is_not_exportable() -> None:
    with pytest.raises(RecipeError, match=r"OP 'perplexity_filter' has no Data-Juicer mapping; mapped OPs: "
                                          r"alphanumeric_filter, character_repetition_filter, "):
        to_data_juicer(recipe(Condition(op="perplexity_filter", max=1500)))


def test_the_export_is_a_complete_data_juicer_config() -> None:
    r = recipe(Condition(op="text_length_filter", min=10),
               Condition(op="language_id_score_filter", stat="lang", values=["en", "de"]),
               Condition(op="language_id_score_filter", min=0.9),
               Condition(op="text_length_filter", max=2000),
               name="my-recipe", sample_size=100)
    config = to_data_juicer(r, dataset_path="in.jsonl", export_path="out.jsonl", text_key="content")
    assert config == {
        "project_name": "my-recipe",
        "dataset_path": "in.jsonl",
        "export_path": "out.jsonl",
        "text_keys": "content",
        "np": 4,
        "process": [
            {"text_length_filter": {"min_len": 10, "max_len": 2000}},
            {"language_id_score_filter": {"lang": ["en", "de"], "min_score": 0.89999999995}},
        ],  # no random_selector: the equal-size draw would keep 100 samples of a full corpus
    }


def test_an_upper_bound_data_juicer_cannot_express_is_an_error() -> None:
    with pytest.raises(RecipeError, match="language_id_score_filter has no maximum for lang_score"):
        to_data_juicer(recipe(Condition(op="language_id_score_filter", max=0.9)))
    # at the score's ceiling a maximum cuts nothing: every default-space search trial has one
    capped = to_data_juicer(recipe(Condition(op="language_id_score_filter", min=0.5, max=1.0)))
    assert capped["process"] == [{"language_id_score_filter": {"min_score": 0.49999999995}}]


def test_an_export_writes_the_word_lists_it_counted_where_data_juicer_reads_them(tmp_path: Path) -> None:
    """Data-Juicer downloads its own flagged-word and stopword lists unless a folder names them: the
    export writes ours there, so the same bounds keep the same samples."""
    r = recipe(Condition(op="flagged_words_filter", max=0.01), Condition(op="text_length_filter", min=10),
               Condition(op="stopwords_filter", min=0.2, params={"lang": "de"}),
               Condition(op="flagged_words_filter", min=0.0))
    (tmp_path / "dj.data_juicer_words").mkdir()  # an earlier export's
    (tmp_path / "dj.data_juicer_words" / WORDS_MARK).write_text("")
    (tmp_path / "dj.data_juicer_words" / "stopwords_en.json").write_text('{"en": ["an", "earlier", "list"]}')
    written = export_recipe(r, tmp_path, stem="dj")
    assert [p.name for p in written] == ["dj.yaml", "dj.data_juicer.yaml", "dj.data_juicer_words"]
    text = written[1].read_text()
    config = yaml.safe_load(text)
    entries = [next(iter(e.items())) for e in config["process"]]
    assert [(op, args.get("flagged_words_dir", args.get("stopwords_dir"))) for op, args in entries] == [
        ("flagged_words_filter", "dj.data_juicer_words"), ("text_length_filter", None),
        ("stopwords_filter", "dj.data_juicer_words")]
    assert "# word lists: flagged_words_dir and stopwords_dir name dj.data_juicer_words/" in text
    assert "not exact" not in text
    folder = written[2]
    # an earlier export's list is gone: Data-Juicer merges every stopwords file of the folder
    assert sorted(f.name for f in folder.iterdir()) == ["flagged_words.json", "stopwords.json", WORDS_MARK]
    assert json.loads((folder / "flagged_words.json").read_text()) == {"en": sorted(flagged_words())}
    assert json.loads((folder / "stopwords.json").read_text()) == {"de": sorted(stopwords("de"))}
    assert (folder / "stopwords.json").read_bytes().isascii()  # Data-Juicer reads it in the locale's encoding
    # Data-Juicer's loop, given those lists as it loads them, counts what the OPs count
    texts = dj.varied_texts(300) + ["Damn it, the hell with it", "Die Katze und der Hund sind nicht da"]
    for op, asset, lang in (("flagged_words_filter", "flagged_words", "en"), ("stopwords_filter", "stopwords", "de")):
        words = {w for f in folder.glob("*.json") if asset in f.name for w in json.loads(f.read_text())[lang]}
        ours = create_op(op, {"lang": lang}).compute(TextBatch(texts))
        assert next(iter(ours.values())).tolist() == [dj.word_list_ratio(t, words) for t in texts], op
    # read back, the folder's lists are ours: nothing to note
    assert read_data_juicer(written[1])[1] == []
    # exported again without word lists, the folder goes: it would hold lists no filter counts
    assert [p.name for p in export_recipe(recipe(Condition(op="text_length_filter", min=10)), tmp_path, stem="dj")
            ] == ["dj.yaml", "dj.data_juicer.yaml"] and not folder.exists()


def test_one_op_with_two_sets_of_params_is_not_exported(tmp_path: Path) -> None:
    """Data-Juicer computes a statistic once per sample: a second stopwords filter, in another
    language, read the first one's ratio (checked with Data-Juicer 1.6.1)."""
    r = recipe(Condition(op="stopwords_filter", min=0.2, params={"lang": "de"}), Condition(op="stopwords_filter", min=0.1))
    with pytest.raises(RecipeError, match="stopwords_filter: one OP with two sets of params"):
        to_data_juicer(r)
    earlier = export_recipe(recipe(Condition(op="stopwords_filter", min=0.1)), tmp_path, stem="dj")
    assert [p.name for p in earlier] == ["dj.yaml", "dj.data_juicer.yaml", "dj.data_juicer_words"]
    written = export_recipe(r, tmp_path, stem="dj")
    assert [p.name for p in written] == ["dj.yaml", "dj.data_juicer.txt"]
    # the earlier config goes with its word lists: it would name a folder that is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dj.data_juicer.txt", "dj.yaml"]
    export_recipe(recipe(Condition(op="text_length_filter", min=10)), tmp_path, stem="dj")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dj.data_juicer.yaml", "dj.yaml"]  # and the reason goes


def test_a_folder_of_the_word_lists_name_that_mlsandbox_did_not_write_is_kept(tmp_path: Path) -> None:
    """A config saved as ``stop.yaml`` puts its lists in ``stop_words/``: a folder (or file) of the
    user's by that name is never removed, and a recipe that needs lists there is not exported."""
    (tmp_path / "stop_words").mkdir()
    (tmp_path / "stop_words" / "stopwords.json").write_text('{"en": ["mine"]}')
    (tmp_path / "bad_words").write_text("a file")
    save_data_juicer(recipe(Condition(op="text_length_filter", min=10)), tmp_path / "stop.yaml")
    for name in ("stop", "bad"):
        with pytest.raises(InvalidInputError, match=f"{name}_words exists and holds no word lists that mlsandbox"):
            save_data_juicer(recipe(Condition(op="stopwords_filter", min=0.1)), tmp_path / f"{name}.yaml")
    assert (tmp_path / "stop_words" / "stopwords.json").read_text() == '{"en": ["mine"]}'
    assert (tmp_path / "bad_words").read_text() == "a file"
    # an export's from before the mark: export_recipe says so rather than call the recipe not exportable
    (tmp_path / "old.data_juicer_words").mkdir()
    (tmp_path / "old.data_juicer.yaml").write_text("process: []\n")
    with pytest.raises(InvalidInputError, match="old.data_juicer_words exists"):
        export_recipe(recipe(Condition(op="stopwords_filter", min=0.1)), tmp_path, stem="old")
    assert (tmp_path / "old.data_juicer.yaml").read_text() == "process: []\n"


def test_a_recipe_that_cannot_be_exported_leaves_the_earlier_config_and_lists_as_they_were(tmp_path: Path) -> None:
    config = save_data_juicer(recipe(Condition(op="stopwords_filter", min=0.1)), tmp_path / "dj.yaml")
    before = config.read_text()
    two = recipe(Condition(op="stopwords_filter", min=0.2, params={"lang": "de"}), Condition(op="stopwords_filter", min=0.1))
    with pytest.raises(RecipeError, match="one OP with two sets of params"):
        save_data_juicer(two, config)
    assert config.read_text() == before and (tmp_path / "dj_words" / "stopwords.json").is_file()


def test_the_word_lists_go_where_words_dir_says(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    config = save_data_juicer(recipe(Condition(op="stopwords_filter", min=0.1)), tmp_path / "dj.yaml", words_dir=lists)
    text = config.read_text()
    assert yaml.safe_load(text)["process"][0]["stopwords_filter"]["stopwords_dir"] == str(lists)
    assert f"# word lists: stopwords_dir names {lists}/, written with the lists" in text
    assert json.loads((lists / "stopwords.json").read_text()) == {"en": sorted(stopwords("en"))}
    assert not (tmp_path / "dj_words").exists()


def test_a_data_juicer_config_that_counts_other_words_is_imported_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "flagged_words.json").write_text(json.dumps({"en": ["hell"]}))
    (tmp_path / "theirs" / "stopwords.json").write_text(json.dumps({"de": sorted(stopwords("de"))}))
    config = {"process": [{"flagged_words_filter": {"max_ratio": 0.01}},
                          {"flagged_words_filter": {"max_ratio": 0.02, "flagged_words_dir": "theirs"}},
                          {"stopwords_filter": {"min_ratio": 0.2, "stopwords_dir": "nowhere"}},
                          {"stopwords_filter": {"min_ratio": 0.2, "stopwords_dir": "theirs"}},
                          {"stopwords_filter": {"min_ratio": 0.2, "stopwords_dir": "theirs", "lang": "de"}},
                          {"stopwords_filter": {"min_ratio": 0.0, "stopwords_dir": "nowhere"}}]}  # dropped
    (tmp_path / "dj.yaml").write_text(yaml.safe_dump(config))
    _, notes = read_data_juicer(tmp_path / "dj.yaml")
    assert notes == [
        "process[0] (flagged_words_filter): no flagged_words_dir: Data-Juicer counted its own flagged_words list; "
        "mlsandbox counts another, so the bounds may keep other samples",
        "process[1] (flagged_words_filter): flagged_words_dir theirs: its flagged_words list for 'en' differs from "
        "mlsandbox's, so the bounds may keep other samples",
        "process[2] (stopwords_filter): stopwords_dir nowhere: no stopwords files there (Data-Juicer would download "
        "its own list), so the bounds may keep other samples",
        "process[3] (stopwords_filter): stopwords_dir theirs: no stopwords list for 'en' there (Data-Juicer would "
        "stop), so the bounds may keep other samples",
        "process[5] (stopwords_filter): dropped, its bounds cut nothing",  # and no note on its folder
    ]
    # `all` is the union of the folder's languages where no file names it, as Data-Juicer makes it
    every = tmp_path / "every"
    every.mkdir()
    (every / "stopwords.json").write_text(json.dumps({lang: sorted(stopwords(lang)) for lang in LANGUAGES - {"all"}}))
    config = {"process": [{"stopwords_filter": {"min_ratio": 0.2, "stopwords_dir": str(every), "lang": "all"}}]}
    assert read_data_juicer(config)[1] == []
    # a language the OP has no list for is the usual error, not the word list's
    with pytest.raises(RecipeError, match="no stopword list for 'xx'"):
        read_data_juicer({"process": [{"stopwords_filter": {"lang": "xx", "min_ratio": 0.2, "stopwords_dir": "w"}}]})


def test_an_export_says_which_of_its_ops_data_juicer_computes_from_other_resources(tmp_path: Path) -> None:
    """Data-Juicer scores languages with another fastText file: the same bounds can keep other samples
    there, which the export says at its top."""
    r = recipe(Condition(op="language_id_score_filter", min=0.5), Condition(op="text_length_filter", min=10))
    notes = [line for line in save_data_juicer(r, tmp_path / "dj.yaml").read_text().splitlines()
             if line.startswith("# not exact in Data-Juicer: ")]
    assert [n.split(": ")[1] for n in notes] == ["language_id_score_filter"]
    exact = save_data_juicer(recipe(Condition(op="text_length_filter", min=10)), tmp_path / "exact.yaml")
    assert "not exact" not in exact.read_text() and not (tmp_path / "exact.data_juicer_words").exists()


def data_juicer_stored(value: float, ulps: int = 0) -> float:
    """A statistic as Data-Juicer compares it: through its JSON stats column and back, by pandas'
    ujson as Hugging Face datasets calls it (10 decimals); ``ulps`` floats further, for a parser
    that errs more (never for whole numbers, which it reads exactly)."""
    stored = pd.io.json.ujson_loads(pd.io.json.ujson_dumps(value))
    for _ in range(abs(ulps) if stored != int(stored) else 0):
        stored = math.nextafter(stored, math.copysign(math.inf, ulps))
    return stored


def test_exported_bounds_keep_what_the_sandbox_kept_as_data_juicer_stores_the_statistics() -> None:
    """Written at a sample's exact value, a bound dropped the samples on it in Data-Juicer: 1/3 is
    stored as 0.3333333333, below a minimum of 0.3333333333333333. Split bounds are such values."""
    ratios = np.unique([k / n for n in [*range(1, 120), 2048] for k in range(n + 1)])  # k/2048: ties, to even
    rng = np.random.default_rng(0)
    for lo, hi in np.sort(rng.choice(ratios, (25, 2)), axis=1):
        for op in ("stopwords_filter", "image_aspect_ratio_filter"):
            args = to_data_juicer(recipe(Condition(op=op, min=lo, max=hi)))["process"][0][op]
            ours = (ratios >= lo) & (ratios <= hi)
            for ulps in (-2, 0, 2):
                stored = np.array([data_juicer_stored(r, ulps) for r in ratios])
                theirs = (stored >= args.get("min_ratio", -math.inf)) & (stored <= args.get("max_ratio", math.inf))
                assert (theirs == ours).all(), (op, lo, hi, ulps, ratios[theirs != ours])
    # what a bound at the exact value dropped: a minimum's value stored below it, a maximum's above
    assert data_juicer_stored(1 / 3) < 1 / 3 and data_juicer_stored(30 / 131) > 30 / 131


@pytest.mark.parametrize("scale", [1e-18, 1e-12, 1e-6, 1.0, 1e3, 1e9, 1e15, 1e16, 1e18])
def test_a_value_stays_within_its_own_exported_bounds_at_every_magnitude(scale: float) -> None:
    """ujson stores 10 decimals, or 10 significant digits above 1e16 and below 1e-15."""
    values = np.random.default_rng(1).random(3000) * scale
    for value in [*values, *-values, 3 / 2048 * scale, scale, math.nextafter(scale, 0), math.nextafter(scale, 2 * scale)]:
        stored = data_juicer_stored(float(value))
        assert float(stored_bound(value, "min")) <= stored <= float(stored_bound(value, "max")), value


def test_a_value_halfway_between_stored_ones_stays_within_its_own_exported_bounds() -> None:
    """ujson rounds after scaling in floating point: a float within a few of halfway between two
    stored values (0.05609546885 is stored as 0.0560954688) may round either way, and the bound must
    follow what it writes, not the exact decimal expansion."""
    halves = (np.random.default_rng(2).integers(0, 10**10, 2000) + 0.5) / 1e10
    for value in [0.05609546885, *(math.nextafter(h, d) for h in halves for d in (-1.0, 1.0)), *halves]:
        stored = data_juicer_stored(value)
        assert float(stored_bound(value, "min")) <= stored <= float(stored_bound(value, "max")), value


def test_a_bound_of_the_wrong_kind_for_the_stat_is_not_exported() -> None:
    with pytest.raises(RecipeError, match="language_id_score_filter.lang: lang is categorical; use values"):
        to_data_juicer(recipe(Condition(op="language_id_score_filter", stat="lang", min=1)))
    with pytest.raises(RecipeError, match="text_length_filter.text_len: text_len is numeric; use min/max"):
        to_data_juicer(recipe(Condition(op="text_length_filter", values=["10"])))


def test_save_data_juicer_writes_yaml_with_what_data_juicer_cannot_express_in_comments(tmp_path: Path) -> None:
    r = recipe(Condition(op="text_length_filter", min=10), repeat=3, source="k-sigma k=2", sample_size=2)
    path = save_data_juicer(r, tmp_path / "dj.yaml", dataset_path="corpus.jsonl")
    text = path.read_text()
    assert "# repeat: 3" in text and "# source: k-sigma k=2" in text and r.digest() in text
    assert "# sample_size: 2 (seed 42), the sandbox's equal-size draw" in text
    assert "append - random_selector: {select_num: 2}" in text
    assert yaml.safe_load(text) == to_data_juicer(r, dataset_path="corpus.jsonl")
    assert "# placeholders, set them before running it: export_path: processed.jsonl (" in text
    both = save_data_juicer(r, tmp_path / "dj2.yaml", dataset_path="corpus.jsonl", export_path="out.jsonl")
    assert "placeholders" not in both.read_text()


# --- Data-Juicer import ----------------------------------------------------------------------


def test_export_then_import_gives_the_same_conditions(tmp_path: Path) -> None:
    one_per_stat = {(c.op, c.stat): c for c, _ in reversed(DJ_EXPORTS)}  # first listed wins
    one_per_stat[("text_length_filter", "text_len")] = Condition(op="text_length_filter", min=3, max=500)
    one_per_stat[("words_num_filter", "num_words")] = Condition(op="words_num_filter", min=20)
    r = recipe(*one_per_stat.values(), sample_size=50)
    back, notes = read_data_juicer(save_data_juicer(r, tmp_path / "dj.yaml"))  # with its word lists
    assert notes == []
    assert back.sample_size is None  # not exported: the sandbox's equal-size draw
    config = to_data_juicer(r)
    config["process"].append({"random_selector": {"select_num": 50}})  # a user's own draw is imported
    assert read_data_juicer(config)[0].sample_size == 50

    def key(c: Condition) -> str:  # a fractional bound comes back half a stored step (5e-11) outside
        bounds = [None if b is None else round(b, 9) for b in (c.min, c.max)]
        return repr((c.op, c.stat, *bounds, c.values, sorted(c.params.items())))

    assert sorted(map(key, back.conditions)) == sorted(map(key, r.conditions))


def test_conditions_on_one_op_merge_into_one_data_juicer_entry() -> None:
    r = recipe(Condition(op="alphanumeric_filter", min=0.5), Condition(op="alphanumeric_filter", min=0.6, max=0.9))
    config = to_data_juicer(r)
    assert config["process"] == [{"alphanumeric_filter": {"tokenization": False, "min_ratio": 0.59999999995,
                                                          "max_ratio": 0.90000000005}}]
    assert [c.describe() for c in read_data_juicer(config)[0].conditions] == [
        "alphanumeric_filter.alnum_ratio in [0.59999999995, 0.90000000005]"
    ]


def test_import_applies_data_juicers_defaults_where_they_cut(tmp_path: Path) -> None:
    config = {"project_name": "dj", "process": [
        {"alphanumeric_filter": None},  # DJ default: 0.25 <= alnum_ratio (max sys.maxsize is open)
        {"text_length_filter": {"min_len": 0, "max_len": sys.maxsize}},  # cuts nothing: dropped
        {"language_id_score_filter": {"lang": "en"}},
    ]}
    r, notes = read_data_juicer(config)
    assert r.name == "dj"
    assert [c.describe() for c in r.conditions] == [
        "alphanumeric_filter.alnum_ratio in [0.25, inf]",
        "language_id_score_filter.lang in ['en']",
        "language_id_score_filter.lang_score in [0.8, inf]",
    ]
    assert notes == ["process[1] (text_length_filter): dropped, its bounds cut nothing"]


def test_import_skips_ops_it_cannot_reproduce_with_notes(tmp_path: Path, caplog) -> None:
    path = tmp_path / "dj.yaml"
    path.write_text(yaml.safe_dump({"process": [
        {"whitespace_normalization_mapper": {}},
        {"document_deduplicator": {"lowercase": True}},
        {"perplexity_filter": {"max_ppl": 1500}},
        {"alphanumeric_filter": {"tokenization": True, "min_ratio": 1.5}},
        {"special_characters_filter": {"max_ratio": 0.2, "reversed_range": True}},
        {"words_num_filter": {"min_num": 5, "num_proc": 4}},
        {"random_selector": {"select_ratio": 0.5}},
    ]}))
    with caplog.at_level(logging.WARNING, logger="mlsandbox.recipes"):
        r = from_data_juicer(path)
    assert [c.describe() for c in r.conditions] == ["words_num_filter.num_words in [5, inf]"]
    # never rounded: a bound copied from a candidate run's params selects the measured pool
    assert Condition(op="character_repetition_filter", min=0.06098514464425332).describe() == (
        "character_repetition_filter.char_rep_ratio in [0.06098514464425332, inf]")
    assert r.sample_size is None and str(path) in r.source
    logged = caplog.text
    for expected in ("process[0] (whitespace_normalization_mapper): skipped",
                     "process[1] (document_deduplicator): skipped",
                     "process[1] (document_deduplicator): skipped, not a filter mlsandbox has a stat for",
                     "process[2] (perplexity_filter): skipped, mlsandbox has this OP but no Data-Juicer mapping",
                     "process[3] (alphanumeric_filter): skipped, tokenization must be False",
                     "process[4] (special_characters_filter): skipped, reversed_range",
                     "process[5] (words_num_filter): ignored args ['num_proc']",
                     "process[6] (random_selector): skipped"):
        assert expected in logged


def test_a_data_juicer_config_given_as_a_recipe_says_how_to_import_it() -> None:
    with pytest.raises(RecipeError, match="a Data-Juicer config, not a recipe: turn it into one with "
                                          "mlsandbox.recipes.from_data_juicer"):
        parse_recipe({"project_name": "p", "np": 4, "process": [{"text_length_filter": {"min_len": 10}}]})


def test_malformed_data_juicer_configs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="process must be a list"):
        read_data_juicer({"process": {"text_length_filter": {}}})
    with pytest.raises(RecipeError, match=r"process\[0\] must be a one-key mapping"):
        read_data_juicer({"process": ["text_length_filter"]})
    with pytest.raises(RecipeError, match=r"process\[0\] \(text_length_filter\): min_len must be a number"):
        read_data_juicer({"process": [{"text_length_filter": {"min_len": "ten"}}]})
    with pytest.raises(RecipeError, match="no Data-Juicer config file at"):
        read_data_juicer(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match=r"process\[0\] \(text_length_filter\): its arguments must be a mapping, got 10"):
        read_data_juicer({"process": [{"text_length_filter": 10}]})
    with pytest.raises(RecipeError, match="lang must be a value or a list of values, got 5"):
        read_data_juicer({"process": [{"language_id_score_filter": {"lang": 5}}]})
    with pytest.raises(RecipeError, match=r"the maximum -0.5 is below the range of alnum_ratio, \[0.0, 1.0\]"):
        read_data_juicer({"process": [{"alphanumeric_filter": {"max_ratio": -0.5}}]})


# --- threshold refinement --------------------------------------------------------------------


def test_ksigma_bounds_are_mean_plus_minus_k_std_with_useless_bounds_dropped(stats) -> None:
    mean, std = 22.0, math.sqrt(1522.0)  # population std of [1, 2, 3, 4, 100]
    r = ksigma_recipe(stats, 1, keys=["text_len"])
    (c,) = r.conditions
    assert c.op == "text_length_filter" and c.stat == "text_len"
    assert c.min is None  # 22 - 39.01 < 1: would cut nothing
    assert c.max == pytest.approx(mean + std)  # 61.01 < 100: cuts the outlier
    assert r.source == "k-sigma k=1"
    assert list(r.select(stats).rows) == [0, 1, 2, 3]
    # k = 2: 22 + 78.03 >= 100, both bounds are open, so no condition at all.
    assert ksigma_recipe(stats, 2, keys=["text_len"]).conditions == []


def test_ksigma_takes_k_per_stat(stats) -> None:
    r = ksigma_recipe(stats, {"text_len": 1, "alnum_ratio": 1})
    by_stat = {c.stat: c for c in r.conditions}
    a = np.array(ALNUM)
    assert by_stat["alnum_ratio"].min == pytest.approx(a.mean() - a.std())
    assert by_stat["alnum_ratio"].max == pytest.approx(a.mean() + a.std())
    assert by_stat["text_len"].min is None
    assert r.source == "k-sigma k={text_len: 1, alnum_ratio: 1}"
    with pytest.raises(RecipeError, match=r"no k for stats \['lang_score'\]"):
        ksigma_recipe(stats, {"text_len": 1}, keys=["text_len", "lang_score"])
    with pytest.raises(RecipeError, match="must be a positive number"):
        ksigma_recipe(stats, 0)


def test_ksigma_defaults_to_every_ops_split_stat(stats) -> None:
    r = ksigma_recipe(stats, 0.5)
    assert {c.stat for c in r.conditions} == {"text_len", "alnum_ratio", "lang_score"}
    with pytest.raises(RecipeError, match="'lang' is not a numeric stat"):
        ksigma_recipe(stats, 1, keys=["lang"])


def test_percentile_bounds(stats) -> None:
    r = percentile_recipe(stats, 10, 90, keys=["text_len"])
    (c,) = r.conditions
    assert c.min == pytest.approx(1.4) and c.max == pytest.approx(61.6)  # linear interpolation
    assert r.source == "percentile lower=10 upper=90"
    assert list(r.select(stats).rows) == [1, 2, 3]
    (upper_only,) = percentile_recipe(stats, None, 50, keys=["text_len"]).conditions
    assert upper_only.min is None and upper_only.max == 3.0
    assert percentile_recipe(stats, 0, 100, keys=["text_len"]).conditions == []  # the observed range
    with pytest.raises(RecipeError, match="lower 90 must be below upper 10"):
        percentile_recipe(stats, 90, 10)
    with pytest.raises(RecipeError, match=r"upper must be in \[0, 100\]"):
        percentile_recipe(stats, None, 101)


def test_export_writes_a_note_when_data_juicer_cannot_express_the_recipe(tmp_path: Path) -> None:
    recipe = Recipe(name="r", conditions=[Condition(op="language_id_score_filter", stat="lang_score", max=0.9)])
    written = export_recipe(recipe, tmp_path)
    assert [p.name for p in written] == ["best_recipe.yaml", "best_recipe.data_juicer.txt"]
    assert "no maximum" in (tmp_path / "best_recipe.data_juicer.txt").read_text()
    ok = Recipe(name="ok", conditions=[Condition(op="text_length_filter", min=10)])
    assert [p.name for p in export_recipe(ok, tmp_path / "ok")] == ["best_recipe.yaml", "best_recipe.data_juicer.yaml"]


# --- id-list recipes -------------------------------------------------------------------------


def test_an_id_list_recipe_selects_its_samples_and_repeats_exactly(stats, tmp_path: Path) -> None:
    r = Recipe(name="fill", ids=["d3", "d0", "d4"], id_repeats=[2, 1, 1], repeat=2)
    pool = r.select(stats)
    assert pool.rows.tolist() == [0, 3, 4] and pool.repeats.tolist() == [2, 4, 2]
    assert r.ids_digest is not None and len(r.ids_digest) == 16
    back = load_recipe(save_recipe(r, tmp_path / "fill.yaml"))
    assert back == r and back.select(stats).digest == pool.digest


def test_the_id_list_of_a_pool_reproduces_it(stats) -> None:
    pool = Recipe(name="x", conditions=[Condition(op="text_length_filter", max=3)], repeat=3).select(stats)
    again = Recipe.of_pool(pool, stats, "ids").select(stats)
    assert (again.rows.tolist(), again.repeats.tolist()) == (pool.rows.tolist(), pool.repeats.tolist())


@pytest.mark.parametrize(("raw", "message"), [
    ({"ids": ["d0"], "conditions": [{"op": "text_length_filter", "max": 3}]}, "no conditions"),
    ({"ids": ["d0"], "sample_size": 1}, "no conditions and no sample_size"),
    ({"ids": []}, "ids is empty"),
    ({"ids": ["d0", "d0"]}, "lists a sample twice"),
    ({"ids": ["d0", "d1"], "id_repeats": [1]}, "one count from 1 to 1000 per id"),
    ({"ids": ["d0"], "ids_digest": "0000000000000000"}, "does not match"),
    ({"id_repeats": [1]}, "need ids"),
])
def test_invalid_id_lists_are_clear_errors(tmp_path: Path, raw: dict, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"name": "r", **raw}))
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)


def test_an_id_list_of_another_dataset_is_an_error_and_not_exported_to_data_juicer(stats, tmp_path: Path) -> None:
    r = Recipe(name="ids", ids=["d0", "elsewhere"])
    with pytest.raises(PoolError, match="1 of its 2 ids are not in the stats table"):
        r.select(stats)
    with pytest.raises(RecipeError, match="id list of 2 samples"):
        to_data_juicer(r)
    assert [p.name for p in export_recipe(r, tmp_path)] == ["best_recipe.yaml", "best_recipe.data_juicer.txt"]


def test_a_measured_id_list_is_refused_on_another_dataset_where_its_ids_may_name_other_samples(stats) -> None:
    r = Recipe(name="ids", ids=["d3", "d0"])
    measured = r.measured_as(r.select(stats), stats, "run-1")
    elsewhere = measured.model_copy(update={"measured": measured.measured.model_copy(update={"dataset_digest": "other"})})
    with pytest.raises(RecipeError, match="is an id list measured on another dataset"):
        elsewhere.select(stats)
    assert elsewhere.model_copy(update={"measured": None}).select(stats).rows.tolist() == [0, 3]  # its ids, taken here


def test_threshold_recipes_keep_their_digest() -> None:
    # the id-list fields, unset, are not part of a threshold recipe's digest
    r = recipe(Condition(op="text_length_filter", max=3.0))
    payload = {k: v for k, v in r.model_dump(mode="json").items()
               if k not in ("ids", "id_repeats", "ids_digest", "measured")}
    assert r.digest() == hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def test_a_measured_recipe_selects_the_pool_it_was_measured_as_or_says_why_not(stats, tmp_path: Path) -> None:
    r = recipe(Condition(op="text_length_filter", max=3.0))
    measured = r.measured_as(r.select(stats), stats, "run-1")
    assert measured.digest() == r.digest()  # where it was measured is no part of the selection
    loaded = load_recipe(save_recipe(measured, tmp_path / "r.yaml"))
    assert loaded.measured == measured.measured and loaded.select(stats).digest == r.select(stats).digest
    # the same conditions now keep other samples (a changed statistic, say): refused on that dataset
    stale = r.measured_as(recipe(Condition(op="text_length_filter", max=4.0)).select(stats), stats, "run-1")
    with pytest.raises(RecipeError, match=r"selected pool \w+ \(4 samples\) of this dataset when it was measured "
                                          r"by run run-1, but now selects pool \w+ \(3 samples\)"):
        stale.select(stats)
    # on another dataset (the full corpus it is meant for) it selects what that dataset holds
    other = StatsTable(stats.frame, "other-dataset", stats.ops, [])
    assert stale.select(other).size == 3
    # on another dataset, stats of another definition (an OP's new version, a param's changed default, a
    # replaced model file, another version of its word list) would take the thresholds to other values:
    # refused, naming what changed; on the measured dataset the same pool is what was measured
    assert measured.measured is not None
    assert measured.measured.statistics == {"text_length_filter": {"op": "text_length_filter", "params": {}}}
    redefined = measured.model_copy(update={"measured": measured.measured.model_copy(update={"statistics": {
        "text_length_filter": {"op": "text_length_filter", "params": {}, "op_version": 0}}})})
    with pytest.raises(RecipeError, match=r"^recipe 'r': its thresholds on text_length_filter were measured on "
                                          r"another definition of its statistic \(op_version: 0 then, none here\); "
                                          r"measure the recipe again on these data, or delete its 'measured' entry"):
        redefined.select(other)
    assert redefined.select(stats).digest == r.select(stats).digest
    header = save_data_juicer(measured, tmp_path / "dj.yaml").read_text()
    assert "# measured: 3 samples (pool " in header and "of dataset dataset-digest in run run-1" in header
