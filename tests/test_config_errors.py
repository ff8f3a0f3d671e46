"""Every configuration dataclass reports a bad value the same way: ConfigError, a SvitError (the CLIs
print it in one sentence and exit 2) that is still a ValueError for callers catching that."""

from __future__ import annotations

import importlib

import pytest

from svit_data.errors import ConfigError, SvitError

CASES = [
    ("svit_data.builders.validators", "ValidationConfig", {"qa_tolerance": -1}, "qa_tolerance"),
    ("svit_data.builders.serializer", "SerializerConfig", {"max_tokens": 1}, "max_tokens"),
    ("svit_data.builders.openai_client", "ClientConfig", {"concurrency": 0}, "concurrency"),
    ("svit_data.builders.pipeline", "GenerateConfig", {"tasks": ("chat",)}, "unknown or no task"),
    (
        "svit_data.recipes.registry",
        "RecipeSpec",
        {"name": "x", "method": "nope", "help": "h"},
        "unknown method",
    ),
    ("svit_data.train.config", "TrainConfig", {"stage": "stage3"}, "stage must be one of"),
]


@pytest.mark.parametrize(("module", "name", "kwargs", "message"), CASES, ids=[c[1] for c in CASES])
def test_config_validation_raises_config_error(module, name, kwargs, message):
    config_class = getattr(importlib.import_module(module), name)
    with pytest.raises(ConfigError, match=message) as caught:
        config_class(**kwargs)
    assert isinstance(caught.value, SvitError) and isinstance(caught.value, ValueError)
