"""Recipe benchmark: core-150k on an SVIT-scale pool, cold and warm, against a pyarrow floor.

- **floor**: pyarrow reads the pool's ``conversations``, flattens and lowercases the text: the least any matcher does;
- **cold**: ``select_recipe("core-150k")`` with no cached matrix: match every sample against the bundled
  vocabulary, cache the matrix, select (diversity then balance), manifest and diagnostics;
- **warm**: the same with the matrix cached;
- **warmcli**: the user's second ``svit-recipe build core-150k --source <pool>`` in a new process (imports,
  CLI, pool open with the source files' digests remembered, selection, materializing, parquet, card), by phase;
- **materialize**: reading the selected rows back out of the pool (what the dataset folder then writes);
- **scaling**: diversity (the batched greedy, ``rounds`` mat-vecs) + balance alone (default task quotas)
  on 10%, 30% and 100% of the candidates (size 5% of them), with time / (n log2 n): the selection costs
  O(rounds * nnz + n log n), so it grows about as n log n at a fixed number of rounds;
- **entropy**: concept-mention entropy of core-150k against a random subset of the same size;
- **end to end**: ``svit-recipe build core-150k --source <JSON>`` with an empty cache (ingest, which
  matches concepts as it goes, select, materialize, write, card; the CPU the ingest's processes spent
  matching is printed) against its floor: pyarrow reading the same records as JSON Lines
  (written once, untimed) and lowercasing their text;
- **matching**: ``compute_matrix`` alone, samples per second of wall time and per CPU second (all
  threads, pyarrow's parquet decoding included), and ``match_batch`` alone on the same batches (thread
  CPU time, the read left out);
- **ingest**: ``open_pool`` cold against pyarrow reading the records as JSON Lines (multi-threaded) and
  writing parquet, with the quality gate on and off (``bench_ingest.py``, whose full report it prints);
- **10M**: selection alone (core-150k's size) on a synthetic matrix of ``--synthetic-rows`` rows whose
  concepts are drawn with the pool matrix's per-concept frequencies, loaded from a cached ``.npz``.

Each timed step runs in its own subprocess (peak RSS, ``ru_maxrss``, is its own); ``--steps`` runs only
some (``--steps warm`` reuses the cached pool and matrix). The closing table is issue 13's.

    python benchmarks/make_scale_pool.py --out /tmp/svit-scale       # about 3.0M samples, 4.2M QA
    python benchmarks/bench_recipes.py /tmp/svit-scale --cache /tmp/svit-bench-cache --work /tmp/svit-bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from recipe_builds import bench_ingest, end_to_end, json_lines, run_json, warm_cli

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
start, cpu = time.perf_counter(), time.process_time()
selection = select_recipe("core-150k", pool, progress=False)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
import dataclasses
d = dataclasses.asdict(selection.recipe.diagnostics)
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss": rss(), "selected": len(selection.ids),
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
from svit_data.recipes.pool_rows import candidates_of
from svit_data.recipes.matching import match_pool
from svit_data.recipes.selection import Candidates, select_core
from svit_data.recipes.vocabulary import load_vocabulary
rows, c = candidates_of(match_pool(pool, load_vocabulary(), progress=False))
out = []
for share in (0.1, 0.3, 1.0):
    n = int(c.size * share)
    keep = np.sort(np.random.default_rng(0).permutation(c.size)[:n])
    part = Candidates(c.matrix, c.yes[keep], c.no[keep], c.weights, c.task[keep], rows=c.rows[keep])
    runs = []
    for _ in range(3):  # best of three: the machine may be shared
        start = time.perf_counter()
        select_core(part, max(1, n // 20), seed=0)
        runs.append(time.perf_counter() - start)
    seconds = min(runs)
    out.append({"share": share, "n": n, "seconds": seconds, "per_nlogn_ns": seconds / (n * np.log2(n)) * 1e9})
print(json.dumps({"steps": out, "rss": rss()}))
"""


