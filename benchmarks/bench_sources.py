"""Sources ingest benchmark: a LLaVA-format file -> pool parquet, against ``json.load`` of the same file.

- **svit**: ``svit_data.sources.open_source`` on a cold cache: detect the format, stream the JSON array,
  check each record (speakers, ``<image>`` count), run the quality checks and complexity signals, write
  parquet (what ``svit-recipe build --source NAME=FILE`` does on first use).
- **json.load**: Python's ``json.load`` of the same file (decoding only, all records in memory).

Each side runs in its own subprocess, in the same run, so that peak RSS (``ru_maxrss``) is its own.
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
start = time.perf_counter()
pool = open_source(parse_source("bench=" + sys.argv[1]), progress=False)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "samples": pool.num_rows, "rss": rss}))
"""

JSON_SIDE = """
import json, resource, sys, time
start = time.perf_counter()
with open(sys.argv[1], encoding="utf-8") as handle:
    records = json.load(handle)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "records": len(records), "rss": rss}))
"""


def run_side(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="LLaVA-format JSON file (benchmarks/make_llava_file.py)")
    args = parser.parse_args()
    baseline = run_side(JSON_SIDE, args.file)
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as cache:
        svit = run_side(SVIT_SIDE, args.file, cache)
    ratio = svit["seconds"] / baseline["seconds"]
    print(
        f"json.load: {baseline['records']:,} records in {baseline['seconds']:.1f} s, peak RSS {baseline['rss'] / 2**30:.2f} GiB"
    )
    print(
        f"svit:      {svit['samples']:,} samples in {svit['seconds']:.1f} s, peak RSS {svit['rss'] / 2**30:.2f} GiB"
    )
    print(f"time ratio svit / json.load: {ratio:.2f} (goal <= 2); svit RSS goal < 1.5 GiB")


if __name__ == "__main__":
    main()
