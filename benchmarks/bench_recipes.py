"""Recipe benchmark: core-150k on an SVIT-scale pool, cold and warm, against a pyarrow floor.

- **floor**: one pass of pyarrow over the pool's text (read the ``conversations`` column, flatten the
  turn values, lowercase), the least any matcher has to do;
- **cold**: ``select_recipe("core-150k")`` with no cached matrix: match every sample against the bundled
  vocabulary, cache the matrix, select (diversity then balance), manifest and diagnostics;
- **warm**: the same with the matrix cached;
- **materialize**: reading the selected rows back out of the pool (what the dataset folder then writes);
- **scaling**: diversity (the batched greedy, ``rounds`` mat-vecs) + balance alone (default task quotas)
  on 10%, 30% and 100% of the candidates (size 5% of them), with time / (n log2 n): the selection costs
  O(rounds * nnz + n log n), so it grows about as n log n at a fixed number of rounds;
- **entropy**: concept-mention entropy (diagnostics.py) of core-150k against the diagnostics' random
  subset of the same size.

Each timed step runs in its own subprocess so that peak RSS (``ru_maxrss``) is its own. Goals: cold
< 120 s, warm < 15 s, peak RSS < 4 GB.

    python benchmarks/make_scale_pool.py --out /tmp/svit-scale       # about 3.0M samples, 4.2M QA
    python benchmarks/bench_recipes.py /tmp/svit-scale --cache /tmp/svit-bench-cache
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

PRELUDE = """
import json, os, resource, sys, time
os.environ["SVIT_CACHE"] = sys.argv[2]
from svit_data.pool import open_pool
pool = open_pool(sys.argv[1], progress=False)
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

FLOOR = """
import pyarrow.compute as pc
start = time.perf_counter()
chars = 0
for batch in pool.iter_batches(columns=["conversations"], batch_size=65_536):
    values = pc.list_flatten(batch.column("conversations")).field("value")
    chars += pc.sum(pc.utf8_length(pc.utf8_lower(values))).as_py()
print(json.dumps({"seconds": time.perf_counter() - start, "chars": chars, "rss": rss()}))
"""

SELECT = """
from svit_data.recipes import select_recipe
start = time.perf_counter()
selection = select_recipe("core-150k", pool, progress=False)
seconds = time.perf_counter() - start
d = selection.info["diagnostics"]
print(json.dumps({"seconds": seconds, "rss": rss(), "selected": len(selection.ids),
                  "samples": pool.num_rows, "yes_no": d["yes_no"], "entropy": d["entropy"],
                  "coverage": d["coverage"], "task_mix": d["task_mix"]}))
"""

MATERIALIZE = """
from svit_data.recipes import select_recipe
from svit_data.materialize import select_rows
selection = select_recipe("core-150k", pool, progress=False)
start = time.perf_counter()
rows = sum(t.num_rows for t in select_rows(pool, ids=selection.ids, split="train"))
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "rss": rss()}))
"""

SCALING = """
import numpy as np
from svit_data.recipes.build import candidates_of
from svit_data.recipes.matching import match_pool
from svit_data.recipes.selection import Candidates, select_core
from svit_data.recipes.vocabulary import load_vocabulary
rows, c = candidates_of(match_pool(pool, load_vocabulary(), progress=False))
out = []
for share in (0.1, 0.3, 1.0):
    n = int(c.size * share)
    keep = np.sort(np.random.default_rng(0).permutation(c.size)[:n])
    part = Candidates(c.matrix[keep], c.yes[keep], c.no[keep], c.weights, c.task[keep])
    runs = []
    for _ in range(3):  # best of three: the machine may be shared
        start = time.perf_counter()
        select_core(part, max(1, n // 20), seed=0)
        runs.append(time.perf_counter() - start)
    seconds = min(runs)
    out.append({"share": share, "n": n, "seconds": seconds, "per_nlogn_ns": seconds / (n * np.log2(n)) * 1e9})
print(json.dumps({"steps": out, "rss": rss()}))
"""


def side(code: str, source: str, cache: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + code, source, cache], capture_output=True, text=True, check=False
    )
    if result.returncode:
        sys.exit(f"benchmark step failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="SVIT-scale pool folder (benchmarks/make_scale_pool.py --out)")
    parser.add_argument("--cache", default="/tmp/svit-bench-cache", help="SVIT_CACHE for the benchmark")
    args = parser.parse_args()
    wall = time.perf_counter()
    print("ingesting the pool (cached after the first run; not timed) ...", flush=True)
    side("print(json.dumps({}))", args.source, args.cache)
    for folder in (Path(args.cache) / "matrices").glob("*"):
        shutil.rmtree(folder)
    floor = side(FLOOR, args.source, args.cache)
    print(
        f"floor (pyarrow read + lowercase of the text): {floor['seconds']:6.1f} s   {floor['chars'] / 1e9:.2f} G chars"
    )
    cold = side(SELECT, args.source, args.cache)
    print(
        f"core-150k cold (match + cache + select):     {cold['seconds']:6.1f} s   "
        f"= {cold['seconds'] / floor['seconds']:.1f}x floor   peak RSS {gb(cold['rss'])}   (goal < 120 s, < 4 GB)"
    )
    warm = side(SELECT, args.source, args.cache)
    print(
        f"core-150k warm (matrix cached):              {warm['seconds']:6.1f} s   "
        f"peak RSS {gb(warm['rss'])}   (goal < 15 s)"
    )
    mat = side(MATERIALIZE, args.source, args.cache)
    print(
        f"materialize {mat['rows']:,} rows from the pool:       {mat['seconds']:6.1f} s   peak RSS {gb(mat['rss'])}"
    )
    print(
        f"selected {cold['selected']:,} of {cold['samples']:,} samples; yes share "
        f"{cold['yes_no']['before']['yes_share']:.3f} -> {cold['yes_no']['after']['yes_share']:.3f}; "
        f"entropy {cold['entropy']['selected']:.3f} vs random {cold['entropy']['random']:.3f}; "
        f"task mix {cold['task_mix']}"
    )
    scaling = side(SCALING, args.source, args.cache)
    for step in scaling["steps"]:
        print(
            f"selection (diversity + balance) on {step['share']:>4.0%} = {step['n']:>9,} candidates: "
            f"{step['seconds']:6.2f} s   {step['per_nlogn_ns']:.2f} ns per n log2 n"
        )
    print(f"(benchmark wall time {time.perf_counter() - wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
