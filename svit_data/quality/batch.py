"""The per-sample checks and signals over a whole batch of samples: the ingest hot path.

The rules are :func:`~svit_data.quality.samples.check_sample`'s and
:func:`~svit_data.quality.signals.sample_signals`'s, and only those functions decide a flag. This module
proves most samples clean with column passes (pyarrow compute, numba) and sends only the others through
``check_sample``. A sample is proven clean when every one of these holds (each is implied by the code of
the check it stands for, and tests run both paths on the same records):

- its turns alternate user, gpt (:func:`~svit_data.quality.samples.alternates`) and its conversation's QA
  count is near the quota (:func:`~svit_data.quality.samples.check_quota`, called once per count);
- no turn holds a hint word of :func:`~svit_data.quality.text.text_checks_may_find` (after lowercasing ASCII;
  the two characters that ``str.lower`` turns into ASCII, ``İ`` and the Kelvin sign, count as hints),
  and every answer holds a printable ASCII character (so it is not blank);
- outside referring QA, no turn holds ``[`` (the box checks look for nothing else there);
- in referring QA, every turn either has no ``[`` and as many ``<st>`` as ``<ed>``, or is *canonical*
  (text without ``<`` or ``[`` except whole ``<st>name<ed> [box], [box]`` references whose boxes hold four
  plain numbers in 0-1) with ``x1 < x2`` and ``y1 < y2`` in every box.

Duplicates within an image are found by hashing each turn's normalized text (the rule's ``normalize``;
compiled for ASCII text, in Python otherwise) and grouping the QA pairs of a record; every hit is then
confirmed on the normalized texts themselves. A sample sent to ``check_sample`` that also repeats a pair
is checked again with the record's earlier pairs as ``seen``, so its flags come in the rule's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.quality.base import Finding
from svit_data.quality.referring import count_boxes
from svit_data.quality.samples import QUOTA, check_quota, check_sample, normalize
from svit_data.quality.signals import _BOXES, answer_words
from svit_data.quality.text import _ERROR_HINTS, _SOURCE_HINTS
from svit_data.quality.textscan import normalized_hashes, word_counts
from svit_data.tasks import GPT, REFERRING_QA, USER

_HINT_RE = (
    "|".join(
        "".join(c if c.isalnum() or c in " '" else "\\" + c for c in hint)
        for hint in _ERROR_HINTS + _SOURCE_HINTS
    )
    + "|\u0130|\u212a"
)
_VALUE = r"(?:0(?:\.[0-9]*)?|1(?:\.0*)?|\.[0-9]+)"
_BOX = rf"\[\s*{_VALUE}\s*,\s*{_VALUE}\s*,\s*{_VALUE}\s*,\s*{_VALUE}\s*\]"
CANONICAL = rf"^(?:[^<\[]|<st>[^<\[]*<ed>(?:\s*{_BOX}(?:\s*,\s*{_BOX})*)?)*$"
_PLAIN_ASCII = r"^[\t\n\r\x20-\x7e]*$"  # where RE2's \s and Python's \s agree
_UNICODE_SPACE = "[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"  # str.split() splits there
_MARGIN = 1e-9  # boxes with nearly equal corners go to the exact check


@dataclass
class BatchCheck:
    """Per sample: flags (in the rule's order), the three signals; per turn: the text after repairs.
    ``first`` is the first flagged sample and its first finding (for ``--strict``), or None."""

    values: pa.Array
    flags: list[list[str]]
    answer_words: np.ndarray
    qa_pairs: np.ndarray
    boxes: np.ndarray
    first: tuple[int, Finding] | None


def _np(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False)


def _any_per_sample(turn_mask: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(sample[turn_mask], minlength=n) > 0


def _box_clean(values: pa.Array) -> np.ndarray:
    """Referring-QA turns that the box checks provably leave unflagged and unchanged."""
    clean = _np(pc.equal(pc.count_substring(values, "<st>"), pc.count_substring(values, "<ed>")))
    brackets = _np(pc.count_substring(values, "["))
    has = np.flatnonzero(brackets > 0)
    if not len(has):
        return clean
    texts = values.take(pa.array(has))
    canonical = _np(pc.match_substring_regex(texts, CANONICAL))
    ok = np.zeros(len(has), bool)
    good = np.flatnonzero(canonical)
    if len(good):
        numbers = pc.replace_substring_regex(texts.take(pa.array(good)), r"[^\[]*\[([^\]]*)\][^\[]*", r"\1,")
        parts = pc.utf8_trim_whitespace(pc.split_pattern(numbers, ",").flatten())
        parts = parts.filter(pc.not_equal(parts, ""))
        box = _np(pc.cast(parts, pa.float64())).reshape(-1, 4)
        bad = (box[:, 2] - box[:, 0] < _MARGIN) | (box[:, 3] - box[:, 1] < _MARGIN)
        turn_of_box = np.repeat(np.arange(len(good)), brackets[has[good]])
        ok[good] = np.bincount(turn_of_box[bad], minlength=len(good)) == 0
    clean[has] = ok
    return clean


def _candidates(task: str, values: pa.Array, sample, position, user, gpt, offsets, pairs) -> np.ndarray:
    """Samples that may be flagged or repaired: they go through ``check_sample``."""
    n = len(offsets) - 1
    expected = np.where(position % 2 == 0, user, gpt)
    candidate = _any_per_sample(~expected, sample, n) | (np.diff(offsets) % 2 == 1)
    for count in np.unique(pairs[pairs >= 0]):
        if check_quota(task, int(count)) is not None:
            candidate |= pairs == count
    hinted = _np(pc.match_substring_regex(pc.ascii_lower(values), _HINT_RE))
    blank = gpt & ~_np(pc.match_substring_regex(values, "[!-~]"))
    candidate |= _any_per_sample(hinted | blank, sample, n)
    if task == REFERRING_QA:
        candidate |= _any_per_sample(~_box_clean(values), sample, n)
    else:
        candidate |= _any_per_sample(_np(pc.match_substring(values, "[")), sample, n)
    return candidate


def _turn_hashes(values: pa.Array, ascii_: np.ndarray) -> np.ndarray:
    """The hash of each turn's normalized text."""
    hashes = normalized_hashes(values)
    other = np.flatnonzero(~ascii_)
    if len(other):
        texts = [normalize(v) for v in values.take(pa.array(other)).to_pylist()]
        hashes[other] = normalized_hashes(pa.array(texts, pa.string()))
    return hashes


def _duplicates(values: pa.Array, answers: np.ndarray, hashes: np.ndarray, record: np.ndarray) -> np.ndarray:
    """Answer turns whose (question, answer) pair repeats an earlier pair of the same record."""
    duplicate = np.zeros(len(values), bool)
    if not len(answers):
        return duplicate
    record = record[answers].astype(np.uint64)  # record is per turn
    order = np.lexsort((hashes[answers], hashes[answers - 1], record))  # stable: pool order within a group
    key = np.stack([record, hashes[answers - 1], hashes[answers]], axis=1)[order]
    same = np.zeros(len(order), bool)
    same[1:] = (key[1:] == key[:-1]).all(axis=1)
    head = order[np.maximum.accumulate(np.where(same, 0, np.arange(len(order))))]
    hits = np.flatnonzero(same)
    if not len(hits):
        return duplicate
    turn, first = answers[order[hits]], answers[head[hits]]
    texts = values.take(pa.array(np.concatenate([turn - 1, turn, first - 1, first]))).to_pylist()
    k = len(hits)
    for i in range(k):  # confirm every hash hit on the normalized texts (64-bit hashes may collide)
        if (normalize(texts[i]), normalize(texts[k + i])) != (
            normalize(texts[2 * k + i]),
            normalize(texts[3 * k + i]),
        ):
            raise RuntimeError("normalized-text hash collision in the duplicate check")  # pragma: no cover
    duplicate[turn] = True
    return duplicate


def _signals(values: pa.Array, sample, user, gpt, position, n: int) -> tuple[np.ndarray, ...]:
    """(answer_words, qa_pairs, boxes) per sample, as :func:`~svit_data.quality.signals.sample_signals`."""
    after_user = np.zeros(len(values), bool)
    after_user[1:] = user[:-1]
    qa_pairs = np.bincount(sample, weights=gpt & (position > 0) & after_user, minlength=n)
    ascii_ = _np(pc.string_is_ascii(values))
    brackets = _np(pc.count_substring(values, "["))
    marked = _np(pc.match_substring(values, "<st>"))
    # boxes: canonical text attaches every [..] to a reference; other marked turns go to count_boxes
    turn_boxes = np.zeros(len(values), np.int64)
    at = np.flatnonzero(marked)
    if len(at):
        texts = values.take(pa.array(at))
        canonical = _np(pc.match_substring_regex(texts, CANONICAL))
        turn_boxes[at[canonical]] = brackets[at[canonical]]
        odd = np.flatnonzero(~canonical)
        for i, text in zip(odd, texts.take(pa.array(odd)).to_pylist(), strict=True):
            turn_boxes[at[i]] = count_boxes(text)
    # answer words: compiled counts where str.split() splits only at ASCII whitespace
    words = np.zeros(len(values), np.int64)
    answers = np.flatnonzero(gpt)
    edit = (brackets > 0) | marked | _np(pc.match_substring(values, "<ed>"))
    safe = ascii_.copy()
    if not ascii_[answers].all():
        wide = answers[~ascii_[answers]]
        safe[wide] = ~_np(pc.match_substring_regex(values.take(pa.array(wide)), _UNICODE_SPACE))
    plain = answers[~edit[answers] & safe[answers]]
    words[plain] = word_counts(values.take(pa.array(plain)))
    edited = answers[edit[answers]]
    rest = answers[~edit[answers] & ~safe[answers]]
    if len(edited):
        texts = values.take(pa.array(edited))
        plain_ascii = _np(pc.match_substring_regex(texts, _PLAIN_ASCII))
        stripped = pc.replace_substring_regex(texts.filter(pa.array(plain_ascii)), _BOXES.pattern, "")
        stripped = pc.replace_substring(pc.replace_substring(stripped, "<st>", ""), "<ed>", "")
        words[edited[plain_ascii]] = word_counts(stripped)
        rest = np.concatenate([rest, edited[~plain_ascii]])
    for i, text in zip(rest, values.take(pa.array(rest)).to_pylist(), strict=True):
        words[i] = answer_words(text)
    return (
        np.bincount(sample, weights=words, minlength=n).astype(np.int32),
        qa_pairs.astype(np.int32),
        np.bincount(sample, weights=turn_boxes, minlength=n).astype(np.int32),
    )


def check_batch(
    task: str,
    froms: pa.Array,
    values: pa.Array,
    offsets: np.ndarray,
    record: np.ndarray,
    conversation_pairs: np.ndarray,
    *,
    repair: bool = True,
) -> BatchCheck:
    """Check a batch of samples of one ``task``: sample ``i`` holds turns ``offsets[i]:offsets[i + 1]``
    of ``froms``/``values``; ``record`` numbers each sample's source record (duplicates are looked for
    within a record); ``conversation_pairs`` is the QA count of its conversation, -1 for none (quota)."""
    if QUOTA.get(task) is None:
        raise ValueError(f"unknown task {task!r}")
    offsets = np.asarray(offsets, np.int64)
    n = len(offsets) - 1
    sample = np.repeat(np.arange(n), np.diff(offsets))
    position = np.arange(len(values)) - offsets[sample]
    user, gpt = _np(pc.equal(froms, USER)), _np(pc.equal(froms, GPT))
    candidate = _candidates(task, values, sample, position, user, gpt, offsets, conversation_pairs)

    def run(i: int, speakers: list[str], texts: list[str], seen: set | None):
        pairs = int(conversation_pairs[i])
        return check_sample(
            task, speakers, texts, repair=repair, seen=seen, conversation_pairs=pairs if pairs >= 0 else None
        )

    checked = {}
    changed_turns: list[int] = []
    changed_texts: list[str] = []
    picked = np.flatnonzero(candidate)
    turns = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in picked]) if len(picked) else []
    speakers_all = froms.take(pa.array(turns, pa.int64())).to_pylist()
    texts_all = values.take(pa.array(turns, pa.int64())).to_pylist()
    at = 0
    originals = {}
    for i in picked:
        size = int(offsets[i + 1] - offsets[i])
        speakers, texts = speakers_all[at : at + size], texts_all[at : at + size]
        at += size
        result = run(i, speakers, texts, None)
        checked[i] = result
        originals[i] = (speakers, texts)
        for k, (old, new) in enumerate(zip(texts, result.values, strict=True)):
            if old is not new and old != new:
                changed_turns.append(int(offsets[i]) + k)
                changed_texts.append(new)
    if changed_turns:
        mask = np.zeros(len(values), bool)
        mask[changed_turns] = True
        order = np.argsort(changed_turns)
        values = pc.replace_with_mask(values, pa.array(mask), pa.array([changed_texts[k] for k in order]))

    ascii_ = _np(pc.string_is_ascii(values))
    after_user = np.zeros(len(values), bool)
    after_user[1:] = user[:-1]
    answers = np.flatnonzero(gpt & (position > 0) & after_user)
    duplicate = _duplicates(values, answers, _turn_hashes(values, ascii_), record[sample])
    repeats = _any_per_sample(duplicate, sample, n)

    def with_seen(i: int):
        """check_sample again, with the normalized pairs of the record's earlier samples as ``seen``."""
        earlier = answers[(record[sample[answers]] == record[i]) & (sample[answers] < i)]
        texts = values.take(pa.array(np.concatenate([earlier - 1, earlier]), pa.int64())).to_pylist()
        k = len(earlier)
        seen = {(normalize(texts[j]), normalize(texts[k + j])) for j in range(k)}
        if i in originals:
            return run(i, *originals[i], seen)
        a, b = int(offsets[i]), int(offsets[i + 1])
        return run(i, froms.slice(a, b - a).to_pylist(), values.slice(a, b - a).to_pylist(), seen)

    for i in np.flatnonzero(candidate & repeats):
        checked[i] = with_seen(i)
    flags: list[list[str]] = [[] for _ in range(n)]
    for i in np.flatnonzero(repeats & ~candidate):
        flags[i] = ["duplicate_qa"]
    for i, result in checked.items():
        flags[i] = result.flags
    flagged = [i for i in range(n) if flags[i]] if (repeats.any() or checked) else []
    first = None
    if flagged:
        i = flagged[0]
        result = checked[i] if i in checked else with_seen(i)
        first = (i, result.findings[0])
    return BatchCheck(values, flags, *_signals(values, sample, user, gpt, position, n), first)
