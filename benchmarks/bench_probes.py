"""Probe build benchmark: ``svit-recipe build pope-*`` from a COCO-2014-sized instances file.

Writes a synthetic instances file shaped like COCO's (80 categories, 1-14 instances per image with
24-number polygons, images list first) and a Visual Genome ``image_data.json`` of 108,077 images
linking the first ``--images`` of them to COCO ids, then times, in new processes: the bare scan of
the file's ``annotations`` and ``categories`` arrays (the baseline: svit's JSON streamer, nothing
else) and the whole build of the three probe configs. Peak RSS is ``ru_maxrss`` of the build.

    python benchmarks/bench_probes.py --work /tmp/svit-probes            # ~200 MB file, ~1-2 min
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

VG_IMAGES = 108_077
SCAN = """
import sys
from svit_data.formats.jsonstream import iter_json_object_arrays
print(sum(1 for _ in iter_json_object_arrays(sys.argv[1], ("annotations", "categories"))))
"""
BUILD = "import sys; from svit_data.cli import main; sys.exit(main(sys.argv[1:]))"


def write_inputs(work: Path, images: int, seed: int) -> tuple[Path, Path, int]:
    rng = random.Random(seed)
    instances, image_data = work / "instances.json", work / "image_data.json"
    annotations = 0
    with open(instances, "w", encoding="utf-8") as out:
        out.write('{"info": {}, "images": [')
        out.write(
            ",".join(
                json.dumps(
                    {"id": i, "width": 640, "height": 480, "file_name": f"COCO_train2014_{i:012d}.jpg"}
                )
                for i in range(1, images + 1)
            )
        )
        out.write('], "annotations": [')
        for i in range(1, images + 1):
            for _ in range(rng.randint(1, 14)):
                annotations += 1
                polygon = [[round(rng.uniform(0, 600), 2) for _ in range(24)]]
                record = {
                    "segmentation": polygon,
                    "area": 100.0,
                    "iscrowd": 0,
                    "image_id": i,
                    "bbox": [1, 2, 30, 40],
                    "category_id": rng.randint(1, 80),
                    "id": annotations,
                }
                out.write(("," if annotations > 1 else "") + json.dumps(record))
        categories = [{"id": k + 1, "name": f"category {k}", "supercategory": "x"} for k in range(80)]
        out.write('], "categories": ' + json.dumps(categories) + "}")
    links = [
        {"image_id": j, "width": 800, "height": 600, "coco_id": j if j <= images else None, "url": ""}
        for j in range(1, VG_IMAGES + 1)
    ]
    image_data.write_text(json.dumps(links))
    return instances, image_data, annotations


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of a child process (CPU is what a shared machine cannot inflate)."""
    start, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, _cpu() - cpu, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the synthetic inputs and the output")
    parser.add_argument("--images", type=int, default=80_000, help="COCO images (default: 80,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    instances, image_data, annotations = write_inputs(work, args.images, args.seed)
    size = instances.stat().st_size / 1e6
    print(f"instances: {size:.0f} MB, {args.images:,} images, {annotations:,} annotations")
    scan, scan_cpu, count = timed([sys.executable, "-c", SCAN, str(instances)])
    out = work / "svit"
    build_args = ["build", "pope-random", "pope-popular", "pope-adversarial", "--out", str(out), "--quiet"]
    build_args += ["--coco-instances", str(instances), "--image-data", str(image_data)]
    build, build_cpu, _ = timed([sys.executable, "-c", BUILD, *build_args])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    state = json.loads((out / "svit_build.json").read_text())
    counts = state["configs"]["pope-adversarial"]["probe_counts"]
    print(
        f"baseline scan of annotations+categories: {scan:.1f} s wall, {scan_cpu:.1f} s CPU ({count} elements)"
    )
    print(
        f"build of 3 pope configs: {build:.1f} s wall, {build_cpu:.1f} s CPU "
        f"({build_cpu / scan_cpu:.2f}x the scan's CPU), peak RSS {rss:.0f} MB"
    )
    print(f"probe counts (adversarial): {counts}")


if __name__ == "__main__":
    main()
