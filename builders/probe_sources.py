"""Where probe annotations come from: COCO instances joined to Visual Genome, or the bundled sample.

Both give, per Visual Genome image of SVIT's test list, the objects present from an exhaustively
annotated vocabulary: COCO's categories (every instance of the 80 categories is annotated; crowd
annotations count as present, so a negative is never something the annotators saw) or the sample's
drawn things (known exactly). Visual Genome's own object names are open-vocabulary and incomplete, so
they never serve as negatives; svit does not use them for probes at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from svit_data.errors import InputError
from svit_data.formats.jsonstream import iter_json_array, iter_json_object_arrays
from svit_data.splits import test_image_ids

COCO, SAMPLE = "coco-instances", "sample"


@dataclass
class ProbeSource:
    """Objects present per VG image (test images only), the vocabulary, and how to find each image."""

    name: str
    objects: dict[int, set[str]]
    vocabulary: tuple[str, ...]
    image_files: dict[int, str] = field(default_factory=dict)
    coco_ids: dict[int, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # annotation file names, for the card


def _int(item: object, key: str, path: Path, record: int, *, optional: bool = False) -> int | None:
    value = item.get(key) if isinstance(item, dict) else None
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number, got {value!r}", file=str(path), record=record, field=key)
    return int(value)


def read_coco_links(image_data: str | Path) -> tuple[dict[int, int], dict[int, str]]:
    """From VG ``image_data.json``: ``coco_id -> vg id`` and ``vg id -> image file name``."""
    path = Path(image_data)
    if not path.is_file():
        raise InputError("Visual Genome image_data.json not found", file=str(path))
    to_vg: dict[int, int] = {}
    files: dict[int, str] = {}
    for record, item in enumerate(iter_json_array(path)):
        key = "image_id" if isinstance(item, dict) and "image_id" in item else "id"
        vg_id = _int(item, key, path, record)
        coco_id = _int(item, "coco_id", path, record, optional=True)
        url = item.get("url") or ""
        files[vg_id] = url.rsplit("/", 1)[-1] if url else f"{vg_id}.jpg"
        if coco_id:
            to_vg[coco_id] = vg_id
    return to_vg, files


def read_coco_categories(
    instances: Sequence[str | Path], keep: set[int] | None = None
) -> tuple[dict[int, set[str]], tuple[str, ...]]:
    """``coco_id -> category names present`` (images in ``keep``) and the sorted category vocabulary."""
    present: dict[int, set[str]] = defaultdict(set)
    vocabulary: set[str] = set()
    for file in instances:
        path = Path(file)
        if not path.is_file():
            raise InputError("COCO instances file not found", file=str(path))
        names: dict[int, str] = {}
        category_ids: dict[int, set[int]] = defaultdict(set)
        records = {"annotations": -1, "categories": -1}
        for key, item in iter_json_object_arrays(path, ("annotations", "categories")):
            records[key] += 1
            if key == "categories":
                category = _int(item, "id", path, records[key])
                name = item.get("name")
                if not isinstance(name, str) or not name.strip():
                    raise InputError(
                        "category without a name", file=str(path), record=records[key], field="name"
                    )
                names[category] = " ".join(name.split())
                continue
            image_id = _int(item, "image_id", path, records[key])
            if keep is None or image_id in keep:
                category_ids[image_id].add(_int(item, "category_id", path, records[key]))
        for image_id, ids in category_ids.items():
            unknown = sorted(ids - names.keys())
            if unknown:
                raise InputError(
                    f"an annotation of image {image_id} names category {unknown[0]}, which 'categories' lacks",
                    file=str(path),
                    field="category_id",
                )
            present[image_id] |= {names[i] for i in ids}
        vocabulary |= set(names.values())
    return dict(present), tuple(sorted(vocabulary))


def coco_source(instances: Sequence[str | Path], image_data: str | Path) -> ProbeSource:
    """COCO categories of the VG test images that have a ``coco_id``."""
    to_vg, files = read_coco_links(image_data)
    tests = test_image_ids()
    links = {coco: vg for coco, vg in to_vg.items() if vg in tests}
    present, vocabulary = read_coco_categories(instances, keep=set(links))
    objects = {links[coco]: names for coco, names in present.items()}
    return ProbeSource(
        name=COCO,
        objects=objects,
        vocabulary=vocabulary,
        image_files={vg: files[vg] for vg in objects},
        coco_ids={vg: coco for coco, vg in links.items() if vg in objects},
        files=[Path(f).name for f in [*instances, image_data]],
    )


def sample_source() -> ProbeSource:
    """The drawn things of the bundled sample's test images (its scenes are regenerated exactly)."""
    from svit_data.sample import SAMPLE_IMAGES, THINGS, generate_records

    tests = test_image_ids()
    objects = {
        image_id: {thing.name for thing in things}
        for image_id, _, _, _, things, _ in generate_records(SAMPLE_IMAGES)
        if image_id in tests
    }
    return ProbeSource(
        name=SAMPLE,
        objects=objects,
        vocabulary=tuple(sorted({*THINGS, "sign"})),
        image_files={image_id: f"{image_id}.png" for image_id in objects},
    )
