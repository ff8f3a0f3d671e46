"""Visual Genome joined with COCO captions on ``coco_id``: the per-image input of the pipeline."""

from __future__ import annotations

from collections.abc import Iterator

from svit_data.builders.annotations import ImageMeta, VisualGenome
from svit_data.builders.serializer import ImageContext, SerializerConfig, serialize
from svit_data.builders.tokens import TokenCounter


def in_shard(image_id: int, index: int, count: int) -> bool:
    """Machine ``index`` of ``count`` owns the images whose id is ``index`` modulo ``count``."""
    return image_id % count == index


class AnnotationSource:
    def __init__(self, vg: VisualGenome, captions: dict[int, list[str]] | None = None):
        self.vg = vg
        self.captions = captions or {}

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
        captions = self.captions.get(image.coco_id, []) if image.coco_id is not None else []
        return serialize(image, captions, self.vg.objects(image), self.vg.regions(image), counter, config)
