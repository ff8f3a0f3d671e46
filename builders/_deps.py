"""Optional dependencies of the generate path, imported with a message that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from svit_data.errors import SvitError


class MissingDependencyError(SvitError):
    """A package of the ``build`` extra is not installed."""


def require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"svit-recipe generate needs the package {module.split('.')[0]!r}: pip install svit[build]"
        ) from exc
