"""The experiment spec rejects bad input with a message naming the key, the value and what is allowed."""

from __future__ import annotations

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
    ({"type": "ngram", "ordr": 3}, "model.ordr: unknown key; allowed keys: discount, level, max_tokens, max_vocab, order"),
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


def test_a_screen_that_is_the_deciding_model_itself_is_refused(tmp_path: Path) -> None:
    """Accepted before: its rows were marked `screen` though nothing cheaper had measured them."""
    model = {"type": "ngram", "order": 4}
    msg = _error(spec_dict(tmp_path / "x.jsonl", model=model, seeds=[0, 1], screen={"model": model, "seeds": [0, 1]}))
    assert "screen.model: is the deciding `model` itself" in msg


def test_a_value_the_message_quotes_already_is_not_repeated(tmp_path: Path) -> None:
    msg = _error(spec_dict(tmp_path / "x.jsonl", pools={"splits": ["a", "a"]}))
    assert msg.endswith("pools.splits: split names must be unique and not 'random', got ['a', 'a']"), msg
