"""A script that computes stats with worker processes but has no ``if __name__ == "__main__":``
guard: each spawned worker runs the script again and asks for the stats its parent is computing.
It must fail at once with what to do, not wait for good on the stats lock its parent holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """import json, sys
from pathlib import Path
from mlsandbox.data import load_dataset
from mlsandbox.ops import create_op
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import compute_stats

folder = Path(sys.argv[1])
corpus = folder / "corpus.jsonl"
corpus.write_text("".join(json.dumps({"text": "word " * (i % 7)}) + "\\n" for i in range(90)))
dataset = load_dataset(DatasetSpec(path=str(corpus)))
compute_stats(dataset, [create_op("text_length_filter")], folder / "cache", workers=2, batch_size=30, progress=False)
"""


def test_an_unguarded_script_with_stats_workers_fails_fast_saying_what_to_do(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)  # the script and the workers it started
        run.communicate()
        pytest.fail("the script still waited after 60 s")
    assert run.returncode != 0
    assert 'if __name__ == "__main__":' in output and "stats.workers: 1" in output
