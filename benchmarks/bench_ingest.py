"""Ingest benchmark: SVIT original JSON -> pool parquet, against a pyarrow baseline on the same records.

- **svit**: ``svit_data.pool.open_pool(FOLDER)`` on a cold cache: fingerprint, stream the JSON arrays,
  check and expand records into samples, write parquet (what ``svit-recipe build`` does on first
  use); task files are ingested by one process per core, as pyarrow's reader uses one thread per core.
- **baseline**: the same image records as JSON Lines (one file per task, made before timing), read by
  ``pyarrow.json.read_json`` (multi-threaded C++) and written with ``pyarrow.parquet.write_table``.

Each side runs in its own subprocess so that peak RSS (``ru_maxrss``) is its own. Goal: svit at
least 0.5x the baseline's throughput, svit's peak RSS under 2 GB.

    python benchmarks/make_scale_pool.py --out /tmp/svit-scale
    python benchmarks/bench_ingest.py /tmp/svit-scale
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from svit_data.tasks import TASK_FILES

SVIT_SIDE = """
import json, os, resource, sys, time
os.environ["SVIT_CACHE"] = sys.argv[2]
from svit_data.pool import open_pool
start = time.perf_counter()
pool = open_pool(sys.argv[1], progress=False)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "samples": pool.num_rows, "rss": rss, "worker_rss": workers}))
"""

BASELINE_SIDE = """
import json, resource, sys, time
import pyarrow.json as pj, pyarrow.parquet as pq
start = time.perf_counter()
rows = 0
for k, path in enumerate(sys.argv[1].split(",")):
    table = pj.read_json(path)
    pq.write_table(table, f"{sys.argv[2]}/part-{k}.parquet")
    rows += table.num_rows
    del table
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "records": rows, "rss": rss}))
"""


def to_json_lines(folder: Path, out: Path) -> list[Path]:
    """The task files' records as JSON Lines (streamed), the baseline's input."""
    from svit_data.formats.jsonstream import iter_json_array

    paths = []
    for name in TASK_FILES.values():
        source = folder / name
        if not source.is_file():
            continue
        target = out / f"{source.stem}.jsonl"
        with open(target, "w", encoding="utf-8") as handle:
            for record in iter_json_array(source):
                handle.write(json.dumps(record, ensure_ascii=False))
                handle.write("\n")
        paths.append(target)
    return paths


def run(code: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if result.returncode:
        sys.exit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="pool folder written by make_scale_pool.py")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary folder)")
    args = parser.parse_args()
    input_bytes = sum(
        (args.folder / name).stat().st_size for name in TASK_FILES.values() if (args.folder / name).is_file()
    )
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        work = Path(work)
        (work / "cache").mkdir()
        (work / "baseline").mkdir()
        lines = to_json_lines(args.folder, work)
        ours = run(SVIT_SIDE, str(args.folder), str(work / "cache"))
        base = run(BASELINE_SIDE, ",".join(map(str, lines)), str(work / "baseline"))
    samples = ours["samples"]
    mb = input_bytes / 1e6
    print(f"input: {mb:,.0f} MB of SVIT JSON, {samples:,} samples ({base['records']:,} image records)")
    for name, result in (("svit open_pool", ours), ("pyarrow baseline", base)):
        print(
            f"{name:>17}: {result['seconds']:7.1f} s  {samples / result['seconds']:>10,.0f} samples/s  "
            f"{mb / result['seconds']:6.1f} MB/s  peak RSS {result['rss'] / 2**30:.2f} GB"
        )
    if ours["worker_rss"]:
        print(
            f"svit ingest workers: largest peak RSS {ours['worker_rss'] / 2**30:.2f} GB; parent + "
            f"{os.cpu_count()} workers at most {(ours['rss'] + os.cpu_count() * ours['worker_rss']) / 2**30:.2f} GB"
        )
    ratio = base["seconds"] / ours["seconds"]
    print(f"ratio svit/baseline throughput: {ratio:.2f} (goal >= 0.5); svit peak RSS goal < 2 GB")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"(benchmark wall time {time.perf_counter() - start:.0f} s)")
