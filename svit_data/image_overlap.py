"""How many images two sources of a pool share: the card's image overlap table.

Every sample's images get one key. SVIT samples: their Visual Genome id. Third-party samples: their image
file names (``image_file``, or every name of a multi-image ``images`` list), read as
:func:`svit_data.decontam.image_of_file` does: COCO file names (``coco/train2017/000000123456.jpg``,
``COCO_val2014_...``) give a COCO id, ``<id>.jpg`` under a ``vg/``, ``VG_100K``, or ``gqa/`` folder gives a
Visual Genome id (GQA's images are Visual Genome's), and any other name keys by its lower-cased path
(not its base name alone: ScienceQA names every image ``image.png`` in its own folder).
With Visual Genome's ``image_data.json`` (its ``coco_id``), a COCO id of a VG image becomes that VG id, so
SVIT's images (VG ids, part of them COCO images) and LLaVA-Instruct's (COCO train2017 names) meet. Two
sources share an image when a key is in both. The counts are cached per pool fingerprint and set of COCO
links (``pools/<fingerprint>-overlap-<links hash>.json``): a warm build does not read every image name.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data import paths
from svit_data.atomic import write_text
from svit_data.decontam import image_of_file
from svit_data.pool import Pool

Key = tuple[str, Any]


def file_key(name: str, coco_to_vg: dict[int, int]) -> Key:
    """The image key of one file name (see the module docstring)."""
    found = image_of_file(name)
    if found is None:
        return "file", name.strip().lower()
    kind, number = found
    if kind == "coco" and number in coco_to_vg:
        return "vg", coco_to_vg[number]
    return kind, number


def _names(batch: pa.RecordBatch, rows: pa.Array) -> list[str]:
    files = pc.filter(batch.column("image_file"), rows)
    images = pc.list_flatten(pc.filter(batch.column("images"), rows))
    return pc.unique(pa.concat_arrays([files.drop_null(), images.drop_null()])).to_pylist()


def source_images(pool: Pool, coco_to_vg: dict[int, int]) -> dict[str, set[Key]]:
    """The image keys of every source of ``pool``."""
    keys: dict[str, set[Key]] = defaultdict(set)
    for batch in pool.iter_batches(columns=["source", "image_id", "image_file", "images"]):
        for name in pc.unique(batch.column("source")).to_pylist():
            mine = pc.equal(batch.column("source"), name)
            vg = pc.filter(batch.column("image_id"), mine).drop_null()
            keys[name].update(("vg", i) for i in pc.unique(vg).to_pylist())
            third = pc.and_(mine, pc.is_null(batch.column("image_id")))
            keys[name].update(file_key(n, coco_to_vg) for n in _names(batch, third))
    return dict(keys)


def image_data_beside(pool: Pool) -> Path | None:
    """The ``image_data.json`` next to the pool's SVIT task files (the release keeps one there), if any."""
    for files in pool.task_files.values():
        for file in files:
            beside = Path(file).parent / "image_data.json"
            if beside.is_file():
                return beside
    return None


def image_overlap(
    pool: Pool, coco_to_vg: dict[int, int] | None = None, image_data: str | Path | None = None
) -> dict[str, Any] | None:
    """Distinct images per source and the images each pair of sources shares (None: one source only);
    ``coco_to_vg``: the ``coco_id`` links of Visual Genome's ``image_data.json`` (the file ``image_data``)."""
    if len(pool.source_counts) < 2:
        return None
    coco_to_vg = coco_to_vg or {}
    links = np.array(sorted(coco_to_vg.items()), np.int64).tobytes()
    digest = hashlib.sha1(links, usedforsecurity=False).hexdigest()[:12]
    cached = paths.cache_dir() / "pools" / f"{pool.fingerprint}-overlap-{digest}.json"
    if cached.is_file():
        counts = json.loads(cached.read_text())
    else:
        keys = source_images(pool, coco_to_vg)
        names = [n for n in pool.source_counts if n in keys]
        counts = {
            "images": {n: len(keys[n]) for n in names},
            "shared": [[a, b, len(keys[a] & keys[b])] for a, b in combinations(names, 2)],
        }
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text(cached, json.dumps(counts))
    image_data = Path(image_data).name if image_data is not None else None
    return {"image_data": image_data, "coco_links": len(coco_to_vg), **counts}
