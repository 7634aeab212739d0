"""The benchmark scripts fail as the commands do: bad input is exit code 2 and one line, never a traceback,
and a password in a URL is not printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("argv, says", [
    (["pools.py", "--samples", "0"], "argument --samples: must be at least 100, got 0"),
    (["data_juicer_exports.py", "--dj-python", "/no/such/venv/bin/python"],
     "--dj-python /no/such/venv/bin/python: no dj-process beside it (is py-data-juicer installed?)"),
    (["train_cost.py", "--set", "foo=1"], "error: invalid --set (a TinyLMSpec field): foo: unknown key (got 1)"),
    (["workflow.py", "--set", "pools.size"], "error: --set expects key=value, got 'pools.size'"),
    (["workflow.py", "--project", "projects/text-quality-fast", "--quick", "--until", "probe", "--reference-uri",
      "http://user:S3cretPw@127.0.0.1:1", "--reference-run", "abc"], "error: --reference-run: cannot use the tracking "
     "store http://user:***@127.0.0.1:1"),
])
def test_bad_input_to_a_benchmark_is_one_line_and_exit_code_2(argv: list[str], says: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / argv[0]), *argv[1:], *(
        ["--workdir", str(tmp_path / "wd")] if argv[0] == "workflow.py" else [])],
        capture_output=True, text=True, cwd=BENCHMARKS.parent, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "S3cretPw" not in done.stderr + done.stdout
    assert says in done.stderr.strip().splitlines()[-1], done.stderr
    assert not (tmp_path / "wd" / "mlflow.db").exists()  # refused before the benchmark's store or any run
