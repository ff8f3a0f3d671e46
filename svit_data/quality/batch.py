"""The per-sample checks and signals over a whole batch of samples: the ingest hot path.

The rules are :func:`~svit_data.quality.samples.check_sample`'s and
:func:`~svit_data.quality.signals.sample_signals`'s, and only those functions decide a flag. This module
proves most samples clean with column passes (pyarrow compute, numba) and sends only the others through
``check_sample``. A sample is proven clean when every one of these holds (each is implied by the code of
the check it stands for, and tests run both paths on the same records):

- its turns alternate user, gpt (:func:`~svit_data.quality.samples.alternates`) and its conversation's QA
  count is near the quota (:func:`~svit_data.quality.samples.check_quota`, called once per count);
- every answer holds an ASCII character from ``!`` to DEL (one ``str.strip`` keeps, so it is not blank),
  and no QA pair holds a hint word of :func:`~svit_data.quality.text.text_checks_may_find` (matched
  ignoring ASCII case by the turn scan; the two characters that ``str.lower`` turns into ASCII, ``İ`` and
  the Kelvin sign, count as hints) unless the pair is plain ASCII (no control character other than tab
  and newlines, where RE2 and ``re`` read the patterns the same way) and the text checks' own patterns,
  run by RE2 as the checks run them, find nothing;
- outside referring QA, no turn holds ``[`` (the box checks look for nothing else there; a caller that
  drops ``leaked_coordinates``, their only finding there, skips this condition);
- in referring QA, every turn either has no ``[`` and as many ``<st>`` as ``<ed>``, or is *canonical*
  (text without ``<`` or ``[`` except whole ``<st>name<ed> [box], [box]`` references whose boxes hold four
  plain numbers in 0-1) with ``x1 < x2`` and ``y1 < y2`` in every box.

Duplicates within an image are found by hashing each turn's normalized text (the rule's ``normalize``;
compiled for ASCII text, in Python otherwise) and grouping the QA pairs of a record; every hit is then
confirmed on the normalized texts themselves (:mod:`~svit_data.quality.textpairs`). A sample sent to ``check_sample`` that also repeats a pair
is checked again with the record's earlier pairs as ``seen``, so its flags come in the rule's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.quality.base import Finding
from svit_data.quality.boxscan import canonical_texts, marked_answer_words
from svit_data.quality.referring import count_boxes
from svit_data.quality.samples import check_quota, check_sample, normalize
from svit_data.quality.signals import BOXES, answer_words
from svit_data.quality.text import BOX_WORDS, ERROR_REPLY, MARKED, SOURCE_MENTION
from svit_data.quality.textpairs import repeated_pairs, same_normalized
from svit_data.quality.textscan import (
    TurnScan,
    normalized_hashes,
    scan,
    word_counts,
)
from svit_data.tasks import GPT, REFERRING_QA, USER

_VALUE = r"(?:0(?:\.[0-9]*)?|1(?:\.0*)?|\.[0-9]+)"
_BOX = rf"\[\s*{_VALUE}\s*,\s*{_VALUE}\s*,\s*{_VALUE}\s*,\s*{_VALUE}\s*\]"
CANONICAL = rf"^(?:[^<\[]|<st>[^<\[]*<ed>(?:\s*{_BOX}(?:\s*,\s*{_BOX})*)?)*$"
_PLAIN_ASCII = r"^[\t\n\r\x20-\x7e]*$"  # where RE2's \s and Python's \s agree
_MARKED_RE = "(?s)" + MARKED.pattern
_UNICODE_SPACE = "[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"  # str.split() splits there
_MARGIN = 1e-9  # boxes with nearly equal corners go to the exact check


@dataclass
class BatchCheck:
    """Per sample: flags (in the rule's order; ``flagged`` holds only the flagged samples) and the three
    signals; per turn: the text after repairs. ``first`` is the first flagged sample and its first
    finding (for ``--strict``), or None."""

    values: pa.Array
    flagged: dict[int, list[str]]
    answer_words: np.ndarray
    qa_pairs: np.ndarray
    boxes: np.ndarray
    first: tuple[int, Finding] | None
    scanned: TurnScan | None = None  # the scan of ``values`` (near-duplicate documents reuse it)

    def flags(self) -> pa.Array:
        """The ``flags`` column."""
        lists: list[list[str]] = [[]] * len(self.answer_words)  # read only: one shared empty list
        for i, codes in self.flagged.items():
            lists[i] = codes
        return pa.array(lists, pa.list_(pa.string()))


def _np(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False)


def _any_per_sample(turn_mask: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(sample[turn_mask], minlength=n) > 0


def _box_clean(values: pa.Array, turns: TurnScan) -> np.ndarray:
    """Referring-QA turns that the box checks provably leave unflagged and unchanged."""
    clean = turns.starts == turns.ends
    has = np.flatnonzero(turns.brackets > 0)
    if not len(has):
        return clean
    clean[has] = canonical_texts(values, has, _MARGIN)  # nearly equal corners go to the exact check
    return clean


def _candidates(
    task, values, turns: TurnScan, sample, position, user, gpt, offsets, pairs, leaks: bool = True
) -> np.ndarray:
    """Samples that may be flagged or repaired: they go through ``check_sample``."""
    n = len(offsets) - 1
    expected = np.where(position % 2 == 0, user, gpt)
    candidate = _any_per_sample(~expected, sample, n) | (np.diff(offsets) % 2 == 1)
    for count in np.unique(pairs[pairs >= 0]):
        if check_quota(task, int(count)) is not None:
            candidate |= pairs == count
    candidate |= _any_per_sample(gpt & ~turns.printable, sample, n)
    # outside referring QA the box checks only find leaked_coordinates (and change nothing)
    boxes_clean = _box_clean(values, turns) if task == REFERRING_QA else (turns.brackets == 0) | (not leaks)
    candidate |= _any_per_sample(~boxes_clean, sample, n)
    # text checks: only QA pairs with a hint word can be flagged; those in plain ASCII are tried with
    # the checks' own patterns (RE2 reads them as re does there), the others go to check_sample
    hinted = turns.hinted
    answer = np.flatnonzero(~candidate[sample] & gpt & (position % 2 == 1) & (hinted | np.roll(hinted, 1)))
    if len(answer):
        question, text = values.take(pa.array(answer - 1)), values.take(pa.array(answer))
        plain = _np(pc.match_substring_regex(question, _PLAIN_ASCII)) & _np(
            pc.match_substring_regex(text, _PLAIN_ASCII)
        )
        error = _np(pc.match_substring_regex(pc.ascii_lower(text), ERROR_REPLY.pattern))
        pair = pc.ascii_lower(pc.binary_join_element_wise(question, text, "\n"))
        pair = pc.replace_substring_regex(pair, _MARKED_RE, "")
        source = _np(pc.match_substring_regex(pair, SOURCE_MENTION.pattern))
        if task != REFERRING_QA:  # box words count in the answer only (quality.text.check_source_mention)
            said = pc.replace_substring_regex(pc.ascii_lower(text), _MARKED_RE, "")
            source |= _np(pc.match_substring_regex(said, BOX_WORDS.pattern))
        candidate[sample[answer[~plain | error | source]]] = True
    return candidate


def _duplicates(
    values: pa.Array, answers: np.ndarray, hashes: np.ndarray, record: np.ndarray, ascii_: np.ndarray
) -> np.ndarray:
    """Answer turns whose (question, answer) pair repeats an earlier pair of the same record; ``record``
    is per turn, ``ascii_`` marks the ASCII turns."""
    duplicate = np.zeros(len(values), bool)
    if not len(answers):
        return duplicate
    head = repeated_pairs(record[answers], hashes[answers - 1], hashes[answers])
    hits = np.flatnonzero(head >= 0)
    if not len(hits):
        return duplicate
    turn, first = answers[hits], answers[head[hits]]
    # confirm every hash hit on the normalized texts (64-bit hashes may collide): compiled for ASCII
    left, right = np.concatenate([turn - 1, turn]), np.concatenate([first - 1, first])
    same = np.ones(len(left), bool)
    easy = ascii_[left] & ascii_[right]
    same[easy] = same_normalized(values, left[easy], right[easy])
    hard = np.flatnonzero(~easy)
    if len(hard):
        texts = values.take(pa.array(np.concatenate([left[hard], right[hard]]))).to_pylist()
        same[hard] = [
            normalize(a) == normalize(b) for a, b in zip(texts[: len(hard)], texts[len(hard) :], strict=True)
        ]
    if not same.all():
        raise RuntimeError("normalized-text hash collision in the duplicate check")  # pragma: no cover
    duplicate[turn] = True
    return duplicate


def _signals(
    values: pa.Array, turns: TurnScan, sample, answers, pair_answers, n: int, canonical_turns: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(answer_words, qa_pairs, boxes) per sample, as :func:`~svit_data.quality.signals.sample_signals`;
    ``canonical_turns`` marks turns already known to be canonical (proven-clean referring samples)."""
    # boxes: canonical text attaches every [..] to a reference; a marked turn without [ has none; other
    # marked turns go to count_boxes
    turn_boxes = np.where(canonical_turns, turns.brackets, 0)
    at = np.flatnonzero((turns.starts > 0) & (turns.brackets > 0) & ~canonical_turns)
    if len(at):
        canonical = canonical_texts(values, at)
        turn_boxes[at[canonical]] = turns.brackets[at[canonical]]
        odd = at[~canonical]
        for i, text in zip(odd, values.take(pa.array(odd, pa.int64())).to_pylist(), strict=True):
            turn_boxes[i] = count_boxes(text)
    # answer words: the scan's count where str.split() splits only at ASCII whitespace
    words = turns.words.copy()
    edit = answers[(turns.brackets[answers] > 0) | (turns.starts[answers] > 0) | (turns.ends[answers] > 0)]
    rest = []
    wide = answers[~turns.ascii[answers]]
    if len(wide):
        rest = wide[_np(pc.match_substring_regex(values.take(pa.array(wide)), _UNICODE_SPACE))]
    edit = np.setdiff1d(edit, rest)
    if len(edit):  # one compiled pass where the text is plain ASCII and its boxes are canonical
        if len(at):
            canonical_turns = canonical_turns.copy()
            canonical_turns[at[canonical]] = True
        counted = marked_answer_words(values, edit, canonical_turns[edit])
        words[edit[counted >= 0]] = counted[counted >= 0]
        edit = edit[counted < 0]
    if len(edit):
        texts = values.take(pa.array(edit))
        plain_ascii = _np(pc.match_substring_regex(texts, _PLAIN_ASCII))
        stripped = pc.replace_substring_regex(texts.filter(pa.array(plain_ascii)), BOXES.pattern, "")
        stripped = pc.replace_substring(pc.replace_substring(stripped, "<st>", ""), "<ed>", "")
        words[edit[plain_ascii]] = word_counts(stripped)
        rest = np.concatenate([rest, edit[~plain_ascii]]).astype(np.int64)
    for i, text in zip(rest, values.take(pa.array(rest, pa.int64())).to_pylist(), strict=True):
        words[i] = answer_words(text)
    is_answer = np.zeros(len(values), bool)
    is_answer[answers] = True
    count = np.bincount
    return (
        count(sample, weights=np.where(is_answer, words, 0), minlength=n).astype(np.int32),
        count(sample[pair_answers], minlength=n).astype(np.int32),
        count(sample, weights=turn_boxes, minlength=n).astype(np.int32),
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
    leaked_coordinates: bool = True,
) -> BatchCheck:
    """Check a batch of samples of one ``task``: sample ``i`` holds turns ``offsets[i]:offsets[i + 1]``
    of ``froms``/``values``; ``record`` numbers each sample's source record (duplicates are looked for
    within a record, non-decreasing); ``conversation_pairs`` is the QA count of its conversation, -1 for none (quota; any
    ``task`` name is accepted where every count is -1, e.g. third-party samples). ``leaked_coordinates=False``:
    the caller drops that flag (third-party samples), so a ``[`` outside referring QA needs no exact check;
    a sample sent to ``check_sample`` for another reason may still carry it."""
    offsets = np.asarray(offsets, np.int64)
    n = len(offsets) - 1
    sample = np.repeat(np.arange(n), np.diff(offsets))
    position = np.arange(len(values)) - offsets[sample]
    user, gpt = _np(pc.equal(froms, USER)), _np(pc.equal(froms, GPT))
    turns = scan(values)
    candidate = _candidates(
        task, values, turns, sample, position, user, gpt, offsets, conversation_pairs, leaked_coordinates
    )

    def run(i: int, speakers: list[str], texts: list[str], seen: set | None):
        pairs = int(conversation_pairs[i])
        return check_sample(
            task, speakers, texts, repair=repair, seen=seen, conversation_pairs=pairs if pairs >= 0 else None
        )

    # the exact rule on the candidates; their repaired texts replace the originals
    picked = np.flatnonzero(candidate)
    spans = [(int(offsets[i]), int(offsets[i + 1])) for i in picked]
    turn_index = pa.array([t for a, b in spans for t in range(a, b)], pa.int64())
    speakers_all, texts_all = froms.take(turn_index).to_pylist(), values.take(turn_index).to_pylist()
    checked, originals, changed, new_texts = {}, {}, [], []
    at = 0
    for i, (a, b) in zip(picked, spans, strict=True):
        speakers, texts = speakers_all[at : at + b - a], texts_all[at : at + b - a]
        at += b - a
        checked[i] = run(i, speakers, texts, None)
        originals[i] = (speakers, texts)
        for k, (old, new) in enumerate(zip(texts, checked[i].values, strict=True)):
            if old != new:
                changed.append(a + k)
                new_texts.append(new)
    if changed:
        mask = np.zeros(len(values), bool)
        mask[changed] = True  # changed is in turn order: candidates and their turns are visited in order
        fixed = pa.array(new_texts, pa.string())
        values = pc.replace_with_mask(values, pa.array(mask), fixed)
        turns.patch(np.array(changed), scan(fixed))

    # duplicates: hashes of the normalized texts (exact for ASCII; Python's normalize for the rest)
    after_user = np.zeros(len(values), bool)
    after_user[1:] = user[:-1]
    pair_answers = np.flatnonzero(gpt & (position > 0) & after_user)
    wide = np.flatnonzero(~turns.ascii)
    if len(wide):
        normalized = [normalize(v) for v in values.take(pa.array(wide)).to_pylist()]
        turns.hashes[wide] = normalized_hashes(pa.array(normalized, pa.string()))
    duplicate = _duplicates(values, pair_answers, turns.hashes, record[sample], turns.ascii)
    repeats = _any_per_sample(duplicate, sample, n)

    pair_sample = sample[pair_answers]  # non-decreasing, and so is each pair's record
    pair_record = record[pair_sample]

    def with_seen(i: int):
        """check_sample again, with the normalized pairs of the record's earlier samples as ``seen``."""
        lo = np.searchsorted(pair_record, record[i])
        earlier = pair_answers[lo : np.searchsorted(pair_sample, i)]
        texts = values.take(pa.array(np.concatenate([earlier - 1, earlier]), pa.int64())).to_pylist()
        k = len(earlier)
        seen = {(normalize(texts[j]), normalize(texts[k + j])) for j in range(k)}
        if i in originals:
            return run(i, *originals[i], seen)
        a, b = int(offsets[i]), int(offsets[i + 1])
        return run(i, froms.slice(a, b - a).to_pylist(), values.slice(a, b - a).to_pylist(), seen)

    for i in np.flatnonzero(candidate & repeats):
        checked[i] = with_seen(i)
    flagged = {int(i): ["duplicate_qa"] for i in np.flatnonzero(repeats & ~candidate)}
    flagged.update({int(i): result.flags for i, result in checked.items() if result.flags})
    first = None
    if flagged:
        i = min(flagged)
        first = (i, (checked[i] if i in checked else with_seen(i)).findings[0])
    answers = np.flatnonzero(gpt)
    canonical_turns = (
        (~candidate[sample] & (turns.brackets > 0)) if task == REFERRING_QA else np.zeros_like(gpt)
    )
    signals = _signals(values, turns, sample, answers, pair_answers, n, canonical_turns)
    return BatchCheck(values, dict(sorted(flagged.items())), *signals, first, turns)
