"""``svit-recipe build pope-*``: where the probes' annotations and images come from.

``--coco-instances FILE... --image-data image_data.json``: COCO categories of SVIT's test images that
have a ``coco_id``; images from ``--images`` (VG files) when given. Without ``--coco-instances`` the
source must be the bundled sample, whose drawn shapes are known exactly.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from svit_data.errors import SvitError
from svit_data.materialize import ConfigRows

if TYPE_CHECKING:
    from svit_data.builders.probe_sources import ProbeSource

log = logging.getLogger(__name__)


def lazy_probe_source(args: argparse.Namespace) -> Callable[[], ProbeSource]:
    """The probe source, read once per build on first use (the three pope configs share it)."""
    from svit_data.builders.probe_sources import coco_source, sample_source

    read: list[ProbeSource] = []

    def source() -> ProbeSource:
        if read:
            return read[0]
        if args.coco_instances:
            if not args.image_data:
                raise SvitError(
                    "--coco-instances needs --image-data: Visual Genome's image_data.json links VG images "
                    "to their coco_id"
                )
            read.append(coco_source(args.coco_instances, args.image_data))
        elif (args.source or ["sample"]) == ["sample"]:
            read.append(sample_source())
        else:
            raise SvitError(
                "pope configs need an exhaustively annotated source: give --coco-instances FILE... and "
                "--image-data image_data.json (or build them from --source sample)"
            )
        if args.images:
            read[0] = with_image_files(read[0], Path(args.images))
        return read[0]

    return source


def with_image_files(source: ProbeSource, images: Path) -> ProbeSource:
    """``source`` naming each image by its path below ``images`` (``<image_id>.<ext>`` in any subfolder,
    as VG splits its images over VG_100K and VG_100K_2)."""
    from svit_data.pool import index_images

    if not images.is_dir():
        raise SvitError(f"image folder {images} does not exist")
    index = index_images(images)
    found = {i: index[i] for i in source.objects if i in index}
    if len(found) < len(source.objects):
        log.warning(
            "%d of %d probe candidate images are not in %s",
            len(source.objects) - len(found),
            len(source.objects),
            images,
        )
    return replace(source, image_files={**source.image_files, **found})


def probe_config_rows(name: str, source: Callable[[], ProbeSource], args: argparse.Namespace) -> ConfigRows:
    from svit_data.builders.probe_configs import probe_rows
    from svit_data.builders.probes import ProbeParams
    from svit_data.sample import sample_dir

    if args.name:
        raise SvitError("--name applies to recipes only")
    if args.probe_images is not None and args.probe_images < 1:
        raise SvitError(f"--probe-images must be at least 1, got {args.probe_images}")
    probes = source()
    if args.images:
        images = Path(args.images)
    else:
        images = sample_dir() / "images" if probes.name == "sample" else None
    params = ProbeParams(
        seed=args.seed if args.seed is not None else 0,
        **({"num_images": args.probe_images} if args.probe_images else {}),
    )
    rows = probe_rows(name, probes, params, images)
    if rows.probe is None or not rows.probe.images:
        raise SvitError(
            f"no test image has {params.min_objects} or more annotated objects: {name} would be empty"
        )
    return rows
