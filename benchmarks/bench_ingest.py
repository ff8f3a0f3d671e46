"""Ingest benchmark: SVIT original JSON -> pool parquet, against a pyarrow baseline on the same records.

- **svit**: ``svit_data.pool.open_pool(FOLDER)`` on a cold cache: fingerprint, read the JSON arrays
  (the compiled reader, :mod:`svit_data.formats.svitscan`), check every sample (the quality gate),
  write parquet and the near-duplicate signatures, then the near-duplicate walk (what ``svit-recipe
  build`` does on first use). Task files are ingested by one process per core.
- **svit, gate off**: the same with the quality gate's checks, signatures and walk replaced by no-ops
  (``bench_quality.py``'s, in the spawned workers too): what svit costs without the work the baseline
  does not do.
- **baseline**: the same image records as JSON Lines (one file per task, made before timing), read by
  ``pyarrow.json.read_json`` (multi-threaded C++) and written with ``pyarrow.parquet.write_table``.
- **per core** (``--per-file``): each task file alone in one process, svit's ``ingest_file`` (gate on
  and off) against ``read_json(use_threads=False)`` + ``write_table``, CPU seconds.

Each side runs in its own process, so that its peak RSS (``ru_maxrss``) and CPU are its own. Issue
13's goal: svit at least 0.9x the baseline's throughput.

    python benchmarks/make_scale_pool.py --out /tmp/svit-scale
    python benchmarks/bench_ingest.py /tmp/svit-scale --work /tmp/svit-bench-ingest --per-file
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

HERE = Path(__file__).resolve().parent

# a file, not ``python -c``: the spawned ingest workers import it as their main module, and so get the
# no-op quality gate too when SVIT_BENCH_NO_QUALITY=1
SVIT_SIDE = f"""
import json, os, resource, sys, time
sys.path.insert(0, {str(HERE)!r})
import bench_quality  # noqa: F401 - the no-op gate under SVIT_BENCH_NO_QUALITY=1


def cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main():
    os.environ["SVIT_CACHE"] = sys.argv[2]
    import svit_data.pool as pool_module

    phases = {{}}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
        return wrapper

    for name in ("fingerprint", "read_image_sizes", "run_jobs", "read_signatures", "confirmed_rows"):
        setattr(pool_module, name, timed(name, getattr(pool_module, name)))
    start = time.perf_counter()
    pool = pool_module.open_pool(sys.argv[1], progress=False)
    seconds = time.perf_counter() - start
    print(json.dumps({{
        "seconds": seconds, "samples": pool.num_rows, "cpu": cpu(resource.RUSAGE_SELF),
        "workers_cpu": cpu(resource.RUSAGE_CHILDREN), "phases": phases,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "worker_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }}))


if __name__ == "__main__":
    main()
"""

PER_FILE_SIDE = f"""
import json, os, sys, tempfile, time
os.environ["SVIT_CACHE"] = sys.argv[2]  # the bundled sample (the warm-up) is written there
sys.path.insert(0, {str(HERE)!r})
import bench_quality  # noqa: F401 - the no-op gate under SVIT_BENCH_NO_QUALITY=1
from pathlib import Path
from svit_data.ingest import IngestJob, ingest_file
from svit_data.pool import read_image_sizes
from svit_data.sample import sample_dir
from svit_data.schema import POOL_SCHEMA
from svit_data.tasks import TASK_FILES

folder = Path(sys.argv[1])
sizes = read_image_sizes(folder / "image_data.json") if (folder / "image_data.json").is_file() else {{}}
result = {{}}
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as out:
    for task, name in TASK_FILES.items():
        if not (folder / name).is_file():
            continue
        warm = IngestJob(task, sample_dir() / name, "warm-" + task, Path(out), POOL_SCHEMA)
        ingest_file(warm, {{}}, {{}})  # the compiled kernels' first load, not timed
        start = time.process_time()
        ingest_file(IngestJob(task, folder / name, task, Path(out), POOL_SCHEMA), sizes, {{}})
        result[task] = time.process_time() - start
print(json.dumps(result))
"""

BASELINE_SIDE = """
import json, resource, sys, time
import pyarrow.json as pj, pyarrow.parquet as pq
threads = sys.argv[3] == "1"
start, clock = time.perf_counter(), time.process_time()
rows, per_file = 0, {}
for k, path in enumerate(sys.argv[1].split(",")):
    began = time.process_time()
    table = pj.read_json(path, read_options=pj.ReadOptions(use_threads=threads))
    pq.write_table(table, f"{sys.argv[2]}/part-{k}.parquet")
    rows += table.num_rows
    per_file[path] = time.process_time() - began
    del table
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "cpu": time.process_time() - clock, "records": rows, "rss": rss,
                  "per_file": per_file}))
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


def run(args: list[str], gate: bool = True) -> dict:
    env = {**os.environ, "SVIT_BENCH_NO_QUALITY": "0" if gate else "1"}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if result.returncode:
        sys.exit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(folder: Path, work: Path, *, per_file: bool = False) -> dict:
    """Every side on ``folder`` (scratch under ``work``); the numbers :func:`report` prints."""
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        scratch = Path(scratch)
        for name in ("cache", "cache-off", "baseline"):
            (scratch / name).mkdir()
        lines = ",".join(map(str, to_json_lines(folder, scratch)))
        side = scratch / "svit_side.py"
        side.write_text(SVIT_SIDE)
        result = {
            "input_bytes": sum(
                (folder / n).stat().st_size for n in TASK_FILES.values() if (folder / n).is_file()
            ),
            "svit": run([str(side), str(folder), str(scratch / "cache")]),
            "svit_off": run([str(side), str(folder), str(scratch / "cache-off")], gate=False),
            "base": run(["-c", BASELINE_SIDE, lines, str(scratch / "baseline"), "1"]),
        }
        if per_file:
            result["files"] = {
                "on": run(["-c", PER_FILE_SIDE, str(folder), str(scratch)]),
                "off": run(["-c", PER_FILE_SIDE, str(folder), str(scratch)], gate=False),
                "base": run(["-c", BASELINE_SIDE, lines, str(scratch / "baseline"), "0"])["per_file"],
            }
    return result


def report(result: dict) -> None:
    ours, off, base = result["svit"], result["svit_off"], result["base"]
    samples, mb = ours["samples"], result["input_bytes"] / 1e6
    print(f"input: {mb:,.0f} MB of SVIT JSON, {samples:,} samples ({base['records']:,} image records)")
    for name, side in (("svit open_pool", ours), ("svit, gate off", off), ("pyarrow baseline", base)):
        cpu = side["cpu"] + side.get("workers_cpu", 0.0)
        print(
            f"{name:>17}: {side['seconds']:6.1f} s  {cpu:6.1f} s CPU  {samples / side['seconds']:>10,.0f} samples/s  "
            f"{mb / side['seconds']:6.1f} MB/s  peak RSS {side['rss'] / 2**30:.2f} GB"
        )
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in ours["phases"].items())
    print(f"svit's phases (wall): {phases}; the ingest workers' CPU {ours['workers_cpu']:.1f} s")
    if ours["worker_rss"]:
        cores = os.cpu_count() or 1
        print(
            f"svit ingest workers: largest peak RSS {ours['worker_rss'] / 2**30:.2f} GB; parent + "
            f"{cores} workers at most {(ours['rss'] + cores * ours['worker_rss']) / 2**30:.2f} GB"
        )
    print(
        f"ratio svit/baseline throughput: {base['seconds'] / ours['seconds']:.2f} (goal >= 0.9); "
        f"with the gate off {base['seconds'] / off['seconds']:.2f}; CPU ratio "
        f"{base['cpu'] / (ours['cpu'] + ours['workers_cpu']):.2f} (gate off "
        f"{base['cpu'] / (off['cpu'] + off['workers_cpu']):.2f})"
    )
    if "files" in result:
        files = result["files"]
        print(
            "per core, one task file in one process (CPU s): svit | svit gate off | pyarrow 1 thread | ratio"
        )
        for task, on in files["on"].items():
            pyarrow = next(v for k, v in files["base"].items() if Path(k).stem == Path(TASK_FILES[task]).stem)
            print(
                f"  {task:>20}: {on:6.2f} | {files['off'][task]:6.2f} | {pyarrow:6.2f} | {pyarrow / on:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="pool folder written by make_scale_pool.py")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary folder)")
    parser.add_argument("--per-file", action="store_true", help="also each task file alone, per core")
    args = parser.parse_args()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    report(compare(args.folder, args.work, per_file=args.per_file))


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"(benchmark wall time {time.perf_counter() - start:.0f} s)")
