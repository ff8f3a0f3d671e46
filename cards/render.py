"""Render the dataset card (YAML metadata + prose) from a folder's build state, never by hand.

``render_card(state)`` is the entry point the build CLI hands to ``DatasetFolder.commit``;
``parse_card`` reads a card back (for ``svit-recipe check`` and ``push``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from svit_data.cards import probes, sections
from svit_data.cards.metadata import default_config, metadata
from svit_data.cards.quality import quality as quality_section
from svit_data.errors import SvitError
from svit_data.state import BuildState

TEMPLATE = "templates/card.md"


def _template() -> str:
    return resources.files("svit_data.cards").joinpath(TEMPLATE).read_text(encoding="utf-8")


def render_card(state: BuildState) -> str:
    """The README.md of a dataset folder: YAML header from the data, then the prose sections.

    The state is normalized as ``svit_build.json`` stores it (sorted keys, plain numbers), so the
    card is a function of that file alone: rebuilding without changes gives the same bytes and a
    push has nothing to upload.
    """
    state = state.normalized()
    header = yaml.safe_dump(metadata(state), sort_keys=False, allow_unicode=True, width=1000)
    body = _template().format(
        intro=sections.intro(state),
        licenses=sections.licenses(state),
        default=default_config(state.configs),
        config_table=sections.config_table(state),
        schema_table=sections.schema_table(state),
        box_example=sections.box_example(),
        recipes=sections.recipes(state),
        provenance=sections.provenance(state),
        probes=probes.probes(state),
        quality=quality_section(state),
    )
    return f"---\n{header}---\n\n{body}"


def parse_card(text: str, *, where: str = "README.md") -> dict[str, Any]:
    """The YAML metadata of a card, or a :class:`SvitError` naming what is wrong with it."""
    if not text.startswith("---\n"):
        raise SvitError(f"{where}: the card has no YAML header (it must start with a '---' line)")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise SvitError(f"{where}: the card's YAML header is not closed by a '---' line")
    try:
        data = yaml.safe_load(text[4:end])
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 2}" if mark is not None else ""
        raise SvitError(f"{where}: the card's YAML header is broken{line}") from None
    if not isinstance(data, dict):
        raise SvitError(f"{where}: the card's YAML header is not a mapping")
    return data
