"""Compiled passes for the duplicate check of the batch path: repeated QA pairs within a record.

:func:`repeated_pairs` groups the QA pairs of each record by the hashes of their normalized question
and answer (first in pool order heads its group); :func:`same_normalized` then confirms each hit on the
texts themselves: ``" ".join(text.lower().split())`` compared without building it, for ASCII texts.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from svit_data.quality.textscan import WHITESPACE, text_bytes

_MIX = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _repeated_pairs(record, questions, answers):  # pragma: no cover - compiled
    n = len(record)
    head = np.full(n, -1, np.int64)
    longest, at = 0, 0
    while at < n:  # the longest run of one record sizes the table
        end = at
        while end < n and record[end] == record[at]:
            end += 1
        longest = max(longest, end - at)
        at = end
    size = 1
    while size < 2 * longest:
        size *= 2
    mask = np.uint64(size - 1)
    slots = np.empty(size, np.int64)  # the pair heading the group in a slot
    stamp = np.full(size, -1, np.int64)  # a slot is taken in the run that stamped it
    at = 0
    while at < n:
        end = at
        while end < n and record[end] == record[at]:
            end += 1
        for i in range(at, end):
            slot = ((questions[i] * _MIX) ^ answers[i]) * _MIX >> np.uint64(20) & mask
            while stamp[slot] == at:
                first = slots[slot]
                if questions[first] == questions[i] and answers[first] == answers[i]:
                    head[i] = first
                    break
                slot = (slot + np.uint64(1)) & mask
            if head[i] < 0:
                stamp[slot] = at
                slots[slot] = i
        at = end
    return head


def repeated_pairs(record: np.ndarray, questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Per QA pair: the index of the first earlier pair of the same record with the same question and
    answer hashes, or -1. ``record`` must be non-decreasing (the pairs of a record are contiguous)."""
    record = np.asarray(record, np.int64)
    if len(record) and (np.diff(record) < 0).any():
        raise ValueError("records must be non-decreasing")
    return _repeated_pairs(record, np.asarray(questions, np.uint64), np.asarray(answers, np.uint64))


@numba.njit(cache=True, nogil=True)
def _same_normalized(data, offsets, left, right, whitespace):  # pragma: no cover - compiled
    out = np.zeros(len(left), np.bool_)
    for d in range(len(left)):
        i, i_end = offsets[left[d]], offsets[left[d] + 1]
        j, j_end = offsets[right[d]], offsets[right[d] + 1]
        while True:
            while i < i_end and whitespace[data[i]]:
                i += 1
            while j < j_end and whitespace[data[j]]:
                j += 1
            if i == i_end or j == j_end:
                out[d] = i == i_end and j == j_end
                break
            same = True  # one word of each: equal ignoring ASCII case, and ending together
            while i < i_end and j < j_end and not whitespace[data[i]] and not whitespace[data[j]]:
                a, b = data[i], data[j]
                if (a + 32 if 65 <= a <= 90 else a) != (b + 32 if 65 <= b <= 90 else b):
                    same = False
                    break
                i += 1
                j += 1
            if not same or (i < i_end and not whitespace[data[i]]) or (j < j_end and not whitespace[data[j]]):
                break
    return out


def same_normalized(values: pa.Array, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per pair: ``normalize(values[left]) == normalize(values[right])``
    (:func:`svit_data.quality.samples.normalize`), for ASCII texts only."""
    data, offsets = text_bytes(values)
    return _same_normalized(
        data, offsets, np.asarray(left, np.int64), np.asarray(right, np.int64), WHITESPACE
    )
