"""Memory and time of fitting the n-gram proxy on a large pool: counted in chunks, and in one piece.

The default proxy's fit grows with the pool's text; on a corpus of millions of documents the
pools of refine's threshold recipes hold hundreds of MB. Each fit runs in a fresh process (peak
resident memory is per process), on the bundled corpus's texts repeated up to ``--mb`` MB (byte
level, order 4, as the default project), once with the default chunked counting and once with
every n-gram counted in one piece (the earlier way), side by side in the same run:

    python benchmarks/ngram_memory.py            # 100 MB and 200 MB of text
    python benchmarks/ngram_memory.py --mb 50
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _cli import positive_float, run

FIT = """
import gzip, json, resource, sys, time
import numpy as np
from mlsandbox.models import ngram
from mlsandbox.resources import DEMO_CORPUS

megabytes, chunk = float(sys.argv[1]), int(sys.argv[2])
texts = [json.loads(line)["text"] for line in gzip.open(DEMO_CORPUS, "rt", encoding="utf-8")]
seqs, size = [], 0
while size < megabytes * 1e6:
    for text in texts:
        seqs.append(np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
        size += seqs[-1].size
        if size >= megabytes * 1e6:
            break
if chunk:
    ngram.COUNT_CHUNK = chunk
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
lm = ngram.KneserNey.fit(seqs, 256, 4, None)
print(json.dumps({"text_mb": size / 1e6, "fit_s": time.perf_counter() - started, "before_mb": before,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ngrams": int(lm.tables[-1].keys.size)}))
"""


def fit(megabytes: float, chunk: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", FIT, str(megabytes), str(chunk)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=positive_float, action="append", help="MB of pool text (repeatable; default 100 and 200)")
    args = parser.parse_args()
    print(f"{'text MB':>8} {'counting':>9} {'fit s':>7} {'peak MB':>8} {'fit adds MB':>12} {'MB per MB':>10} {'4-grams':>9}")
    for megabytes in args.mb or [100.0, 200.0]:
        for label, chunk in (("chunked", 0), ("one piece", 2**62)):
            r = fit(megabytes, chunk)
            added = r["peak_mb"] - r["before_mb"]
            print(f"{r['text_mb']:8.0f} {label:>9} {r['fit_s']:7.1f} {r['peak_mb']:8.0f} {added:12.0f} "
                  f"{added / r['text_mb']:10.1f} {r['ngrams']:9d}")


if __name__ == "__main__":
    run(main)
