"""Errors a user can cause. Each names the file, the record and the field, in one sentence."""

from __future__ import annotations


class SvitError(Exception):
    """Base class for errors caused by user input; the CLI prints them and exits with code 2."""


class InputError(SvitError):
    """Bad input data, located by file, record index and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: int | str | None = None,
        field: str | None = None,
    ):
        self.file, self.record, self.field = file, record, field
        where = []
        if file is not None:
            where.append(str(file))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
        self.message = message

    def __reduce__(self):
        # keep file, record and field when the error crosses a process boundary (parallel ingest)
        return _rebuild_input_error, (self.message, self.file, self.record, self.field)


def _rebuild_input_error(message: str, file: str | None, record: int | str | None, field: str | None):
    return InputError(message, file=file, record=record, field=field)


class ConfigError(SvitError, ValueError):
    """A configuration value out of range or of the wrong kind, raised where the config is validated
    (``__post_init__``). One convention for every config dataclass; still a ``ValueError`` for callers
    that catch that."""


class BoxError(ValueError):
    """A box that is malformed or outside the 0-1 frame (located by the caller)."""
