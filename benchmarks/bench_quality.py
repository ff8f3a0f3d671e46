"""The quality gate's cost on a cold ``core-150k`` build, and the near-duplicate pass on its own.

Each run is a fresh process with an empty ``SVIT_CACHE``: ``svit-recipe build core-150k --source FOLDER``
(ingest, concept matrix, selection, parquet). **checks** is the build as shipped; **no checks** is the
same build with the batch checks and signals (``svit_data.ingest.check_batch``) and the near-duplicate
pass (signatures per ingest batch, confirmation over the pool) replaced by no-ops that flag nothing (monkeypatched, so the rest of the code path is identical). Then ``near_duplicate_rows`` is timed
alone over the ingested pool's ``conversations`` column. The patches reach only the ingesting process:
use a source under ``svit_data.pool.PARALLEL_BYTES`` (256 MB), e.g. ``make_scale_pool.py --images 10000``,
or the checks run in the workers of the "no checks" run too.

    python benchmarks/make_scale_pool.py --out /tmp/svit-q10k --images 10000
    python benchmarks/bench_quality.py /tmp/svit-q10k --work /tmp/svit-bench-quality --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def one_build(source: str, work: Path, checks: bool) -> dict:
    import numpy as np

    # both sides import the same modules before the clock starts (numba among them: the concept matcher
    # needs it in any build), so that neither pays an import the other does not
    import svit_data.ingest as ingest
    import svit_data.pool as pool_module
    from svit_data.quality.batch import BatchCheck

    if not checks:

        def unchecked(task, froms, values, offsets, record, pairs, **kw):
            n = len(offsets) - 1
            zeros = np.zeros(n, np.int32)
            return BatchCheck(values, {}, zeros, zeros, zeros, None)

        ingest.check_batch = unchecked
        ingest.document_signatures = lambda conversations, first, scanned: (
            np.zeros((0, 128), np.uint8),
            np.zeros(0),
        )
        pool_module.confirmed_rows = lambda parts: np.zeros(0, np.int64)
    from svit_data.cli import main

    start, cpu = time.perf_counter(), time.process_time()
    assert main(["build", "core-150k", "--source", source, "--out", str(work / "svit"), "--quiet"]) == 0
    seconds = time.perf_counter() - start
    result = {"checks": checks, "build_s": round(seconds, 1), "cpu_s": round(time.process_time() - cpu, 1)}
    if checks:
        from svit_data.pool import open_pool
        from svit_data.quality.near_duplicates import near_duplicate_rows

        pool = open_pool(source, progress=False)
        columns = [b.column(0) for b in pool.iter_batches(columns=["conversations"])]
        start, cpu = time.perf_counter(), time.process_time()
        rows = near_duplicate_rows(columns)
        result["near_duplicate_s"] = round(time.perf_counter() - start, 2)
        result["near_duplicate_cpu_s"] = round(time.process_time() - cpu, 2)
        result["near_duplicates"] = len(rows)
        result["pool_samples"] = pool.num_rows
        result["flagged"] = pool.quality["flagged"]
        result["per_task"] = pool.quality["per_task"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="folder of SVIT task files (make_scale_pool.py output)")
    parser.add_argument("--work", default="/tmp/svit-bench-quality", help="scratch folder (emptied per run)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each side, interleaved (best is kept)"
    )
    parser.add_argument("--one", choices=("checks", "nochecks"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    if args.one:
        print(json.dumps(one_build(args.source, work, args.one == "checks")))
        return
    results = []
    for _ in range(args.repeats):
        for side in ("nochecks", "checks"):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            env = {**os.environ, "SVIT_CACHE": str(work / "cache")}
            out = subprocess.run(
                [sys.executable, __file__, args.source, "--work", str(work), "--one", side],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    for clock, key in (("wall", "build_s"), ("CPU", "cpu_s")):
        best = {side: min(r[key] for r in results if r["checks"] == bool(side)) for side in (0, 1)}
        print(
            f"cold core-150k build, best of {args.repeats}, {clock} time: {best[0]} s without checks, {best[1]} s "
            f"with checks (+{100 * (best[1] / best[0] - 1):.0f}%)"
        )
    near = min(r["near_duplicate_s"] for r in results if r["checks"])
    near_cpu = min(r["near_duplicate_cpu_s"] for r in results if r["checks"])
    print(f"the near-duplicate pass alone: {near} s wall, {near_cpu} s CPU")


if __name__ == "__main__":
    main()
