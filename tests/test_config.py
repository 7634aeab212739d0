"""The experiment spec rejects bad input with a message naming the key, the value and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import spec_dict

from mlsandbox.errors import SpecError
from mlsandbox.project import load_project, parse_project
from mlsandbox.spec import load_spec


def _error(raw: dict) -> str:
    with pytest.raises(SpecError) as err:
        parse_project(raw)
    return str(err.value)


def test_the_bundled_projects_load() -> None:
    projects = Path(__file__).parents[1] / "projects"
    spec = load_spec(projects / "text-quality")
    assert spec.name == "text-quality"
    assert spec.dataset.path == "builtin:demo"
    assert len(spec.ops) == 13
    assert spec.pools.cut_points() == pytest.approx([1 / 3, 2 / 3])
    fast = load_spec(projects / "text-quality-fast")
    assert [op.name for op in fast.ops] == [op.name for op in spec.ops][:9]


def test_the_quick_profile_is_the_specs_own_and_set_overrides_win(tmp_path: Path) -> None:
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")))
    default = load_spec(tmp_path, quick=True)
    assert default.model.type == "ngram" and default.seeds == [0]
    raw = spec_dict(tmp_path / "x.jsonl", quick={"seeds": [3, 4], "model.type": "tiny-lm"})
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    assert load_spec(tmp_path).seeds == [0, 1]  # the quick profile applies only when asked for
    own = load_spec(tmp_path, {"seeds": "[5]"}, quick=True)
    assert own.model.type == "tiny-lm" and own.seeds == [5]


@pytest.mark.parametrize("model, field", [("tiny-captioner", "image_field"), ("tiny-t2v", "video_field")])
def test_the_default_quick_profile_keeps_a_model_of_images_or_videos(tmp_path: Path, model: str, field: str) -> None:
    """An n-gram of the captions alone would rank image or video filters without seeing one picture."""
    raw = spec_dict(tmp_path / "x.jsonl", model={"type": model, "max_steps": 50})
    raw["dataset"][field] = "media"
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    quick = load_spec(tmp_path, quick=True)
    assert (quick.model.type, quick.model.max_steps, quick.seeds) == (model, 50, [0])
    assert load_spec(tmp_path).quick == {"seeds": [0]}  # the profile as the logged spec shows it


def test_a_typo_in_a_key_names_the_key_and_the_allowed_keys(tmp_path: Path) -> None:
    raw = spec_dict(tmp_path / "x.jsonl", pools={"splts": ["a", "b"]})
    msg = _error(raw)
    assert "pools.splts" in msg and "unknown key" in msg
    assert "splits" in msg and "quantiles" in msg


@pytest.mark.parametrize("model, says", [
    ({"type": "command", "command": ["x"], "timeout_s": -1}, "model.timeout_s: Input should be greater than 0"),
    ({"type": "command", "command": "x"}, "model.command: Input should be a valid list"),
    ({"type": "ngram", "ordr": 3},
     "model.ordr: unknown key (did you mean 'order'?); allowed keys: discount, level, max_tokens, max_vocab, order"),
    ({"order": 3}, "model: needs a 'type' key"),
])
def test_a_model_key_is_named_as_written_with_the_keys_of_its_type(tmp_path: Path, model: dict, says: str) -> None:
    """Not as pydantic locates it in the union of model types (``model.command.timeout_s``)."""
    msg = _error(spec_dict(tmp_path / "x.jsonl", model=model, transfer={"names": ["a", "b"], "models": [model, model]}))
    assert says in msg and says.replace("model", "transfer.models[0]", 1) in msg, msg


def test_a_missing_key_is_named_without_dumping_the_spec(tmp_path: Path) -> None:
    raw = spec_dict(tmp_path / "x.jsonl")
    del raw["ops"]
    msg = _error(raw)
    assert msg.endswith("invalid experiment spec: ops: required key missing")


def test_an_unknown_op_names_the_op_and_lists_the_known_ones(tmp_path: Path) -> None:
    raw = spec_dict(tmp_path / "x.jsonl", ops=[{"name": "text_lenght_filter"}])
    msg = _error(raw)
    assert "ops[0] (text_lenght_filter)" in msg
    assert "unknown OP 'text_lenght_filter'" in msg and "text_length_filter" in msg


def test_a_bad_op_param_names_the_param(tmp_path: Path) -> None:
    raw = spec_dict(tmp_path / "x.jsonl", ops=[{"name": "word_repetition_filter", "params": {"rep_len": "ten"}}])
    msg = _error(raw)
    assert "word_repetition_filter" in msg and "rep_len" in msg and "'ten'" in msg


def test_each_bad_param_of_an_op_has_a_line_of_its_own(tmp_path: Path) -> None:
    raw = spec_dict(tmp_path / "x.jsonl", ops=[{"name": "word_repetition_filter", "params": {"rep_len": 0, "bogus": 1}}])
    lines = _error(raw).splitlines()
    assert lines[0].endswith("invalid experiment spec:") and len(lines) == 3
    assert lines[1] == "  - ops[0] (word_repetition_filter).params.rep_len: Input should be greater than or equal to 1 (got 0)"
    assert lines[2].startswith("  - ops[0] (word_repetition_filter).params.bogus: unknown key; allowed keys: ")
    assert "rep_len" in lines[2]


@pytest.mark.parametrize("op, params, says", [
    ("image_nsfw_filter", {"nsfw_label": 7}, "params.nsfw_label: picks a class of a Hugging Face `model`"),
    ("video_motion_score_filter", {"size": 3, "divisible": 8}, "params.size: is below divisible=8"),
])
def test_an_ops_check_across_its_params_names_the_param_and_its_value(tmp_path: Path, op: str, params: dict,
                                                                     says: str) -> None:
    (line,) = _error(spec_dict(tmp_path / "x.jsonl", ops=[{"name": op, "params": params}])).splitlines()
    assert f"ops[0] ({op}).{says}" in line and line.endswith(f"(got {next(iter(params.values()))})")


@pytest.mark.parametrize("key", ["path", "id_field", "image_field", "video_field"])
def test_an_empty_dataset_path_or_field_is_refused_not_read_as_unset(tmp_path: Path, key: str) -> None:
    """An empty path loaded every data file under the project's folder; an empty id_field meant none."""
    raw = spec_dict(tmp_path / "x.jsonl")
    raw["dataset"][key] = ""
    assert f"dataset.{key}: String should have at least 1 character (got '')" in _error(raw)


