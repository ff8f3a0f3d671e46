"""The recipe benchmark's CLI builds (``bench_recipes.py`` steps ``e2e`` and ``warmcli``): the user's first
``svit-recipe build core-150k --source <JSON>`` on an empty cache and the second one with everything cached,
each in a new process with its phases timed (:mod:`phase_timer`), and the end-to-end floor's JSON Lines input."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from phase_timer import TIMED


def run_json(code: str, args: list[str], what: str, env: dict | None = None) -> dict:
    """Run ``code`` in a new Python process (``args`` as its argv); its last line of output is JSON."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode:
        sys.exit(f"{what} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


E2E = (
    TIMED
    + """
start, cpu = time.perf_counter(), time.process_time()
from svit_data.cli import main
import svit_data.cli.build, svit_data.folder, svit_data.pool, svit_data.recipes  # what the build imports
phases["imports"] = (time.perf_counter() - start, time.process_time() - cpu)
timed(svit_data.pool, "_ingest", "ingest")
timed(svit_data.recipes, "build_recipe", "match + select")
timed(svit_data.folder.DatasetFolder, "write_config", "write config + card")
fused = {}
try:  # concepts matched during ingest (absent before it): the CPU the ingest's processes spent on it
    from svit_data.recipes.match_at_ingest import MatchAtIngest
except ImportError:
    pass
else:
    def counted(inner):
        def finish(self, parts, pool):
            fused["cpu"] = sum(part.cpu for _, part in parts)
            fused["samples"] = sum(part.result.matrix.shape[0] for _, part in parts)
            return inner(self, parts, pool)
        return finish
    MatchAtIngest.finish = counted(MatchAtIngest.finish)
    timed(MatchAtIngest, "finish", "stack + save matrix")
code = main(["build", "core-150k", "--source", sys.argv[1], "--out", sys.argv[2], "--quiet"])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
phases["rest"] = (seconds - sum(w for w, _ in phases.values()), cpu - sum(c for _, c in phases.values()))
own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"code": code, "seconds": seconds, "cpu": cpu, "phases": phases, "fused": fused,
                  "workers_cpu": children.ru_utime + children.ru_stime,
                  "rss": max(own.ru_maxrss, children.ru_maxrss) * 1024}))
"""
)


WARM_CLI = (
    TIMED
    + """
start, cpu = time.perf_counter(), time.process_time()
from svit_data.cli import main
import svit_data.cli.build, svit_data.folder, svit_data.recipes.build as build  # what the build imports
phases["imports"] = (time.perf_counter() - start, time.process_time() - cpu)
timed(svit_data.cli.build, "open_sources", "open pool (fingerprint)")
timed(build, "select_recipe", "select_recipe")
timed(build, "write_manifest", "manifest + ids (cache)")
timed(build, "check_ids", "check ids")
timed(svit_data.folder.DatasetFolder, "write_config", "materialize + parquet")
timed(svit_data.folder.DatasetFolder, "commit", "card + swap")
code = main(["build", "core-150k", "--source", sys.argv[1], "--out", sys.argv[2], "--quiet"])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
phases["rest"] = (seconds - sum(w for w, _ in phases.values()), cpu - sum(c for _, c in phases.values()))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"code": code, "seconds": seconds, "cpu": cpu, "phases": phases, "rss": rss}))
"""
)


def warm_cli(source: str, cache: str, work: Path) -> dict:
    """The user's second ``svit-recipe build core-150k`` (pool, matrix and source digests cached), in a new
    process: imports, CLI, pool open, selection, materializing, parquet, card; the first build is untimed."""
    out = work / "warm-out"
    env = {**os.environ, "SVIT_CACHE": cache}
    run_json(WARM_CLI, [source, str(out)], "warm CLI build", env)  # the first build, untimed
    return run_json(WARM_CLI, [source, str(out)], "warm CLI build", env)


def end_to_end(source: str, work: Path) -> dict:
    """The user's first build: an empty SVIT_CACHE, in a new process."""
    cache, out = work / "e2e-cache", work / "e2e-out"
    for folder in (cache, out):
        shutil.rmtree(folder, ignore_errors=True)
    env = {**os.environ, "SVIT_CACHE": str(cache)}
    return run_json(E2E, [source, str(out)], "end-to-end build", env)


def bench_ingest():
    """The module ``bench_ingest.py`` (a script beside this one, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", Path(__file__).with_name("bench_ingest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_lines(source: str, work: Path) -> list[str]:
    """The task files' records as JSON Lines (written once, not timed): the end-to-end floor's input."""
    folder = work / "jsonl"
    if not (folder / "done").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        bench_ingest().to_json_lines(Path(source), folder)
        (folder / "done").write_text("")
    return sorted(str(p) for p in folder.glob("*.jsonl"))
