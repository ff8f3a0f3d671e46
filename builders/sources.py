"""Visual Genome joined with COCO captions and instances on ``coco_id``: the per-image input of the pipeline."""

from __future__ import annotations

from collections.abc import Iterator

from svit_data.builders.annotations import Annotation, ImageMeta, VisualGenome
from svit_data.builders.serializer import ImageContext, SerializerConfig, serialize
from svit_data.builders.tokens import TokenCounter


def in_shard(image_id: int, index: int, count: int) -> bool:
    """Machine ``index`` of ``count`` owns the images whose id is ``index`` modulo ``count``."""
    return image_id % count == index


class AnnotationSource:
    def __init__(
        self,
        vg: VisualGenome,
        captions: dict[int, list[str]] | None = None,
        instances: dict[int, list[Annotation]] | None = None,
    ):
        self.vg = vg
        self.captions = captions or {}
        self.instances = instances or {}

    def images(
        self,
        shard_index: int = 0,
        shard_count: int = 1,
        limit: int | None = None,
        image_ids: set[int] | None = None,
    ) -> Iterator[ImageMeta]:
        emitted = 0
        for image in self.vg.images():
            if limit is not None and emitted >= limit:
                return
            if in_shard(image.image_id, shard_index, shard_count) and (
                image_ids is None or image.image_id in image_ids
            ):
                emitted += 1
                yield image

    def context(self, image: ImageMeta, counter: TokenCounter, config: SerializerConfig) -> ImageContext:
        coco_id = image.coco_id
        return serialize(
            image,
            self.captions.get(coco_id, []) if coco_id is not None else [],
            self.vg.objects(image),
            self.vg.regions(image),
            counter,
            config,
            instances=self.instances.get(coco_id, []) if coco_id is not None else [],
            relationships=self.vg.relationships(image),
        )