def test_a_revision_without_a_model_is_named_at_its_key(tmp_path: Path) -> None:
    (line,) = _error(spec_dict(tmp_path / "x.jsonl", model={"type": "hf-lora", "revision": "main"})).splitlines()
    assert line.endswith("model.revision: names a commit of a hub model: set `model` to its name too (got 'main')")


def test_a_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", seeds="zero"))
    assert "seeds" in msg and "'zero'" in msg



@pytest.mark.parametrize("section, where", [
    ({"pools": {"size": True}}, "pools.size"),
    ({"seeds": [0, True]}, "seeds"),
    ({"model": {"type": "ngram", "order": False}}, "order"),
    ({"ops": [{"name": "word_repetition_filter", "params": {"rep_len": True}}]}, "rep_len"),
])
def test_true_or_false_is_not_read_as_a_number(tmp_path: Path, section: dict, where: str) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", **section))
    assert f"{where}: true/false where a number is expected" in msg


def test_true_or_false_is_still_taken_where_the_key_is_a_switch(tmp_path: Path) -> None:
    spec = parse_project(spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm", "shuffle": False}))
    assert spec.model.shuffle is False


@pytest.mark.parametrize("value", [0, 1, "yes", "false"])
def test_a_number_or_a_word_is_not_read_as_true_or_false(tmp_path: Path, value: object) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm", "shuffle": value}))
    assert f"model.shuffle: must be true or false (got {value!r})" in msg


def test_out_of_range_values_say_what_is_allowed(tmp_path: Path) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", pools={"size": 0}))
    assert "pools.size" in msg and "greater than or equal to 1" in msg
    msg = _error(spec_dict(tmp_path / "x.jsonl", pools={"quantiles": [0.7, 0.2]}))
    assert "strictly increasing" in msg
    raw = spec_dict(tmp_path / "x.jsonl")
    raw["dataset"]["format"] = "xml"
    msg = _error(raw)
    assert "dataset.format" in msg and "'jsonl'" in msg and "'xml'" in msg


def test_an_op_listed_twice_is_rejected(tmp_path: Path) -> None:
    raw = spec_dict(tmp_path / "x.jsonl", ops=[{"name": "text_length_filter"}, {"name": "text_length_filter"}])
    msg = _error(raw)
    assert "ops[1] (text_length_filter): listed twice; list each OP once" in msg and "both" not in msg


def test_overrides_apply_dotted_keys_and_are_validated(tmp_path: Path) -> None:
    file = tmp_path / "sandbox.yaml"
    file.write_text(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")))
    spec = load_spec(tmp_path, {"pools.size": "20", "pools.seed": 7})
    assert spec.pools.size == 20 and spec.pools.seed == 7
    with pytest.raises(SpecError, match="pools.size"):
        load_spec(file, {"pools.size": "-3"})


def test_relative_dataset_paths_resolve_against_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(Path("data.jsonl"))))
    spec = load_spec(tmp_path / "proj")
    assert spec.resolve(spec.dataset.path) == (tmp_path / "proj" / "data.jsonl").resolve()


