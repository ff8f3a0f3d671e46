"""The settings of a generate run: tasks, model, sharding, chunking, re-asks, images and ``--select``.

CLI flags are generated from these fields (svit_data/cli/generate.py); the resolved config is written
into the run's summary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from svit_data.builders.serializer import SerializerConfig
from svit_data.builders.validators import ValidationConfig
from svit_data.builders.vision import DETAILS
from svit_data.errors import ConfigError
from svit_data.tasks import TASKS


@dataclass(frozen=True)
class GenerateConfig:
    tasks: tuple[str, ...] = field(
        default=TASKS, metadata={"help": "comma-separated SVIT tasks to generate", "sep": ","}
    )
    model: str = field(default="gpt-4o", metadata={"help": "model name sent to the API"})
    max_tokens: int = field(default=2048, metadata={"help": "max output tokens per request"})
    temperature: float | None = field(
        default=0.7, metadata={"help": "sampling temperature (part of the cache key)"}
    )
    seed: int = field(default=0, metadata={"help": "seed for drawing detail-description questions"})
    shard_index: int = field(default=0, metadata={"help": "this machine's shard (--shard i/N)"})
    shard_count: int = field(default=1, metadata={"help": "number of machines (--shard i/N)"})
    chunk_size: int = field(default=100, metadata={"help": "images per output shard"})
    limit: int | None = field(default=None, metadata={"help": "process at most this many images"})
    reask: int = field(
        default=0, metadata={"help": "re-ask a rejected reply this many times, reason appended"}
    )
    context: SerializerConfig = field(
        default_factory=SerializerConfig, metadata={"help": "context serializer"}
    )
    validation: ValidationConfig = field(default_factory=ValidationConfig, metadata={"help": "validators"})
    send_image: str | None = field(
        default=None,
        metadata={
            "help": "send the image too, as an image_url part with this OpenAI detail: low, high or auto "
            "(vision teachers; needs --images)"
        },
    )
    images: str | None = field(
        default=None, metadata={"help": "image folder: <image_id>.jpg anywhere below it (for --send-image)"}
    )
    image_tokens: int | None = field(
        default=None,
        metadata={"help": "input tokens per image instead of OpenAI's GPT-4o rule (e.g. for vLLM servers)"},
    )

    select: int | None = field(
        default=None,
        metadata={
            "help": "choose this many images before generating, by concept coverage of their annotation "
            "text (the recipes' diversity objective; deterministic with --seed)"
        },
    )
    select_vocabulary: str | None = field(
        default=None, metadata={"help": "concept vocabulary JSON for --select (default: the bundled one)"}
    )

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ConfigError(f"unknown or no task(s) {unknown}; known: {', '.join(TASKS)}")
        if not 0 <= self.shard_index < self.shard_count:
            raise ConfigError(f"shard must be i/N with 0 <= i < N, got {self.shard_index}/{self.shard_count}")
        if self.chunk_size < 1 or self.max_tokens < 1 or self.reask < 0:
            raise ConfigError("chunk_size and max_tokens must be >= 1, reask >= 0")
        if self.send_image is not None and self.send_image not in DETAILS:
            raise ConfigError(f"send_image must be one of {', '.join(DETAILS)}, got {self.send_image!r}")
        if self.send_image is not None and not self.images:
            raise ConfigError("--send-image needs --images (the folder holding <image_id>.jpg files)")
        if self.select is not None and self.select < 1:
            raise ConfigError(f"select must be >= 1, got {self.select}")
        if self.image_tokens is not None and self.image_tokens < 0:
            raise ConfigError(f"image_tokens must be >= 0, got {self.image_tokens}")

    def to_dict(self) -> dict:
        return asdict(self)
