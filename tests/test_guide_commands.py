"""The commands README.md, docs/concepts.md, docs/architecture.md and docs/scaling.md show: every
`mlsandbox` command and option exists, every `mlflow run` entry point and `-P` parameter is in
MLproject, and the numbers scaling.md derives or quotes agree with their sources."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer.main
import yaml

from mlsandbox.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/concepts.md", "docs/architecture.md", "docs/scaling.md"]
COMMANDS: dict[str, click.Command] = typer.main.get_command(app).commands  # type: ignore[attr-defined]
ENTRY_POINTS = yaml.safe_load((ROOT / "MLproject").read_text(encoding="utf-8"))["entry_points"]


def _text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def _shown(prefix: str) -> list[tuple[str, str]]:
    """Every command line of the pages that starts with ``prefix`` (in code spans and code blocks;
    continued lines joined), as (page, command)."""
    found = []
    for page in PAGES:
        text = _text(page).replace("\\\n", " ")
        blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
        prose = re.sub(r"^```\w*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        for span in re.findall(r"`([^`\n]+)`", prose) + [line for block in blocks for line in block.splitlines()]:
            for part in re.split(r"&&|\|(?![^\[]*\])", span):
                part = part.strip()
                if part.startswith(prefix + " "):
                    found.append((page, re.sub(r"\s+#.*$", "", part)))
    return sorted(set(found))


MLSANDBOX = _shown("mlsandbox")
MLFLOW_RUN = _shown("mlflow run")


def test_the_pages_show_commands() -> None:
    assert len(MLSANDBOX) > 10 and len(MLFLOW_RUN) >= 3


@pytest.mark.parametrize("page, line", MLSANDBOX, ids=[f"{p}: {c}" for p, c in MLSANDBOX])
def test_a_shown_mlsandbox_command_has_its_options(page: str, line: str) -> None:
    words = line.split()
    name = words[1]
    assert name in COMMANDS, f"{page}: `{line}`: no command {name!r}"
    options = {opt for param in COMMANDS[name].params for opt in [*param.opts, *param.secondary_opts]}
    for word in words[2:]:
        word = word.strip("[]")
        if word.startswith("-"):
            assert word.split("=")[0] in options, f"{page}: `{line}`: {name} has no option {word}"
    for project in re.findall(r"-p (\S+)", line):
        assert project == "PROJECT" or (ROOT / project / "sandbox.yaml").is_file(), f"{page}: no project {project}"


@pytest.mark.parametrize("page, line", MLFLOW_RUN, ids=[f"{p}: {c}" for p, c in MLFLOW_RUN])
def test_a_shown_mlflow_run_has_its_entry_point_and_parameters(page: str, line: str) -> None:
    entry = re.search(r"-e (\S+)", line).group(1)
    if entry == "ENTRY":
        return
    assert entry in ENTRY_POINTS, f"{page}: `{line}`: no entry point {entry!r}"
    for parameter in re.findall(r"-P (\w+)=", line):
        assert parameter in ENTRY_POINTS[entry]["parameters"], f"{page}: `{line}`: {entry} takes no {parameter}"


def test_the_readme_lists_every_entry_point() -> None:
    row = next(line for line in _text("README.md").splitlines() if line.startswith("| `mlflow run . -e ENTRY"))
    listed = re.findall(r"`(\w+)`", row.split("any of", 1)[1])
    assert sorted(listed) == sorted(ENTRY_POINTS)


def test_scaling_names_the_entry_points_that_take_an_engine_or_executor() -> None:
    text = " ".join(_text("docs/scaling.md").split())
    claim = re.search(r"Under `mlflow run`, (.*?) as parameters", text).group(1)
    engine, executor = claim.split("takes `stats_engine`")
    assert set(re.findall(r"`(\w+)`", engine)) == {e for e, spec in ENTRY_POINTS.items()
                                                  if "stats_engine" in spec["parameters"]} == set(ENTRY_POINTS) - {"evaluate"}
    assert set(re.findall(r"`(\w+)`", executor.split("but `train`")[1])) - {"executor"} == {
        e for e, spec in ENTRY_POINTS.items() if "executor" in spec["parameters"]}


def test_each_entry_point_declares_its_commands_options() -> None:
    """An undeclared `-P key=value` reaches the command as `--key value`, underscores kept: the run
    failed (`No such option: --trial_workers`) where an entry point left an option out."""
    commands = typer.main.get_command(app).commands
    # the commands log params `seeds` and `recipe` themselves: MLflow refuses a second value
    renamed = {"train_seeds": "seeds", "source": "recipe"}
    for entry, spec in ENTRY_POINTS.items():
        options = {p.name for p in commands[entry].params} - {"quiet", "sets", "quick"}
        declared = {renamed.get(p, p) for p in spec["parameters"]}
        left_out = {"stats": {"out"}, "apply": {"force"}}.get(entry, set())  # logged instead; never replaced
        assert declared == options - left_out, entry


def test_commands_md_lists_each_entry_points_parameters() -> None:
    rows = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| (.*?) \|$", _text("docs/commands.md"), re.MULTILINE)
    listed = {entry: {p for p in re.findall(r"`(\w+)`", params)} for entries, params in rows
              for entry in re.findall(r"`(\w+)`", entries) if entry in ENTRY_POINTS}
    assert listed == {e: set(spec["parameters"]) - {"project"} for e, spec in ENTRY_POINTS.items()}


def test_scalings_capacity_follows_from_its_measured_rates() -> None:
    text = " ".join(_text("docs/scaling.md").split())
    capacity = text[text.index("## Capacity for 1B documents"):]
    warm = re.search(r"\| 9 statistical OPs, warm \| local \| 1 \| [\d.]+ s \| ([\d,]+) \|", text)
    rate = int(warm.group(1).replace(",", ""))
    cheap = re.search(r"~([\d,]+) documents/s per core → 1B documents ≈ ([\d,]+) core-seconds ≈ (\d+) core-hours: "
                      r"about (\d+) hour on (\d+) cores", capacity)
    quoted = int(cheap.group(1).replace(",", ""))
    assert abs(quoted - rate) / rate < 0.05
    core_s = 1e9 / quoted
    assert abs(int(cheap.group(2).replace(",", "")) - core_s) / core_s < 0.05
    assert int(cheap.group(3)) == int(core_s / 3600)
    assert round(core_s / 3600 / int(cheap.group(5))) == int(cheap.group(4))
    model = re.search(r"~(\d+) documents/s per core .*?≈ ([\d,]+) core-hours: ([\d.]+) hours on ([\d,]+) cores", capacity)
    table = re.search(r"\| all 13 OPs of `text-quality` \(.*?\) \| local \| (\d) \| [\d.]+ s \| (\d+) \|", text)
    assert int(model.group(1)) == int(table.group(2)) / int(table.group(1))
    hours = 1e9 / int(model.group(1)) / 3600
    assert abs(int(model.group(2).replace(",", "")) - hours) / hours < 0.02
    assert float(model.group(3)) == round(hours / int(model.group(4).replace(",", "")), 1)


def test_scalings_cell_costs_are_those_of_models_md() -> None:
    scaling = " ".join(_text("docs/scaling.md").split())
    models = _text("docs/models.md")
    ngram, tiny = re.search(r"n-gram about ([\d.]+) CPU s, tiny-lm about (\d+)", scaling).groups()
    row = re.search(r"^\| `ngram` \(order 4\) — \*\*default\*\* \| ([\d.]+) \|", models, re.MULTILINE)
    tiny_row = re.search(r"^\| `tiny-lm` \(400k tokens\) \| ([\d.]+) \|", models, re.MULTILINE)
    assert ngram == row.group(1) and abs(float(tiny) - float(tiny_row.group(1))) <= 1


def test_the_readmes_first_run_times_are_those_of_ops_model_backed() -> None:
    readme = " ".join(_text("README.md").split())
    table = _text("docs/ops-model-backed.md")
    quoted = re.search(r"(\d+ min \d+ s) on a CPU with bfloat16 matrix tiles \(Intel AMX\), about (\d+) to (\d+)½ "
                       r"minutes with other bfloat16 instructions and (\d+ min \d+ s) on an AVX2-only", readme)
    amx = next(line for line in table.splitlines() if line.startswith("| bfloat16 matrix tiles (Intel AMX)"))
    bf16 = next(line for line in table.splitlines() if line.startswith("| bfloat16 instructions"))
    avx2 = next(line for line in table.splitlines() if line.startswith("| AVX2 only"))
    assert amx.rstrip(" |").endswith(quoted.group(1))
    assert f"about {quoted.group(2)} min" in bf16 and f"{quoted.group(3)} min 3" in bf16  # 9 min 3x s: 9½
    assert avx2.rstrip(" |").endswith(quoted.group(4))


def test_version_option_prints_the_installed_version() -> None:
    """`mlsandbox --version` (docs/commands.md) prints the package's version and runs no command."""
    from importlib.metadata import version

    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mlsandbox {version('mlsandbox')}"
    assert "`mlsandbox --version`" in _text("docs/commands.md")