def test_overrides_reach_list_items_by_position_and_refuse_empty_or_bad_parts(tmp_path: Path) -> None:
    file = tmp_path / "sandbox.yaml"
    file.write_text(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")))
    ops = load_spec(file).ops
    assert load_spec(file, {"ops[1].name": ops[0].name}).ops[1].name == ops[0].name  # as errors name the item
    assert load_spec(file, {"ops.0.name": ops[1].name}).ops[0].name == ops[1].name
    for key, says in ((".x", "no empty parts"), ("pools..size", "no empty parts"),
                      (f"ops.{len(ops)}.name", f"0 to {len(ops) - 1} (got '{len(ops)}')"),
                      ("ops[-1].name", f"0 to {len(ops) - 1} (got '-1')"),
                      ("name.b.c", "'name' is not a mapping or a list (got ")):
        with pytest.raises(SpecError, match=re.escape(says)):
            load_spec(file, {key: "1"})
    # the quick profile has one seed: a later seed of the full run is set there, and left out of the profile
    raw = yaml.safe_load(file.read_text())
    file.write_text(yaml.safe_dump({**raw, "seeds": [0, 1, 2], "race": None}))
    assert load_spec(file, {"seeds[2]": "7"}).seeds == [0, 1, 7]
    assert load_spec(file, {"seeds[2]": "7"}, quick=True).seeds == [0]


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no experiment spec"):
        load_spec(tmp_path / "nope")
    bad = tmp_path / "sandbox.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)


@pytest.mark.parametrize("spec_file", sorted((Path(__file__).parents[1] / "projects").glob("*/sandbox.yaml")),
                         ids=lambda p: p.parent.name)
def test_every_shipped_project_spec_is_valid(spec_file: Path) -> None:
    assert load_project(spec_file).name == spec_file.parent.name


@pytest.mark.parametrize(("section", "key"), [
    ({"pools": {"seed": -5}}, "pools.seed"),
    ({"seeds": [0, -1]}, "seeds[1]"),
    ({"search": {"seed": 2**32}}, "search.seed"),
])
def test_seeds_are_bounded_to_numpys_range_naming_the_key(tmp_path: Path, section: dict, key: str) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", **section))
    assert "\n" not in msg  # one problem, one line
    assert f"invalid experiment spec: {key}: a seed must be an integer from 0 to 4294967295" in msg


def test_the_largest_seed_numpy_takes_is_accepted(tmp_path: Path) -> None:
    spec = parse_project(spec_dict(tmp_path / "x.jsonl", seeds=[0, 2**32 - 1], pools={"seed": 2**32 - 1},
                                   search={"seed": 2**32 - 1}))
    assert spec.seeds == [0, 2**32 - 1] and spec.pools.seed == spec.search.seed == 2**32 - 1


def test_several_problems_are_listed_one_per_line(tmp_path: Path) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", pools={"seed": -1, "size": 0}))
    assert msg.endswith("invalid experiment spec:\n  - pools.size: Input should be greater than or equal to 1 "
                        "(got 0)\n  - pools.seed: a seed must be an integer from 0 to 4294967295 (numpy's seed range) "
                        "(got -1)")


@pytest.mark.parametrize("value", ["[1", "{a: 1", "a: b: c", "[0,1"])
def test_an_override_that_is_not_yaml_names_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")))
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path, {"pools.size": value})
    assert str(err.value).startswith(f"cannot set 'pools.size': the value {value!r} is not valid YAML: ")
    assert "\n" not in str(err.value)


