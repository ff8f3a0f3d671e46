"""Sources ingest benchmark: a LLaVA-format file -> pool parquet, against ``json.load`` of the same file.

- **svit**: ``svit_data.sources.open_source`` on a cold cache: detect the format, stream the JSON array,
  check each record (speakers, ``<image>`` count), run the quality checks and complexity signals, write
  parquet (what ``svit-recipe build --source NAME=FILE`` does on first use).
- **json.load**: Python's ``json.load`` of the same file (decoding only, all records in memory).

Each side runs in its own subprocess, in the same run, so that peak RSS (``ru_maxrss``) and CPU time
(user + system, steadier than wall time on a shared machine) are its own. A file of at least
``svit_data.pool.PARALLEL_BYTES`` is ingested by one process per core, a range of the file each: svit's
CPU time then counts those workers too, and its peak RSS is given for the parent and for the largest
worker (``RUSAGE_CHILDREN``); the processes' memory at once is at most the parent's plus one largest
worker per part.
Goal (issue 10): svit at most 2x the time of ``json.load``, svit's peak RSS under 1.5 GB.

    python benchmarks/make_llava_file.py --out /tmp/llava_mix665k.json
    python benchmarks/bench_sources.py /tmp/llava_mix665k.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

SVIT_SIDE = """
import json, os, resource, sys, time
os.environ["SVIT_CACHE"] = sys.argv[2]
from svit_data.sources import open_source, parse_source
def cpu_time():
    own, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime, workers.ru_utime + workers.ru_stime
own0, workers0 = cpu_time()
start = time.perf_counter()
pool = open_source(parse_source("bench=" + sys.argv[1]), progress=False)
seconds = time.perf_counter() - start
own, workers = cpu_time()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({
    "seconds": seconds, "cpu": own - own0 + workers - workers0, "worker_cpu": workers - workers0,
    "samples": pool.num_rows, "rss": rss, "worker_rss": worker_rss, "parts": len(pool.files),
}))
"""

READER_SIDE = """
import json, resource, sys, time
from pathlib import Path
from svit_data.formats.sources import detect_format, read_source
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
path = Path(sys.argv[1])
records = sum(1 for _ in read_source(path, detect_format(path)))
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - cpu0
print(json.dumps({"seconds": seconds, "cpu": cpu, "records": records, "rss": usage.ru_maxrss * 1024}))
"""

JSON_SIDE = """
import json, resource, sys, time
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
with open(sys.argv[1], encoding="utf-8") as handle:
    records = json.load(handle)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - cpu0
print(json.dumps({"seconds": seconds, "cpu": cpu, "records": len(records), "rss": usage.ru_maxrss * 1024}))
"""


def run_side(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="LLaVA-format JSON file (benchmarks/make_llava_file.py)")
    parser.add_argument(
        "--reader", action="store_true", help="also time the format reader alone (records read and checked)"
    )
    args = parser.parse_args()
    baseline = run_side(JSON_SIDE, args.file)
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as cache:
        svit = run_side(SVIT_SIDE, args.file, cache)
    sides = [("json.load", baseline, "records"), ("svit", svit, "samples")]
    if args.reader:
        sides.append(("reader", run_side(READER_SIDE, args.file), "records"))
    ratio = svit["seconds"] / baseline["seconds"]
    for label, side, count in sides:
        line = (
            f"{label + ':':<10} {side[count]:,} {count} in {side['seconds']:.1f} s (CPU {side['cpu']:.1f} s"
        )
        if "parts" in side:
            line += (
                f", {side['worker_cpu']:.1f} s of it in workers), {side['parts']} parquet part(s), peak RSS "
                f"{side['rss'] / 2**30:.2f} GiB (parent), {side['worker_rss'] / 2**30:.2f} GiB (largest worker)"
            )
        else:
            line += f"), peak RSS {side['rss'] / 2**30:.2f} GiB"
        print(line)
    print(
        f"time ratio svit / json.load: {ratio:.2f} (goal <= 2; CPU-time ratio "
        f"{svit['cpu'] / baseline['cpu']:.2f}); svit RSS goal < 1.5 GiB"
    )


if __name__ == "__main__":
    main()
