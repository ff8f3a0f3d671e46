"""The columns of one ingest batch, gathered two ways and joined before the checks.

:class:`FastColumns` are the arrays the compiled reader fills (:mod:`svit_data.formats.svitscan`): no
Python object per record, turn or text. :class:`Columns` are lists that :func:`add_record` fills from a
record the standard library decoded (a record outside the compiled shape, or the rest of a file whose
JSON the compiled reader left to the standard library's located errors). A batch is a run of such
segments in file order (:class:`Batch`); :meth:`Batch.take` joins them into one :class:`Part`, the arrays
the quality checks and the parquet table are made from. Both ways give the same arrays for the same
records (tests/svit_data/test_svitscan.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.formats import svitscan
from svit_data.tasks import GPT, USER

_SPEAKERS = pa.array(svitscan.SPEAKERS, pa.string())
_ALTERNATION = [USER, GPT] * 64
assert svitscan.SPEAKERS == (USER, GPT)


@dataclass
class Part:
    """Per turn: speakers and texts; per sample (``n``): its turns ``turn_offsets[i]:turn_offsets[i + 1]``,
    record index, QA count of its conversation (-1 for none), conversation index and first turn in it,
    id, image id, image file, width, height and provenance (None when no sample has one)."""

    froms: pa.Array
    values: pa.Array
    turn_offsets: np.ndarray
    records: np.ndarray
    pairs: np.ndarray
    conversations: np.ndarray
    first_turns: np.ndarray
    ids: pa.Array
    image_ids: np.ndarray
    image_files: pa.Array
    widths: pa.Array
    heights: pa.Array
    provenance: list | None

    def __len__(self) -> int:
        return len(self.records)


def join(parts: list[Part]) -> Part:
    """One part holding ``parts`` in order (turn offsets renumbered)."""
    if len(parts) == 1:
        return parts[0]
    starts = np.cumsum([0] + [len(p.froms) for p in parts])
    offsets = [np.zeros(1, np.int64)] + [p.turn_offsets[1:] + s for p, s in zip(parts, starts, strict=False)]
    provenance = None
    if any(p.provenance is not None for p in parts):
        provenance = [x for p in parts for x in (p.provenance or [None] * len(p))]

    def arrays(name: str) -> pa.Array:
        return pa.concat_arrays([getattr(p, name) for p in parts])

    def numbers(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return Part(
        arrays("froms"),
        arrays("values"),
        np.concatenate(offsets),
        numbers("records"),
        numbers("pairs"),
        numbers("conversations"),
        numbers("first_turns"),
        arrays("ids"),
        numbers("image_ids"),
        arrays("image_files"),
        arrays("widths"),
        arrays("heights"),
        provenance,
    )


class Columns:
    """One batch segment as lists, filled by :func:`add_record`."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.image_ids: list[int] = []
        self.conversation_index: list[int] = []
        self.offsets: list[int] = [0]
        self.froms: list[str] = []
        self.values: list[str] = []
        self.image_files: list[str] = []
        self.widths: list[int | None] = []
        self.heights: list[int | None] = []
        self.provenance: list[dict | None] = []
        self.records: list[int] = []  # per sample: the record's index in the file
        self.pairs: list[int] = []  # per sample: its conversation's QA count for the quota, -1 for none
        self.first_turns: list[int] = []  # per sample: its first turn in its conversation

    def __len__(self) -> int:
        return len(self.ids)

    def truncate(self) -> None:
        """Drop the samples of a record that was not appended whole."""
        n = len(self.records)
        del self.froms[self.offsets[n] :], self.values[self.offsets[n] :], self.offsets[n + 1 :]
        del self.ids[n:], self.conversation_index[n:], self.first_turns[n:], self.pairs[n:]

    def part(self) -> Part:
        return Part(
            pa.array(self.froms, pa.string()),
            pa.array(self.values, pa.string()),
            np.array(self.offsets, np.int64),
            np.array(self.records, np.int64),
            np.array(self.pairs, np.int64),
            np.array(self.conversation_index, np.int64),
            np.array(self.first_turns, np.int64),
            pa.array(self.ids, pa.string()),
            np.array(self.image_ids, np.int64),
            pa.array(self.image_files, pa.string()),
            pa.array(self.widths, pa.int32()),
            pa.array(self.heights, pa.int32()),
            self.provenance if any(p is not None for p in self.provenance) else None,
        )