def test_a_spec_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "sandbox.yaml"
    spec.write_bytes(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")).encode() + b"description: caf\xe9\n")
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    lines = len(spec.read_bytes().splitlines())
    assert str(err.value).startswith(f"{spec}: not valid YAML at line {lines}: not UTF-8 text (invalid continuation byte")


@pytest.mark.parametrize(("text", "where", "key", "first"), [
    ("name: a\nops: [{name: text_length_filter}]\nname: b\n", "line 3, column 1", "name", 1),
    ("name: a\nops: [{name: text_length_filter}]\npools:\n  seed: 1\n  size: 5\n  seed: 2\n", "line 6, column 3", "seed", 4),
    ("name: a\nops: [{name: text_length_filter, params: {}, name: alphanumeric_filter}]\n", "line 2, column 46", "name", 2),
])
def test_a_key_written_twice_is_rejected_at_any_depth(tmp_path: Path, text: str, where: str, key: str,
                                                      first: int) -> None:
    (tmp_path / "sandbox.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path)
    assert str(err.value) == (f"{tmp_path / 'sandbox.yaml'}: not valid YAML at {where}: duplicate key {key!r} "
                              f"(first at line {first}); a key may appear only once in a mapping")


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    text = "name: a\nops: [{name: text_length_filter}]\npools:\n  <<: {seed: 1, size: 5}\n  seed: 2\n"
    (tmp_path / "sandbox.yaml").write_text(text)
    spec = load_spec(tmp_path)
    assert spec.pools.seed == 2 and spec.pools.size == 5


@pytest.mark.parametrize("key, value, says", [
    ("refine", {"duplication": [1, 10**9]}, "refine.duplication: duplication multiples must be distinct integers from 1 to 1000"),
    ("search", {"repeat": [1, 10**9]}, "search.repeat: repeat must be [low, high] with 1 <= low <= high <= 1000"),
])
def test_a_repeat_rate_too_large_to_materialise_is_refused(tmp_path: Path, key: str, value: dict, says: str) -> None:
    assert says in _error(spec_dict(tmp_path / "x.jsonl", **{key: value}))


def test_two_benchmarks_of_one_name_are_refused(tmp_path: Path) -> None:
    """Their metrics (score.<name>) would collide in every cell."""
    raw = spec_dict(tmp_path / "x.jsonl", benchmarks=[{"name": "wiki", "path": None}, {"name": "wiki", "path": None}])
    assert "benchmark names must be distinct (each names its metrics): ['wiki'] repeated" in _error(raw)


def test_the_quick_profile_is_checked_on_every_load_and_set_overrides_reach_it(tmp_path: Path) -> None:
    """A bad `quick:` waited for the first --quick; `--set quick.seeds=...` was silently ignored."""
    raw = spec_dict(tmp_path / "x.jsonl", quick={"seeds": "notalist"})
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r"sandbox.yaml's quick profile: invalid experiment spec: seeds"):
        load_spec(tmp_path)
    raw["quick"] = {"seeds": [3, 4]}
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    assert load_spec(tmp_path, {"quick.seeds": "[0, 1, 2]"}, quick=True).seeds == [0, 1, 2]
    assert load_spec(tmp_path, {"quick": "{seeds: [7]}"}, quick=True).seeds == [7]
    with pytest.raises(SpecError, match=r"sandbox.yaml with the command line's settings: invalid experiment spec: "
                                        r"seeds: seeds must be distinct"):
        load_spec(tmp_path, {"seeds": "[1, 1]"})


def test_an_op_problem_names_the_command_lines_settings_and_the_profile_as_a_spec_problem_does(tmp_path: Path) -> None:
    """The OP registry's checks said only "sandbox.yaml:" for an OP that ``--set`` named."""
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")))
    bad = {"ops": "[{name: nope_filter}]"}
    with pytest.raises(SpecError, match=r"sandbox.yaml with the command line's settings: invalid experiment spec: "
                                        r"ops\[0\] \(nope_filter\): unknown OP"):
        load_project(tmp_path, bad)
    with pytest.raises(SpecError, match=r"sandbox.yaml's quick profile with the command line's settings: "):
        load_project(tmp_path, bad, quick=True)


def test_a_setting_under_a_section_the_quick_profile_turns_off_is_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--set screen.model.max_steps=10 --quick` said "'screen' is not a mapping" (and, checked on every
    load, would have refused the full profile too)."""
    raw = spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm"}, seeds=[0, 1],
                    screen={"model": {"type": "tiny-lm", "max_steps": 50}, "seeds": [0, 1]})
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    full = load_spec(tmp_path, {"screen.model.max_steps": "10"})
    assert full.screen is not None and full.screen.model.max_steps == 10 and not caplog.records
    quick = load_spec(tmp_path, {"screen.model.max_steps": "10"}, quick=True)
    assert quick.screen is None
    assert "--quick turns `screen` off: --set screen.model.max_steps is left out of this run" in caplog.text


def test_a_whole_section_the_quick_profile_turns_off_is_left_out_of_it_and_kept_in_the_full_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--set race={min_seeds: 3, max_seeds: 6}` was applied to the quick profile too, whose one seed
    then refused the full run; and `--quick` raced, where its help says it does not."""
    raw = spec_dict(tmp_path / "x.jsonl", seeds=list(range(8)))
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    race = {"race": "{min_seeds: 3, max_seeds: 6}"}
    full = load_spec(tmp_path, race)
    assert full.race is not None and (full.race.min_seeds, full.race.max_seeds) == (3, 6) and not caplog.records
    assert load_spec(tmp_path, race, quick=True).race is None
    assert "--quick turns `race` off: --set race is left out of this run" in caplog.text


def test_names_that_become_part_of_mlflow_metric_names_are_bounded(tmp_path: Path) -> None:
    """A 245-character benchmark name passed, then crashed the command when its first metric was logged."""
    bench = _error(spec_dict(tmp_path / "x.jsonl", benchmarks=[{"name": "b" * 101}]))
    assert "benchmarks[0]" in bench and ".name: String should have at most 100 characters" in bench
    assert "transfer.names[1]: String should have at most 100 characters" in _error(
        spec_dict(tmp_path / "x.jsonl", transfer={"models": [{"type": "ngram"}, {"type": "ngram", "order": 2}],
                                                   "names": ["a", "n" * 101]}))


def test_a_key_inside_the_model_the_quick_profile_replaces_is_left_out_of_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--set model.threads=1` on a tiny-lm project was applied to the quick profile's n-gram too,
    which has no such key: refused, on every command, quick or not."""
    raw = spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm"})
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    full = load_spec(tmp_path, {"model.threads": "1"})
    assert full.model.type == "tiny-lm" and full.model.threads == 1 and not caplog.records
    quick = load_spec(tmp_path, {"model.threads": "1"}, quick=True)
    assert quick.model.type == "ngram"
    assert "--quick replaces `model` whole: --set model.threads is left out of this run" in caplog.text
    assert load_spec(tmp_path, {"model": "{type: ngram, order: 3}"}, quick=True).model.order == 3  # the key itself: set


def test_a_screen_that_is_the_deciding_model_itself_is_refused(tmp_path: Path) -> None:
    """Accepted before: its rows were marked `screen` though nothing cheaper had measured them."""
    model = {"type": "ngram", "order": 4}
    msg = _error(spec_dict(tmp_path / "x.jsonl", model=model, seeds=[0, 1], screen={"model": model, "seeds": [0, 1]}))
    assert "screen.model: is the deciding `model` itself" in msg
    assert msg.endswith("(got {'type': 'ngram', 'order': 4})"), msg


def test_a_screen_that_differs_from_the_deciding_model_only_in_keys_that_change_no_result_is_refused(
        tmp_path: Path) -> None:
    """`threads` changes no result (it is left out of the digest): such a screen was accepted, and screened nothing."""
    raw = spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm"}, seeds=[0, 1],
                    screen={"model": {"type": "tiny-lm", "threads": 1}, "seeds": [0, 1]})
    assert _error(raw).endswith("screen.model: is the deciding `model` itself (the same digest): a screen is a "
                                "cheaper model that settles the clear pools first (got {'type': 'tiny-lm', 'threads': 1})")


