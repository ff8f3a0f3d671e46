"""Mix benchmark: a recipe file mixing an SVIT-scale pool and a LLaVA file, cold and warm, against a floor.

- **floor**: pyarrow reads both sources' records as JSON Lines (written once, untimed) and lowercases the
  text of every turn: the least any build of these records does;
- **cold**: ``svit-recipe build --recipe mix.yaml`` with the SVIT pool ingested and matched already (as a
  user has it after building from the release), the LLaVA file not: its ingest, its concept matrix, the
  cross-source near-duplicates, ``core`` per source, writing the config and card;
- **warm**: the same build again, everything cached.

Each build prints its phases (wall and main-process CPU time of the functions it wraps).

Each side runs in a process of its own: wall time, CPU time (user + system, its child processes
included: the ingest's workers), peak RSS of the largest process, and the load average around it (the
machine may be shared). Issue 13's budget: cold at most 45 s and at most 4x the floor, warm at most 2 s.

    python benchmarks/make_scale_pool.py --out /tmp/svit-scale
    python benchmarks/make_llava_file.py --out /tmp/llava_mix665k.json
    python benchmarks/bench_mix.py /tmp/svit-scale /tmp/llava_mix665k.json --work /tmp/svit-mix-bench
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from phase_timer import TIMED

SIZE = 157_712  # core-150k's size, per source

FLOOR = """
import json, resource, sys, time
import pyarrow.compute as pc, pyarrow.json as pj
start, cpu = time.perf_counter(), time.process_time()
chars = 0
for path in sys.argv[1:]:
    turns = pc.list_flatten(pj.read_json(path)["conversations"])
    if "content" in [f.name for f in turns.type]:  # SVIT: conversations of turns
        turns = pc.list_flatten(pc.struct_field(turns, "content"))
    chars += pc.sum(pc.utf8_length(pc.utf8_lower(pc.struct_field(turns, "value")))).as_py()
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "chars": chars}))
"""

PREPARE = """
import sys
from svit_data.pool import open_pool
from svit_data.recipes.matching import match_pool
from svit_data.recipes.vocabulary import load_vocabulary
match_pool(open_pool(sys.argv[1], progress=False), load_vocabulary(), progress=False)
"""


BUILD = (
    TIMED
    + """
start, cpu = time.perf_counter(), time.process_time()
from svit_data.cli import main
import svit_data.cli.build, svit_data.folder, svit_data.sources, svit_data.recipes.recipe_file_build as rfb
phases["imports"] = (time.perf_counter() - start, time.process_time() - cpu)
timed(svit_data.sources, "open_pool", "open the SVIT pool (hash its files)")
timed(svit_data.sources, "open_source", "open the LLaVA source (hash, ingest)")
timed(svit_data.sources, "merge_pools", "mix: cross-source near-duplicates")
timed(rfb, "match_pool", "concept matrix")
timed(rfb, "_pick_all", "select core per source")
timed(svit_data.folder.DatasetFolder, "write_config", "materialize + write config and card")
timed(svit_data.cli.build, "overlap_of", "image overlap")
code = main(["build", *sys.argv[1:]])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
phases["rest"] = (seconds - sum(w for w, _ in phases.values()), cpu - sum(c for _, c in phases.values()))
print(json.dumps({"code": code, "phases": phases}))
"""
)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measured(command: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``command``: wall and CPU seconds (its child processes included), peak RSS of the largest
    process, its output, and the load average before and after."""
    before = load_average()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # this process's usage, its children's included
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode:
            sys.exit(f"{' '.join(command[:4])} ... failed:\n{err.read()[-3000:]}")
        return {
            "seconds": seconds,
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss * 1024,
            "out": out.read(),
            "load": f"{before} -> {load_average()}",
        }


def json_lines(pool: Path, llava: Path, work: Path) -> list[str]:
    """Both sources' records as JSON Lines (written once, untimed): the floor's input."""
    from svit_data.formats.jsonstream import iter_json_array
    from svit_data.tasks import TASK_FILES

    folder = work / "jsonl"
    sources = [pool / name for name in TASK_FILES.values() if (pool / name).is_file()] + [llava]
    targets = [folder / f"{n:02d}-{source.stem}.jsonl" for n, source in enumerate(sources)]
    if not (folder / "done").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for source, target in zip(sources, targets, strict=True):
            with open(target, "w", encoding="utf-8") as handle:
                for record in iter_json_array(source):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        (folder / "done").write_text("")
    return [str(t) for t in targets]


def linked_copy(source: Path, target: Path) -> None:
    """``target``: a copy of the cache ``source`` made of hard links (the build replaces files whole)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, copy_function=os.link)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pool", type=Path, help="SVIT-scale pool folder (benchmarks/make_scale_pool.py)")
    parser.add_argument("llava", type=Path, help="LLaVA-format file (benchmarks/make_llava_file.py)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/svit-mix-bench"), help="caches and outputs")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    recipe = work / "mix.yaml"
    recipe.write_text(
        f"sources: {{svit: {args.pool.resolve()}, llava: {args.llava.resolve()}}}\n"
        f"select: {{svit: {{method: core, size: {SIZE}}}, llava: {{method: core, size: {SIZE}}}}}\n"
    )
    ready = work / "svit-cache"  # the SVIT pool ingested and matched (untimed, once)
    env = {**os.environ, "SVIT_CACHE": str(ready)}
    subprocess.run([sys.executable, "-c", PREPARE, str(args.pool)], env=env, check=True)
    lines = json_lines(args.pool, args.llava, work)

    floor = measured([sys.executable, "-c", FLOOR, *lines])
    chars = json.loads(floor["out"].strip().splitlines()[-1])["chars"]
    print(
        f"floor (pyarrow JSON Lines read + lowercase, both sources): {floor['seconds']:.1f} s wall, "
        f"{floor['cpu']:.1f} s CPU, {chars / 1e9:.2f} G chars   (load {floor['load']})"
    )
    cache, out = work / "cache", work / "out"
    linked_copy(ready, cache)
    build = [
        *(sys.executable, "-c", BUILD),
        *("--recipe", str(recipe), "--name", "mix", "--out", str(out), "--quiet"),
    ]
    env = {**os.environ, "SVIT_CACHE": str(cache)}
    for side in ("cold", "warm"):
        run = measured(build, env)
        budget = "<= 45 s and <= 4x floor" if side == "cold" else "<= 2 s"
        print(
            f"{side}: {run['seconds']:.1f} s wall = {run['seconds'] / floor['seconds']:.1f}x the floor's "
            f"{floor['seconds']:.1f} s; {run['cpu']:.1f} s CPU; peak RSS {run['rss'] / 1e9:.2f} GB   "
            f"(goal {budget}; load {run['load']})"
        )
        phases = json.loads(run["out"].strip().splitlines()[-1])["phases"]
        for phase, (wall, cpu) in phases.items():  # CPU: the main process's (not the ingest's workers)
            print(f"    {phase:<40} {wall:6.1f} s wall  {cpu:6.1f} s CPU")
    manifest = json.loads((out / "data" / "mix" / "manifest.json").read_text())
    with gzip.open(out / "data" / "mix" / "ids.txt.gz", "rt") as handle:
        ids = handle.read().split()
    print(f"selected: {manifest['counts']['selected_per_source']} ({len(ids):,} ids)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
