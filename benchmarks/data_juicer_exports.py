"""Exported recipes run by Data-Juicer 1.6.1: does it keep exactly the samples the sandbox measured?

    python benchmarks/data_juicer_exports.py --dj-python /path/to/data-juicer-venv/bin/python

The stats of ``projects/text-quality-fast``'s statistical OPs over the bundled corpus (the
language-id OP left out: Data-Juicer's ``lid.176.bin`` does not install offline), then recipes
whose bounds sit where the sandbox puts them: every OP's tercile splits as the workflow cuts them
(each bound a sample's value), its 25th-75th percentile values, a one-sided bound, and one recipe of
four OPs. Each recipe is exported with ``export_recipe`` (the config and its word lists) into a
folder of its own; ``dj-process`` runs it from there, offline, on the same documents written as
JSONL with their ids; the ids it kept are compared with the sandbox's selection. One line per
recipe: the samples each side kept and how many differ, and Data-Juicer's wall seconds. Exits 1
if any recipe differs.

Data-Juicer runs in its own virtual environment: ``python3 -m venv dj && dj/bin/pip install
torch==2.13.0 && dj/bin/pip install py-data-juicer==1.6.1 aiohttp ray``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from _cli import run

if TYPE_CHECKING:
    from mlsandbox.recipes import Condition
    from mlsandbox.spec import PoolSpec
    from mlsandbox.stats import StatsTable

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "projects" / "text-quality-fast"
#: Data-Juicer's language scores come from lid.176.bin, which does not install offline.
LEFT_OUT = {"language_id_score_filter"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dj-python", required=True, help="the Python of a venv with py-data-juicer==1.6.1")
    return parser.parse_args(argv)


def recipes(stats: StatsTable, pools: PoolSpec) -> dict[str, list[Condition]]:
    """Name -> conditions: the splits, percentile values and one-sided bounds of every exported OP."""
    from mlsandbox.pools import cut_splits
    from mlsandbox.recipes import Condition

    made: dict[str, list[Condition]] = {}
    exported = [o for o in stats.ops if o.name not in LEFT_OUT and o.data_juicer is not None]
    ops = [o.name for o in exported]
    for op, params, key in ((o.name, o.params.model_dump(mode="json"), o.split_stat()) for o in exported):
        for cut in cut_splits(stats, op, pools):
            if cut.lower is not None or cut.upper is not None:
                made[f"{op} {cut.split}"] = [Condition(op=op, stat=key, min=cut.lower, max=cut.upper, params=params)]
        lo, mid, hi = np.percentile(stats.stat(key), [25, 50, 75], method="lower")
        made[f"{op} p25-p75"] = [Condition(op=op, stat=key, min=float(lo), max=float(hi), params=params)]
        made[f"{op} max p50"] = [Condition(op=op, stat=key, max=float(mid), params=params)]
    four = [op for op in ("stopwords_filter", "flagged_words_filter", "special_characters_filter",
                          "alphanumeric_filter") if op in ops]
    made["four OPs"] = [c for op in four for c in made[f"{op} p25-p75"]]
    return made


def run_data_juicer(dj_process: Path, folder: Path, cache: Path) -> tuple[set[str] | None, float]:
    """The ids ``dj-process`` kept running the folder's export from the folder; None if it failed."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DATA_JUICER_CACHE_HOME": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([str(dj_process), "--config", "recipe.data_juicer.yaml"], cwd=folder, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (folder / "data_juicer.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    kept = folder / "kept.jsonl"
    if done.returncode != 0 or not kept.exists():
        return None, seconds
    with kept.open(encoding="utf-8") as f:
        return {json.loads(line)["id"] for line in f}, seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dj_process = Path(args.dj_python).with_name("dj-process")
    if not dj_process.exists():
        from mlsandbox.errors import InvalidInputError

        raise InvalidInputError(f"--dj-python {args.dj_python}: no dj-process beside it (is py-data-juicer installed?)")
    from mlsandbox.executors.prepare import prepare
    from mlsandbox.project import load_project
    from mlsandbox.recipes import Recipe, export_recipe

    with tempfile.TemporaryDirectory(prefix="dj-exports-") as tmp:
        work = Path(tmp)
        spec = load_project(PROJECT, {"workspace": str(work / "ws")})
        prepared = prepare(spec)
        stats, table = prepared.stats, prepared.dataset.table
        data = work / "data.jsonl"
        with data.open("w", encoding="utf-8") as f:
            for sample_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist()):
                f.write(json.dumps({"id": str(sample_id), "text": text}, ensure_ascii=False) + "\n")
        ids = np.array([str(i) for i in stats.ids])
        print(f"{len(ids):,} documents; Data-Juicer: {args.dj_python}\n")
        print(f"{'recipe':44s} {'sandbox':>8s} {'Data-Juicer':>11s} {'differ':>7s} {'DJ s':>6s}")
        differing = 0
        for name, conditions in recipes(stats, spec.pools).items():
            recipe = Recipe(name=name.replace(" ", "-"), conditions=conditions)
            ours = set(ids[recipe.select(stats).rows])
            folder = work / recipe.name
            export_recipe(recipe, folder, stem="recipe", dataset_path=str(data), export_path=str(folder / "kept.jsonl"),
                          text_key="text", processes=1)
            theirs, seconds = run_data_juicer(dj_process, folder, work / "dj-cache")
            if theirs is None:
                said = (folder / "data_juicer.log").read_text(encoding="utf-8").strip().splitlines()
                print(f"{name:44s} {len(ours):8,d} {'failed':>11s}: {said[-1][:120] if said else 'no output'}")
                differing += 1
                continue
            differing += bool(ours ^ theirs)
            print(f"{name:44s} {len(ours):8,d} {len(theirs):11,d} {len(ours ^ theirs):7,d} {seconds:6.1f}", flush=True)
        print(f"\n{differing} recipe(s) where Data-Juicer kept other samples or failed")
        return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(run(main))
