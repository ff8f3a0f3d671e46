"""Dataset card rendering: the README.md of a dataset folder, rendered from its build state."""

from svit_data.cards.render import parse_card, render_card

__all__ = ["parse_card", "render_card"]