MATCH = """
from svit_data.recipes.matching import COLUMNS, FormTable, compute_matrix, match_batch
from svit_data.recipes.vocabulary import load_vocabulary
vocabulary = load_vocabulary()
first = next(pool.iter_batches(columns=COLUMNS, batch_size=64))
match_batch(first, FormTable(vocabulary), len(vocabulary.concepts))  # JIT compile (or load) untimed
start, cpu = time.perf_counter(), time.process_time()
matched = compute_matrix(pool, load_vocabulary(), progress=False)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
forms, batches = FormTable(vocabulary), 0.0
for batch in pool.iter_batches(columns=COLUMNS, batch_size=65_536):  # the batch work alone: no parquet read
    start = time.thread_time()
    match_batch(batch, forms, len(vocabulary.concepts))
    batches += time.thread_time() - start
print(json.dumps({"seconds": seconds, "cpu": cpu, "samples": matched.num_rows, "nnz": matched.matrix.nnz,
                  "batch_cpu": batches, "rss": rss()}))
"""

FLOOR_E2E = """
import pyarrow.compute as pc, pyarrow.json as pj
start, cpu = time.perf_counter(), time.process_time()
chars = 0
for path in sys.argv[3:]:
    table = pj.read_json(path)
    content = pc.struct_field(pc.list_flatten(table["conversations"]), "content")
    turns = pc.struct_field(pc.list_flatten(content), "value")
    chars += pc.sum(pc.utf8_length(pc.utf8_lower(turns))).as_py()
    del table
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "chars": chars,
                  "rss": rss()}))
"""

SYNTHETIC = """
import numpy as np, scipy.sparse as sp
from svit_data.recipes.matching import match_pool
from svit_data.recipes.vocabulary import load_vocabulary
real = match_pool(pool, load_vocabulary(), progress=False).matrix
share = np.bincount(real.indices, minlength=real.shape[1]) / real.shape[0]
n, rng = int(sys.argv[3]), np.random.default_rng(0)
per_row = rng.poisson(share.sum(), n)  # concepts per row, drawn by the pool's frequencies, duplicates merged
cdf = np.cumsum(share / share.sum())
indices = np.concatenate([
    np.minimum(np.searchsorted(cdf, rng.random(m)), len(cdf) - 1).astype(np.int32)
    for m in np.diff(np.append(np.arange(0, per_row.sum(), 10_000_000), per_row.sum()))
])
indptr = np.concatenate([[0], np.cumsum(per_row)])
matrix = sp.csr_matrix((np.ones(len(indices), np.uint8), indices, indptr), shape=(n, len(share)))
matrix.sum_duplicates()
matrix.data[:] = 1
sp.save_npz(sys.argv[4], matrix, compressed=False)
print(json.dumps({"nnz": int(matrix.nnz), "rss": rss()}))
"""

SELECT_10M = """
import numpy as np, scipy.sparse as sp
from svit_data.recipes.selection import Candidates, select_core
start = time.perf_counter()
matrix = sp.csr_matrix(sp.load_npz(sys.argv[3]))
n, rng = matrix.shape[0], np.random.default_rng(1)
yes = (rng.random(n) < 0.25).astype(np.int32)
no = (rng.random(n) < 0.07).astype(np.int32)
task = rng.integers(0, 4, n).astype(np.int8)
loaded = time.perf_counter() - start
start = time.perf_counter()
ids, _ = select_core(Candidates(matrix, yes, no, np.ones(matrix.shape[1]), task), 157_712, seed=0)
print(json.dumps({"load": loaded, "seconds": time.perf_counter() - start, "rows": n, "nnz": matrix.nnz,
                  "selected": len(ids), "rss": rss()}))
"""


def side(code: str, source: str, cache: str, *extra: str) -> dict:
    return run_json(PRELUDE + code, [source, cache, *extra], "benchmark step")