def test_a_value_is_quoted_once_as_written(tmp_path: Path) -> None:
    """`search.objectives=size` said `got ['size'] (got 'size')`: the validator quoted the value it made of it."""
    msg = _error(spec_dict(tmp_path / "x.jsonl", pools={"splits": ["a", "a"]}))
    assert msg.endswith("pools.splits: split names must be unique and not 'random' (got ['a', 'a'])"), msg
    msg = _error(spec_dict(tmp_path / "x.jsonl", search={"objectives": "size"}))
    assert msg.endswith("search.objectives: objectives must be 'delta' or [delta, size] (got 'size')"), msg


@pytest.mark.parametrize("section, says", [
    ({"pools": {"quantiles": [0.6, 0.3]}},
     "pools.quantiles: must be strictly increasing values in (0, 1) (got [0.6, 0.3])"),
    ({"pools": {"quantiles": [0.6]}},
     "pools.quantiles: needs 2 cut points for splits ['low', 'mid', 'high'] (got [0.6])"),
    ({"model": {"type": "ngram", "order": 5, "level": "word"}}, "model.order: must be <= 4 at level: word (got 5)"),
    ({"model": {"type": "tiny-lm", "n_embd": 130}}, "model.n_embd: must be divisible by n_head=4 (got 130)"),
    ({"model": {"type": "tiny-t2v", "eval_timesteps": [5, 2000]}},
     "model.eval_timesteps: [2000] must lie in [0, diffusion_steps=1000) (got [5, 2000])"),
    ({"race": {"min_seeds": 5, "max_seeds": 3}, "seeds": list(range(5))}, "race.max_seeds: is below min_seeds=5 (got 3)"),
    ({"race": {"max_seeds": 20}}, "race.max_seeds: needs that many `seeds`, and there are 2 (got 20)"),
    ({"confirm": {"seeds": [0, 1]}},
     "confirm.seeds: must be fresh: [0, 1] also choose the answer (`seeds` or `screen.seeds`) (got [0, 1])"),
    ({"transfer": {"models": [{"type": "ngram"}, {"type": "tiny-lm"}], "names": ["a"]}},
     "transfer.names: needs one label for each of the 2 models (got ['a'])"),
    ({"transfer": {"models": [{"type": "ngram"}, {"type": "tiny-lm"}], "names": ["a", "a"]}},
     "transfer.names: must be distinct (got ['a', 'a'])"),
    ({"search": {"ops": [{"op": "text_length_filter", "min_range": [50, 10]}]}},
     "search.ops[0].min_range: must be [low, high] with finite low < high (got [50.0, 10.0])"),
    ({"refine": {"duplication": [0]}},
     "refine.duplication: duplication multiples must be distinct integers from 1 to 1000 (got [0])"),
    ({"search": {"repeat": [1, 2000]}},
     "search.repeat: repeat must be [low, high] with 1 <= low <= high <= 1000 (got [1, 2000])"),
    ({"model": {"type": "nope"}}, "model.type: not allowed; expected 'tiny-lm', 'tiny-captioner', 'tiny-t2v', "
                                  "'ngram', 'hf-lora' or 'command' (got 'nope')"),
])
def test_a_check_across_keys_names_the_key_and_ends_with_the_value(tmp_path: Path, section: dict, says: str) -> None:
    """Such checks named the section (`pools: quantiles must be ...`) and put the value after a comma, or nowhere."""
    msg = _error(spec_dict(tmp_path / "x.jsonl", **section))
    assert msg.endswith(f"invalid experiment spec: {says}"), msg