class FastColumns:
    """One batch segment as the arrays :func:`svitscan.parse_records` fills (grown when it says so)."""

    def __init__(self, samples: int, turns: int, text_bytes: int) -> None:
        self.state = np.zeros(3, np.int64)
        self.codes = np.empty(turns, np.int8)
        self.ends = np.empty(turns, np.int64)
        self.text = np.empty(text_bytes, np.uint8)
        self.samples = [np.empty(samples, np.int64) for _ in range(9)]

    def __len__(self) -> int:
        return int(self.state[svitscan.SAMPLES])

    @property
    def out(self) -> tuple:
        s_end, s_conv, s_pairs, s_first, s_k = self.samples[:5]
        return self.codes, self.ends, self.text, s_end, s_conv, s_pairs, s_first, s_k

    @property
    def rows(self) -> tuple:
        return tuple(self.samples[5:])

    def grow(self) -> None:
        """Double every array (the reader stopped at a record that did not fit)."""

        def bigger(array: np.ndarray) -> np.ndarray:
            new = np.empty(2 * len(array), array.dtype)
            new[: len(array)] = array
            return new

        self.codes, self.ends, self.text = bigger(self.codes), bigger(self.ends), bigger(self.text)
        self.samples = [bigger(a) for a in self.samples]

    def part(self, task: str, image_index: dict[int, str]) -> Part:
        turns, size, n = (int(x) for x in self.state)
        if size >= 1 << 31:
            raise ValueError(
                f"one ingest batch holds {size:,} bytes of text, over arrow's 2 GiB string limit"
            )
        offsets = np.zeros(turns + 1, np.int32)
        offsets[1:] = self.ends[:turns]
        values = pa.StringArray.from_buffers(turns, pa.py_buffer(offsets), pa.py_buffer(self.text[:size]))
        s_end, s_conv, s_pairs, s_first, s_k, s_rec, s_img, s_width, s_height = (a[:n] for a in self.samples)
        image_text = pa.array(s_img).cast(pa.string())
        if image_index:
            unique, inverse = np.unique(s_img, return_inverse=True)
            names = [image_index.get(i) or f"{i}.jpg" for i in unique.tolist()]
            image_files = pa.array(names, pa.string()).take(pa.array(inverse))
        else:
            image_files = pc.binary_join_element_wise(image_text, ".jpg", "")
        return Part(
            _SPEAKERS.take(pa.array(self.codes[:turns])),
            values,
            np.concatenate([np.zeros(1, np.int64), s_end]),
            s_rec,
            s_pairs,
            s_conv,
            s_first,
            pc.binary_join_element_wise(task, image_text, pa.array(s_k).cast(pa.string()), "/"),
            s_img,
            image_files,
            pa.array(s_width, pa.int32(), mask=s_width == svitscan.NONE),
            pa.array(s_height, pa.int32(), mask=s_height == svitscan.NONE),
            None,
        )


class Batch:
    """The segments of one batch in file order; the one being filled is :attr:`current`."""

    def __init__(self, task: str, image_index: dict[int, str], sizes: tuple[int, int, int]) -> None:
        self.task, self.image_index, self.sizes = task, image_index, sizes
        self.parts: list[Part] = []
        self.current: Columns | FastColumns | None = None

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts) + (len(self.current) if self.current is not None else 0)

    def _close(self) -> None:
        if self.current is not None and len(self.current):
            if isinstance(self.current, FastColumns):
                self.parts.append(self.current.part(self.task, self.image_index))
                used = self.current.state
                self.sizes = (
                    max(self.sizes[0], int(used[2]) * 9 // 8),
                    max(self.sizes[1], int(used[0]) * 9 // 8),
                    max(self.sizes[2], int(used[1]) * 9 // 8),
                )
            else:
                self.parts.append(self.current.part())
        self.current = None

    def columns(self) -> Columns:
        """The list segment to append decoded records to."""
        if not isinstance(self.current, Columns):
            self._close()
            self.current = Columns()
        return self.current

    def fast(self) -> FastColumns:
        """The array segment for the compiled reader."""
        if not isinstance(self.current, FastColumns):
            self._close()
            self.current = FastColumns(*self.sizes)
        return self.current

    def joined(self) -> Part:
        """Every segment so far as one part (kept: more records may follow)."""
        self._close()
        self.parts = [join(self.parts)] if self.parts else []
        return self.parts[0] if self.parts else Columns().part()

    def take(self) -> Part:
        """Every segment as one part; the batch starts empty again."""
        part = self.joined()
        self.parts = []
        return part


def _alternation(turns: int) -> list[str]:
    """user, gpt, user, ... ``turns`` long (even): the turns of a conversation of QA pairs
    (:func:`svit_data.quality.samples.alternates`)."""
    return _ALTERNATION[:turns] if turns <= len(_ALTERNATION) else [USER, GPT] * (turns // 2)


class Invalid(Exception):
    """Not an SVIT record; the checked path says exactly where."""


def add_record(
    cols: Columns,
    record: Any,
    index: int,
    task: str,
    per_qa: bool,
    sizes: dict[int, tuple[int, int]],
    image_index: dict[int, str],
) -> int:
    """Append the samples of record ``index`` to ``cols`` (checked later, per batch); raise if not SVIT."""
    image_id = record["image_id"]
    conversations = record["conversations"]
    if type(image_id) is not int or type(conversations) is not list:
        raise Invalid
    width, height = record.get("width"), record.get("height")
    if width is None and image_id in sizes:
        width, height = sizes[image_id]
    image_file = record.get("image_file") or image_index.get(image_id) or f"{image_id}.jpg"
    provenance = record.get("provenance")
    prefix = f"{task}/{image_id}/"
    n = 0
    for c, conversation in enumerate(conversations):
        content = conversation["content"]
        if type(content) is not list:
            raise Invalid
        speakers = [turn["from"] for turn in content]
        values = [turn["value"] for turn in content]
        "".join(speakers), "".join(values)  # noqa: B018 - a TypeError unless every one is a string
        turns, first = len(speakers), len(cols.froms)
        cols.froms += speakers
        cols.values += values
        if per_qa and turns % 2 == 0 and speakers == _alternation(turns):  # one sample per QA pair
            count = pairs = turns // 2
            cols.offsets += range(first + 2, first + turns + 1, 2)
            cols.first_turns += range(0, turns, 2)
        else:  # the whole conversation is one sample (flagged turn_order if it should have been pairs)
            count, pairs = 1, -1 if per_qa else turns // 2
            cols.offsets.append(first + turns)
            cols.first_turns.append(0)
        cols.ids += [f"{prefix}{k}" for k in range(n, n + count)]
        cols.conversation_index += [c] * count
        cols.pairs += [pairs] * count
        n += count
    cols.records += [index] * n
    cols.image_ids += [image_id] * n
    cols.image_files += [image_file] * n
    cols.widths += [width] * n
    cols.heights += [height] * n
    cols.provenance += [provenance] * n
    return n
