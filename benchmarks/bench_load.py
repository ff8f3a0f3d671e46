"""Load benchmark: ``load_dataset(FOLDER, CONFIG)`` of a core-150k-sized config, cold and warm.

Builds a ~157K-sample config (the size of LLaVA-Instruct-150K and of core-150k) from a synthetic
pool written by ``make_scale_pool.py`` (5,720 images x ~27.5 samples = ~157K rows of the ``full``
config), then times ``load_dataset`` with a fresh ``cache_dir``: the first call (cold: parquet ->
arrow cache) and a second call (warm), each in a new process (as a user's next run), plus a
second call in the same process. Goal: warm under 1 second.

    python benchmarks/bench_load.py --work /tmp/svit-load
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_scale_pool import write_pool  # noqa: E402

BUILD = "import sys; from svit_data.cli import main; sys.exit(main(sys.argv[1:]))"
LOAD = """
import json, sys, time
start = time.perf_counter()
from datasets import load_dataset
imported = time.perf_counter()
ds = load_dataset(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3])
first = time.perf_counter()
ds = load_dataset(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3])
second = time.perf_counter()
print(json.dumps({"import": imported - start, "load": first - imported, "again": second - first,
                  "rows": {split: d.num_rows for split, d in ds.items()}}))
"""


def load(folder: Path, config: str, cache: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(folder), config, str(cache)], capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (pool, build, caches)")
    parser.add_argument(
        "--images", type=int, default=5_720, help="images in the pool (default 5,720: ~157K samples)"
    )
    args = parser.parse_args()
    pool, out, cache = args.work / "pool", args.work / "svit", args.work / "hf-cache"
    if not (pool / "conversation.json").is_file():
        write_pool(pool, args.images, seed=0)
    env = {**os.environ, "SVIT_CACHE": str(args.work / "svit-cache")}
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            BUILD,
            "build",
            "full",
            "--source",
            str(pool),
            "--out",
            str(out),
            "--quiet",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    print(f"built config 'full' in {time.perf_counter() - start:.1f} s")
    cold = load(out, "full", cache)
    warm = load(out, "full", cache)
    rows = sum(cold["rows"].values())
    print(f"rows: {rows:,} ({', '.join(f'{s} {n:,}' for s, n in cold['rows'].items())})")
    print(f"cold load_dataset (new cache): {cold['load']:.2f} s   (import datasets {cold['import']:.2f} s)")
    print(f"warm load_dataset (new process): {warm['load']:.2f} s   goal < 1 s")
    print(f"warm load_dataset (same process): {warm['again']:.2f} s")


if __name__ == "__main__":
    main()