def test_a_quick_profile_that_is_not_a_mapping_is_a_spec_problem_ending_with_the_value(tmp_path: Path) -> None:
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(tmp_path / "x.jsonl")))
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path, {"quick": "x"})
    assert str(err.value) == (f"{tmp_path / 'sandbox.yaml'} with the command line's settings: invalid experiment spec: "
                              "quick: must be a mapping of dotted keys to values (got 'x')")


def test_an_empty_quick_profile_overrides_nothing(tmp_path: Path) -> None:
    """`quick: {}` was silently replaced by the default profile, while the logged spec showed `quick: {}`."""
    raw = spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm"}, seeds=[0, 1, 2], quick={})
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    quick = load_spec(tmp_path, quick=True)
    assert (quick.model.type, quick.seeds, quick.quick) == ("tiny-lm", [0, 1, 2], {})


@pytest.mark.parametrize("names, says", [
    (["a#b", "a%b"], "transfer.names[0]: String should match pattern '^[A-Za-z0-9_.-]+$' (got 'a#b')"),
    (["", "../x"], "transfer.names[1]: String should match pattern '^[A-Za-z0-9_.-]+$' (got '../x')"),
    (["a", ".."], "transfer.names[1]: a label of dots alone names no folder of its own (got '..')"),
])
def test_a_transfer_name_mlflow_would_refuse_is_refused_at_load(tmp_path: Path, names: list, says: str) -> None:
    """A label names metrics and an artifact folder: `a#b` stopped `transfer` with a traceback after all training."""
    models = [{"type": "ngram", "order": 3}, {"type": "ngram", "order": 2}]
    assert says in _error(spec_dict(tmp_path / "x.jsonl", transfer={"models": models, "names": names}))


@pytest.mark.parametrize("splits, says", [
    (["a#b", "a%b"], "splits 'a#b' and 'a%b' would share the MLflow metric name part 'a_b' (characters MLflow "
                     "does not take become _): rename one (got ['a#b', 'a%b'])"),
    (["a", ""], "split names must be non-empty and without '/' (a pool is named <op>/<split>) (got ['a', ''])"),
    (["a/b", "c"], "split names must be non-empty and without '/' (a pool is named <op>/<split>) (got ['a/b', 'c'])"),
])
def test_split_names_that_would_not_name_their_own_pool_or_metrics_are_refused(
        tmp_path: Path, splits: list, says: str) -> None:
    """`a#b` and `a%b` both logged `delta_pct.<op>.a_b`: one pool's metrics overwrote the other's."""
    assert _error(spec_dict(tmp_path / "x.jsonl", pools={"splits": splits})).endswith(f"pools.splits: {says}")


NO_USER = "~no_such_user_of_mlsandbox"


