"""The quality gate's cost on a cold ``core-150k`` build, and the near-duplicate pass on its own.

Each run is a fresh process with an empty ``SVIT_CACHE``: ``svit-recipe build core-150k --source FOLDER``
(ingest, concept matrix, selection, parquet). **checks** is the build as shipped; **no checks** is the
same build with the batch checks and signals (``svit_data.ingest.check_batch``) and the near-duplicate
pass (signatures per ingest batch, confirmation over the pool) replaced by no-ops that flag nothing
(monkeypatched, so the rest of the code path is identical). Then ``near_duplicate_rows`` is timed alone
over the ingested pool's ``conversations`` column (signatures from the texts, then the bucket walk, also
timed alone). The no-op patches are applied when this file is imported with ``SVIT_BENCH_NO_QUALITY=1``
in the environment (benchmark only: nothing in ``svit_data`` reads it); ingest's worker processes, which
sources over ``svit_data.ingest.PARALLEL_BYTES`` use, are started by ``spawn`` and import this file as their
main module, so they get the patches too.

    python benchmarks/make_scale_pool.py --out /tmp/svit-q10k --images 10000
    python benchmarks/bench_quality.py /tmp/svit-q10k --work /tmp/svit-bench-quality --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _no_quality() -> None:
    """Replace the quality gate by no-ops that flag nothing (in this process)."""
    import numpy as np

    import svit_data.ingest as ingest
    import svit_data.pool as pool_module
    from svit_data.quality.batch import BatchCheck

    def unchecked(task, froms, values, offsets, record, pairs, **kw):
        zeros = np.zeros(len(offsets) - 1, np.int32)
        return BatchCheck(values, {}, zeros, zeros, zeros, None)

    ingest.check_batch = unchecked
    ingest.document_signatures = lambda conversations, first, scanned: (
        np.zeros((0, 128), np.uint8),
        np.zeros(0),
    )
    pool_module.confirmed_rows = lambda parts: np.zeros(0, np.int64)


if os.environ.get("SVIT_BENCH_NO_QUALITY") == "1":  # this process, or an ingest worker spawned by it
    _no_quality()


def _cpu() -> float:
    """CPU seconds of this process and of its ended child processes (ingest workers, on big sources)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_build(source: str, work: Path, checks: bool) -> dict:
    # both sides import the same modules before the clock starts (numba among them: the concept matcher
    # needs it in any build), so that neither pays an import the other does not
    import svit_data.ingest  # noqa: F401
    import svit_data.pool  # noqa: F401
    from svit_data.quality.batch import BatchCheck  # noqa: F401

    assert checks == (os.environ.get("SVIT_BENCH_NO_QUALITY") != "1")
    from svit_data.cli import main

    start, cpu = time.perf_counter(), _cpu()
    assert main(["build", "core-150k", "--source", source, "--out", str(work / "svit"), "--quiet"]) == 0
    seconds = time.perf_counter() - start
    result = {"checks": checks, "build_s": round(seconds, 1), "cpu_s": round(_cpu() - cpu, 1)}
    if checks:
        from svit_data.pool import open_pool
        from svit_data.quality.near_duplicates import confirmed_rows, document_signatures, near_duplicate_rows

        pool = open_pool(source, progress=False)
        columns = [b.column(0) for b in pool.iter_batches(columns=["conversations"])]
        start, cpu = time.perf_counter(), time.process_time()
        rows = near_duplicate_rows(columns)
        result["near_duplicate_s"] = round(time.perf_counter() - start, 2)
        result["near_duplicate_cpu_s"] = round(time.process_time() - cpu, 2)
        parts, first = [], 0
        for conversations in columns:
            parts.append(document_signatures(conversations, first))
            first += len(conversations)
        cpu = time.process_time()
        assert (confirmed_rows(parts) == rows).all()
        result["bucket_walk_cpu_s"] = round(time.process_time() - cpu, 2)
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
            env = {
                **os.environ,
                "SVIT_CACHE": str(work / "cache"),
                "SVIT_BENCH_NO_QUALITY": str(int(side == "nochecks")),
            }
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
    walk = min(r["bucket_walk_cpu_s"] for r in results if r["checks"])
    print(
        f"the near-duplicate pass alone: {near} s wall, {near_cpu} s CPU (of which the bucket walk {walk} s CPU)"
    )


if __name__ == "__main__":
    main()