STEPS = ("floor", "cold", "warm", "warmcli", "materialize", "scaling", "match", "synthetic", "e2e", "ingest")


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="SVIT-scale pool folder (benchmarks/make_scale_pool.py --out)")
    parser.add_argument("--cache", default="/tmp/svit-bench-cache", help="SVIT_CACHE for the benchmark")
    parser.add_argument("--work", default="/tmp/svit-bench", help="folder for JSON Lines, outputs, matrices")
    parser.add_argument(
        "--synthetic-rows", type=int, default=10_000_000, help="rows of the selection-only synthetic point"
    )
    parser.add_argument(
        "--skip-e2e", action="store_true", help="leave out the end-to-end build and its floor"
    )
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated steps to run, of {','.join(STEPS)} (warm without cold reuses the cached "
        "matrix, computing it untimed when missing)",
    )
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if steps - set(STEPS):
        parser.error(f"unknown steps {sorted(steps - set(STEPS))}; known: {','.join(STEPS)}")
    if args.skip_e2e:
        steps.discard("e2e")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    print("ingesting the pool (cached after the first run; not timed) ...", flush=True)
    side("print(json.dumps({}))", args.source, args.cache)
    if "cold" in steps:
        for folder in (Path(args.cache) / "matrices").glob("*"):
            shutil.rmtree(folder)
    floor = side(FLOOR, args.source, args.cache)  # every ratio needs it
    print(
        f"floor (pyarrow read + lowercase of the text): {floor['seconds']:6.1f} s   {floor['chars'] / 1e9:.2f} G chars"
    )
    rows = []
    if "cold" in steps:
        cold = side(SELECT, args.source, args.cache)
        print(
            f"core-150k cold (match + cache + select):     {cold['seconds']:6.1f} s   {cold['cpu']:.1f} s CPU   "
            f"= {cold['seconds'] / floor['seconds']:.1f}x floor   peak RSS {gb(cold['rss'])}   (load {load_average()})"
        )
        print(
            f"selected {cold['selected']:,} of {cold['samples']:,} samples; yes share "
            f"{cold['yes_no']['before']['yes_share']:.3f} -> {cold['yes_no']['after']['yes_share']:.3f}; "
            f"entropy {cold['entropy']['selected']:.3f} vs random {cold['entropy']['random']:.3f}; "
            f"task mix {cold['task_mix']}"
        )
    if "warm" in steps:
        if "cold" not in steps:
            side(SELECT, args.source, args.cache)  # the matrix cached (computed here if missing), untimed
        warm = side(SELECT, args.source, args.cache)
        print(
            f"core-150k warm (matrix cached):              {warm['seconds']:6.1f} s   {warm['cpu']:.1f} s CPU   "
            f"peak RSS {gb(warm['rss'])}   (load {load_average()})"
        )
    if "warmcli" in steps:
        cli = warm_cli(args.source, args.cache, work)
        print(
            f"warm svit-recipe build core-150k (whole CLI):  {cli['seconds']:6.1f} s   {cli['cpu']:.1f} s CPU   "
            f"peak RSS {gb(cli['rss'])}   (load {load_average()}), where it goes:"
        )
        for phase, (w, c) in cli["phases"].items():
            print(f"  {phase:26s} {w:5.2f} s wall  {c:5.2f} s CPU")
    if "materialize" in steps:
        mat = side(MATERIALIZE, args.source, args.cache)
        print(
            f"materialize {mat['rows']:,} rows from the pool:       {mat['seconds']:6.1f} s   peak RSS {gb(mat['rss'])}"
        )
    if "scaling" in steps:
        scaling = side(SCALING, args.source, args.cache)
        for step in scaling["steps"]:
            print(
                f"selection (diversity + balance) on {step['share']:>4.0%} = {step['n']:>9,} candidates: "
                f"{step['seconds']:6.2f} s   {step['per_nlogn_ns']:.2f} ns per n log2 n"
            )
    if "match" in steps:
        match = side(MATCH, args.source, args.cache)
        print(
            f"concept matching: {match['samples']:,} samples in {match['seconds']:.1f} s wall, {match['cpu']:.1f} s CPU "
            f"({match['samples'] / match['seconds']:,.0f}/s wall, {match['samples'] / match['cpu']:,.0f}/s per CPU second); "
            f"the batches alone (no parquet read) {match['batch_cpu']:.1f} s CPU, "
            f"{match['samples'] / match['batch_cpu']:,.0f}/s per CPU second   (load {load_average()})"
        )
    if "synthetic" in steps:
        synthetic = work / f"synthetic-{args.synthetic_rows}.npz"
        if not synthetic.is_file():
            side(SYNTHETIC, args.source, args.cache, str(args.synthetic_rows), str(synthetic))
        big = side(SELECT_10M, args.source, args.cache, str(synthetic))
        print(
            f"selection only, synthetic {big['rows']:,} x 377 ({big['nnz']:,} entries): load {big['load']:.1f} s, "
            f"select {big['selected']:,} in {big['seconds']:.1f} s, peak RSS {gb(big['rss'])}"
        )
    if "e2e" in steps:
        lines = json_lines(args.source, work)
        floor_e2e = side(FLOOR_E2E, args.source, args.cache, *lines)
        e2e = end_to_end(args.source, work)
        f = floor_e2e["seconds"]
        print(
            f"end-to-end floor (pyarrow JSON Lines read + lowercase): {f:.1f} s wall, {floor_e2e['cpu']:.1f} s CPU; "
            f"cold build {e2e['seconds']:.1f} s wall, {e2e['cpu']:.1f} s CPU (main process) + "
            f"{e2e['workers_cpu']:.1f} s CPU (ingest workers), where it goes (main process):"
        )
        for phase, (w, c) in e2e["phases"].items():
            print(f"  {phase:22s} {w:5.1f} s wall  {c:5.1f} s CPU")
        if e2e["fused"]:
            fused = e2e["fused"]
            print(
                f"concepts matched during ingest: {fused['samples']:,} samples in {fused['cpu']:.1f} s CPU of the "
                f"ingest's processes, {fused['samples'] / fused['cpu']:,.0f}/s per CPU second   (load {load_average()})"
            )
        rows.append(
            (
                "cold end-to-end build core-150k",
                f"{e2e['seconds']:.1f} s",
                "<= 45 s, <= 4x floor",
                f"{e2e['seconds'] / f:.1f}x of {f:.1f} s",
            )
        )
        rows.append(("peak RSS, whole cold build", gb(e2e["rss"]), "<= 2.5 GB", ""))
    ratio = lambda seconds: f"{seconds / floor['seconds']:.1f}x of {floor['seconds']:.1f} s"  # noqa: E731
    if "match" in steps:
        rows.append(
            (
                "concept matching",
                f"{match['samples'] / match['cpu'] / 1e3:.0f}K samples/s/core "
                f"({match['samples'] / match['batch_cpu'] / 1e3:.0f}K without the parquet read)",
                ">= 250K/s/core",
                ratio(match["seconds"]),
            )
        )
    if "warm" in steps:
        rows.append(
            (
                "warm core-150k (matrix cached)",
                f"{warm['seconds']:.1f} s ({warm['cpu']:.1f} s CPU)",
                "<= 2 s",
                ratio(warm["seconds"]),
            )
        )
    if "warmcli" in steps:
        rows.append(
            (
                "warm svit-recipe build core-150k (whole CLI)",
                f"{cli['seconds']:.1f} s ({cli['cpu']:.1f} s CPU)",
                "(report)",
                ratio(cli["seconds"]),
            )
        )
    if "materialize" in steps:
        rows.append(
            (f"materialize {mat['rows']:,} rows", f"{mat['seconds']:.1f} s", "<= 3 s", ratio(mat["seconds"]))
        )
    if "synthetic" in steps:
        rows.append(
            (
                f"selection only, {big['rows'] / 1e6:.0f}M synthetic",
                f"{big['seconds']:.1f} s, {gb(big['rss'])}",
                "(report)",
                "",
            )
        )
    if "ingest" in steps:
        print("ingest against pyarrow (bench_ingest.py):")
        ingest = bench_ingest()
        ingest.report(measured := ingest.compare(Path(args.source), work))
        ours, off, base = (
            measured["svit"]["seconds"],
            measured["svit_off"]["seconds"],
            measured["base"]["seconds"],
        )
        rows.append(
            (
                "ingest (open_pool, cold)",
                f"{base / ours:.2f}x pyarrow ({ours:.1f} s against {base:.1f} s; quality gate off {base / off:.2f}x)",
                ">= 0.9x",
                "",
            )
        )
    print("\n| step | now | goal | ratio to the same run's floor |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("(floor for matching, warm and materialize: pyarrow read + lowercase of the pool's text)")
    print(f"(benchmark wall time {time.perf_counter() - wall:.0f} s, load average {load_average()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