@pytest.mark.parametrize("section, key", [
    ({"workspace": f"{NO_USER}/ws"}, "workspace"),
    ({"dataset": {"path": f"{NO_USER}/x.jsonl", "format": "jsonl"}}, "dataset.path"),
    ({"benchmarks": [{"name": "b", "path": f"{NO_USER}/x.jsonl"}]}, "benchmarks[0] (b).path"),
    ({"model": {"type": "hf-lora", "model": f"{NO_USER}/x"}}, "model.model"),
    ({"model": {"type": "command", "mlflow_project": f"{NO_USER}/x"}}, "model.mlflow_project"),
])
def test_a_home_folder_of_no_user_is_refused_naming_the_key(tmp_path: Path, section: dict, key: str) -> None:
    """`Path.expanduser` raised RuntimeError (a traceback) where the path was first used."""
    msg = _error({**spec_dict(tmp_path / "x.jsonl"), **section})
    assert f"{key}: {NO_USER} is the home folder of no user of this machine (got '{NO_USER}/" in msg, msg


def test_a_home_folder_of_no_user_is_named_where_a_path_is_read() -> None:
    from mlsandbox.data._files import resolve_files
    from mlsandbox.errors import DataError
    from mlsandbox.hub import model_location

    assert model_location(f"{NO_USER}/x") == f"no such folder {NO_USER}/x: {NO_USER} is the home folder of no user of this machine"
    with pytest.raises(DataError, match=f"^{NO_USER}/x.jsonl: {NO_USER} is the home folder of no user of this machine$"):
        resolve_files(f"{NO_USER}/x.jsonl", Path.cwd())
    from mlsandbox.content import local_path

    assert local_path(f"{NO_USER}/lm.arpa") is None  # an OP param or a trainer's argument: no file, not a traceback


@pytest.mark.parametrize("section, key", [
    ({"model": {"type": "command", "command": ["python", "-c", "pass"], "metrics_file": "."}}, "model.metrics_file"),
    ({"model": {"type": "command", "command": ["python", "-c", "pass"], "metrics_file": "sub/"}}, "model.metrics_file"),
    ({"evaluator": {"type": "command", "command": ["python", "-c", "pass"], "metrics_file": "sub/."}},
     "evaluator.metrics_file"),
])
def test_a_metrics_file_that_names_a_folder_is_refused(tmp_path: Path, section: dict, key: str) -> None:
    """`metrics_file: .` aborted the cell with IsADirectoryError."""
    msg = _error(spec_dict(tmp_path / "x.jsonl", **section))
    assert f"{key}: must name a file, not a folder: the command writes its metrics to it (got " in msg, msg


@pytest.mark.parametrize("env, says", [
    ({"A=B": "s3cr3t-value"}, "model.env: 'A=B' cannot name an environment variable (no =, NUL or empty name)"),
    ({"": "s3cr3t-value"}, "model.env: '' cannot name an environment variable (no =, NUL or empty name)"),
    ({"A\0B": "s3cr3t-value"}, "model.env: 'A\\x00B' cannot name an environment variable (no =, NUL or empty name)"),
    ({"TOKEN": "s3cr3t\0value"}, "model.env.TOKEN: an environment variable's value cannot hold a NUL character"),
])
def test_an_env_the_os_refuses_is_refused_at_load_without_its_value(tmp_path: Path, env: dict, says: str) -> None:
    """Such an env aborted every cell with `ValueError: illegal environment variable name`."""
    msg = _error(spec_dict(tmp_path / "x.jsonl", model={"type": "command", "command": ["python"], "env": env}))
    assert msg.endswith(f"invalid experiment spec: {says}") and "s3cr3t" not in msg, msg


@pytest.mark.parametrize("search, says", [
    ({"budget": 1}, "search.budget: leaves every trial a pool of at most 1 samples, below min_pool_size=50: every "
                    "trial would be pruned (got 1)"),
    ({"budget": 120, "repeat": [3, 4]}, "search.budget: leaves every trial a pool of at most 40 samples (budget // "
                                        "repeat's low end 3 = 40), below min_pool_size=50: every trial would be pruned (got 120)"),
])
def test_a_search_budget_that_prunes_every_trial_is_refused(tmp_path: Path, search: dict, says: str) -> None:
    """Every trial was pruned and the search exited 0."""
    assert _error(spec_dict(tmp_path / "x.jsonl", search=search)).endswith(says)
    assert parse_project(spec_dict(tmp_path / "x.jsonl", search={"budget": 150, "repeat": [3, 4]})).search.budget == 150


_OPS = {"name": "x", "ops": [{"name": "text_length_filter"}], "dataset": {"path": "builtin:demo"}}


@pytest.mark.parametrize("extra, says", [
    ({"pools": {"splits": ["low", "high"], "quantiles": [0.0]}}, "pools.quantiles: must be strictly increasing values "
     "in (0, 1) (got [0.0])"),
    ({"pools": {"splits": ["low", "mid", "high"], "quantiles": [0.5, 0.5]}}, "pools.quantiles: must be strictly "
     "increasing values in (0, 1) (got [0.5, 0.5])"),
    ({"pools": {"splits": ["low", "random"], "quantiles": [0.5]}}, "pools.splits: split names must be unique and not "
     "'random' (got ['low', 'random'])"),  # it would be the random control's name
    ({"screen": {"model": {"type": "ngram", "order": 2}, "seeds": [7, 8]}, "confirm": {"seeds": [8, 9]}},
     "confirm.seeds: must be fresh: [8] also choose the answer (`seeds` or `screen.seeds`) (got [8, 9])"),
    ({"seeds": [0, 1, 2], "race": {"min_seeds": 2, "max_seeds": 4}}, "race.max_seeds: needs that many `seeds`, and "
     "there are 3 (got 4)"),
    ({"benchmarks": [{"name": "b", "path": "b.jsonl", "max_docs": 0}]}, "benchmarks[0] (b).max_docs: Input should be "
     "greater than 0 (got 0)"),
    ({"benchmarks": [{"name": "../b", "path": "b.jsonl"}]}, "benchmarks[0] (../b).name: String should match pattern"),
    ({"benchmarks": [{"name": "b", "path": "b.jsonl", "image_field": "i", "video_field": "v"}]},
     "benchmarks[0] (b).video_field: a benchmark pairs captions with images or with videos, and image_field is set "
     "too ('i'): keep one (got 'v')"),
    ({"evaluator": {"type": "command"}}, "evaluator.command: a `command` evaluator needs an argv list (got None)"),
    ({"evaluator": {"command": ["score.py"]}}, "evaluator.command: is only allowed with type: command (got "
     "['score.py'])"),
    ({"evaluator": {"type": "command", "command": ["a"], "timeout_s": 0}}, "evaluator.timeout_s: Input should be "
     "greater than 0 (got 0)"),
    ({"dataset": {"path": "x.jsonl", "image_field": "i", "video_field": "v"}}, "dataset.video_field: a sample has an "
     "image or a video, not both"),
    ({"dataset": {"path": "clips", "format": "videos", "image_field": "i"}}, "dataset.format: a sample has an image or "
     "a video, not both"),
])
def test_each_section_check_names_its_dotted_key_and_the_value(extra: dict, says: str) -> None:
    """Every refusal, a section's own checks included, reads `<dotted key>: <why> (got <value>)`."""
    from mlsandbox.spec import parse_spec

    with pytest.raises(SpecError) as err:
        parse_spec({**_OPS, **extra})
    line = str(err.value).splitlines()[-1]
    assert says in line and line.rstrip().endswith(")") and "(got " in line, line


def test_a_raced_spec_gives_search_trials_the_races_first_seeds() -> None:
    """A search trial is one look of the race: its minimum of seeds, the first of `seeds`."""
    from mlsandbox.spec import parse_spec

    raced = parse_spec({**_OPS, "seeds": [0, 1, 2, 3], "race": {"min_seeds": 2, "max_seeds": 4}})
    assert raced.trial_seeds() == [0, 1]
    assert parse_spec({**_OPS, "seeds": [0, 1, 2, 3]}).trial_seeds() == [0, 1, 2, 3]


def test_a_spec_that_is_no_mapping_and_a_set_inside_a_value_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "sandbox.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match=r"must be a mapping of keys \(got a list\)"):
        load_spec(tmp_path)
    (tmp_path / "sandbox.yaml").write_text("")
    with pytest.raises(SpecError, match=r"must be a mapping of keys \(got an empty file\)"):
        load_spec(tmp_path)
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(_OPS))
    with pytest.raises(SpecError, match="cannot set 'name.x': 'name' is not a mapping"):
        load_spec(tmp_path, {"name.x": "1"})


def test_the_allowed_keys_name_only_what_a_spec_may_set() -> None:
    """`base_dir` (where the spec was read from) is a field, not a key a spec file may hold."""
    from mlsandbox.spec import parse_spec

    with pytest.raises(SpecError) as err:
        parse_spec({**_OPS, "bogus": 1})
    assert "bogus: unknown key; allowed keys: analyze, " in str(err.value) and "base_dir" not in str(err.value)


def test_the_duplication_study_goes_up_to_max_repeat() -> None:
    from mlsandbox.spec import MAX_REPEAT, parse_spec

    assert parse_spec({**_OPS, "refine": {"duplication": [1, MAX_REPEAT]}}).refine.duplication == [1, MAX_REPEAT]
    with pytest.raises(SpecError, match=f"refine.duplication: duplication multiples must be distinct integers from 1 "
                                        f"to {MAX_REPEAT} \\(got \\[{MAX_REPEAT + 1}\\]\\)"):
        parse_spec({**_OPS, "refine": {"duplication": [MAX_REPEAT + 1]}})
