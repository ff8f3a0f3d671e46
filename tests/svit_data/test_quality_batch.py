"""The batch path (:func:`check_batch`, what ingest runs) gives exactly what the per-sample rule gives.

The oracle is the rule itself, sample by sample, as ingest applied it before the batch path existed:
:func:`check_sample` with the record's ``seen`` set and the conversation's QA count, then
:func:`sample_signals` on the repaired texts. Both run on the bundled sample, the hand-made bad records,
the perturbed scale slice, records built to sit on every edge the batch path reasons about (non-ASCII
text, Unicode whitespace, odd box spellings, hints split between question and answer), and random
records assembled from those pieces.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_quality_ingest import TRAIN_IDS, broken_records, clean_records
from test_quality_pinned import perturbed, scale_slice

from svit_data.quality.batch import check_batch
from svit_data.quality.samples import alternates, check_sample
from svit_data.quality.signals import sample_signals
from svit_data.sample import SAMPLE_IMAGES, generate_records
from svit_data.tasks import PER_QA_TASKS, TASK_FILES, TASKS


def samples(task: str, records: list[dict]) -> list[tuple[int, list[str], list[str], int | None]]:
    """(record, speakers, values, conversation QA count) per sample, split as ingest splits records."""
    per_qa = task in PER_QA_TASKS
    out = []
    for r, record in enumerate(records):
        for conversation in record["conversations"]:
            speakers = [t["from"] for t in conversation["content"]]
            values = [t["value"] for t in conversation["content"]]
            if per_qa and alternates(speakers):
                chunks = [(t, t + 2) for t in range(0, len(speakers), 2)]
                pairs = len(chunks)
            else:
                chunks = [(0, len(speakers))] if speakers or not per_qa else []
                pairs = None if per_qa or task not in TASKS else len(speakers) // 2  # "": third-party
            out += [(r, speakers[a:b], values[a:b], pairs) for a, b in chunks]
    return out


def oracle(task: str, items, repair: bool):
    results, seen, last = [], set(), None
    for record, speakers, values, pairs in items:
        if record != last:
            seen, last = set(), record
        result = check_sample(task, speakers, values, repair=repair, seen=seen, conversation_pairs=pairs)
        results.append((result, sample_signals(speakers, result.values)))
    return results


def assert_same(task: str, records: list[dict], repair: bool = True) -> int:
    items = samples(task, records)
    expected = oracle(task, items, repair)
    froms = [s for _, speakers, _, _ in items for s in speakers]
    values = [v for _, _, vals, _ in items for v in vals]
    offsets = np.cumsum([0] + [len(speakers) for _, speakers, _, _ in items])
    got = check_batch(
        task,
        pa.array(froms, pa.string()),
        pa.array(values, pa.string()),
        offsets,
        np.array([r for r, *_ in items], np.int64),
        np.array([-1 if p is None else p for *_, p in items], np.int64),
        repair=repair,
    )
    texts = got.values.to_pylist()
    for i, (result, signals) in enumerate(expected):
        where = (task, i, items[i][2])
        assert got.flagged.get(i, []) == result.flags, where
        assert texts[offsets[i] : offsets[i + 1]] == result.values, where
        assert (int(got.answer_words[i]), int(got.qa_pairs[i]), int(got.boxes[i])) == signals, where
    first = next(((i, r.findings[0]) for i, (r, _) in enumerate(expected) if r.findings), None)
    assert got.first == first
    return sum(bool(r.flags) for r, _ in expected)


def test_bundled_sample():
    records = {task: [] for task in TASKS}
    for *_, by_task in generate_records(SAMPLE_IMAGES):
        for task in TASKS:
            records[task].append(by_task[task])
    assert sum(assert_same(task, records[task]) for task in TASKS) > 0


@pytest.mark.parametrize("repair", [True, False])
def test_hand_made_bad_records(repair):
    records, _ = broken_records()
    assert sum(assert_same(task, records[task], repair) for task in TASKS) >= 10
    clean = clean_records(TRAIN_IDS)
    assert sum(assert_same(task, clean[task], repair) for task in TASKS) == 0


@pytest.mark.slow
def test_perturbed_scale_slice(tmp_path):
    folder = perturbed(scale_slice(tmp_path))
    flagged = 0
    for task in TASKS:
        flagged += assert_same(task, json.loads((folder / TASK_FILES[task]).read_text()))
    assert flagged > 100


# pieces that sit on the edges the batch path reasons about
QUESTIONS = [
    "Where is the <st>cat<ed>?",
    "What is in the image?",
    "Describe the scene from the given",  # a hint completed by the answer: "given\ninformation"
    "Is the CAFÉ open?",
    "İs there a sign?",
    "Where is the \u212aite?",  # Kelvin sign: str.lower() turns it into "k"
    "How many <st>dogs<ed> [0.1, 0.1, 0.2, 0.2] are there?",
    "x < y?",
    "Please\tprovide the picture?",  # a tab is not the hint's space
    "What does the \u017fign say?",  # long s: RE2 ignoring case reads it as "s", str.lower() does not
    "",
]
ANSWERS = [
    "The <st>cat<ed> [0.1, 0.2, 0.3, 0.4] sleeps.",
    "The <st>cat<ed>[0.1,0.2,0.3,0.4],[0.5, 0.5, 1., 1.0] sleeps.",
    "The <st>cat<ed> [.1, 0.2, .3, 0.4] and <st>dog<ed> [0, 0, 1, 1].",
    "The <st>cat<ed> [0.3, 0.2, 0.1, 0.4] is reversed.",
    "The <st>cat<ed> [0.1, 0.2, 0.1, 0.4] has equal corners.",
    "The <st>cat<ed> [0.1, 0.2, 1.0004, 0.4] is a little out.",
    "The <st>cat<ed> [1e-1, 0.2, 0.3, 0.4] has an exponent.",
    "The <st>cat<ed> [-0.0, 0.2, 0.3, 0.4] has a sign.",
    "The <st>cat<ed> [0.1, 0.2, 0.3] is short.",
    "The <st>cat [0.1, 0.2, 0.3, 0.4]<ed> holds its box.",
    "The <st>cat<ed> sits at [0.1, 0.2, 0.3, 0.4].",
    "The <st><st>cat<ed><ed> [0.1, 0.2, 0.3, 0.4].",
    "information is what the caption says.",
    "It seems like your message is empty.",
    "I'M SORRY, BUT I CANNOT SEE THE IMAGE.",
    "\u00a0\u3000",
    "   ",
    "The café is open\u00a0today, très bien.",
    "The CAFÉ is open.",
    "the café is open.",
    "\x7f",
    "As An AI, I CaNnOt see it.",
    "abcdefgSoRrY, a LIST of descr\u0130ptions.",
    "A realistic scene, forgiven.",
    "\tThe given list.\n",
    "A sign\x1cwith\x0bcontrol\fspaces.",
    "  Leading and trailing spaces.  ",
    "The bounding box is clear.",
    "Coordinates: [0.1, 0.2, 0.3, 0.4]",
    "Yes.",
    "yes.",
    "Two <st>dogs<ed> [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6] play\u2003outside.",
]


def random_records(rng: random.Random, count: int) -> list[dict]:
    records = []
    for image in range(count):
        conversations = []
        for _ in range(rng.randint(1, 3)):
            content = []
            for _ in range(rng.randint(0, 6)):
                content += [
                    {"from": "user", "value": rng.choice(QUESTIONS)},
                    {"from": "gpt", "value": rng.choice(ANSWERS)},
                ]
            if content and rng.random() < 0.15:
                content[rng.randrange(len(content))]["from"] = rng.choice(["gpt", "user", "human"])
            if rng.random() < 0.1:
                content = content[:-1]
            conversations.append({"content": content})
        records.append({"image_id": image, "conversations": conversations})
    return records


@pytest.mark.parametrize("task", [*TASKS, ""])
@pytest.mark.parametrize("repair", [True, False])
def test_edge_pieces_and_random_records(task, repair):
    edges = [
        {
            "image_id": k,
            "conversations": [{"content": [{"from": "user", "value": q}, {"from": "gpt", "value": a}]}],
        }
        for k, (q, a) in enumerate((q, a) for q in QUESTIONS for a in ANSWERS)
    ]
    assert assert_same(task, edges, repair) > 0
    assert assert_same(task, random_records(random.Random(f"{task}{repair}"), 150), repair) > 0


def test_strict_reports_the_earlier_flag_before_a_later_broken_record(tmp_path):
    from test_quality_ingest import write

    from svit_data.errors import InputError
    from svit_data.pool import open_pool

    records = clean_records(TRAIN_IDS)
    records["referring_qa"][3]["conversations"][0]["content"][5]["value"] = (
        "The <st>cat<ed> [0.7, 0.2, 0.4, 0.5]."
    )
    records["referring_qa"][5]["image_id"] = "not a number"
    source = str(write(tmp_path / "src", records))
    with pytest.raises(InputError, match=r"record 3.*box_repaired"):
        open_pool(source, strict=True, progress=False)
    with pytest.raises(InputError, match="record 5") as error:
        open_pool(source, progress=False)
    assert "box_repaired" not in str(error.value)


def test_compiled_text_passes_agree_with_python():
    from svit_data.quality.samples import normalize
    from svit_data.quality.textscan import normalized_hashes, simple_ascii, split_whitespace, word_counts

    rng = random.Random(3)
    texts = [
        "".join(rng.choice("aB c\t\n\x1c\x0b.,") for _ in range(rng.randrange(0, 20))) for _ in range(500)
    ]
    array = pa.array(texts)
    assert word_counts(array).tolist() == [len(t.split()) for t in texts]
    again = normalized_hashes(pa.array([normalize(t) for t in texts]))
    assert (normalized_hashes(array) == again).all()
    same = [normalize(a) == normalize(b) for a, b in zip(texts, texts[1:], strict=False)]
    hashes = normalized_hashes(array)
    assert (hashes[:-1] == hashes[1:]).tolist() == same
    split = split_whitespace(array).to_pylist()
    assert all(split[i] == texts[i].split() for i in np.flatnonzero(simple_ascii(array)))


def test_clean_samples_are_proven_clean_without_the_per_sample_rule(monkeypatch):
    """The batch path is fast because clean samples never reach check_sample: none of the clean records,
    and of the bundled sample only those the rule flags (duplicates aside, which are found by hashes)."""
    import svit_data.quality.batch as batch

    calls = []
    monkeypatch.setattr(batch, "check_sample", lambda *a, **k: calls.append(a) or check_sample(*a, **k))
    clean = clean_records(TRAIN_IDS)
    assert sum(assert_same(task, clean[task]) for task in TASKS) == 0
    assert len(calls) == 0
    records = {task: [] for task in TASKS}
    for *_, by_task in generate_records(SAMPLE_IMAGES):
        for task in TASKS:
            records[task].append(by_task[task])
    calls.clear()
    flagged = sum(assert_same(task, records[task]) for task in TASKS)
    assert len(calls) <= flagged


def test_box_order_pass_never_passes_what_the_float_parse_fails():
    """canonical_texts with a margin reads canonical box numbers itself: where it says True, every box has both sides of
    at least the margin as Python's float() reads them, also for sides a hair from the margin; and it
    says True wherever every side is far from the margin."""
    import re

    from svit_data.quality.batch import _MARGIN, CANONICAL
    from svit_data.quality.boxscan import canonical_texts

    rng = random.Random(7)

    def number(value: float) -> str:
        text = rng.choice(["{:.3f}", "{:.17f}", "{:.25f}", "{}"]).format(value)
        text = text if "e" not in text else f"{value:.25f}"
        return text[1:] if text.startswith("0.") and rng.random() < 0.2 else text

    texts, wanted, clear = [], [], []
    for _ in range(2000):
        boxes, ok, far = [], True, True
        for _ in range(rng.randrange(1, 4)):
            x1, y1 = rng.choice([0.25, 0.5, 0.1 + rng.random() * 0.4]), 0.1 + rng.random() * 0.4
            gap = rng.choice([0.0, _MARGIN, _MARGIN * (1 + 1e-7), _MARGIN * (1 - 1e-7), 2e-9, 0.1, -0.01])
            corners = [x1, y1, x1 + gap, y1 + 0.2] if rng.random() < 0.5 else [x1, y1, x1 + 0.3, y1 + gap]
            spelled = [number(c) for c in corners]
            floats = [float(s) for s in spelled]
            sides = (floats[2] - floats[0], floats[3] - floats[1])
            ok &= min(sides) >= _MARGIN
            far &= min(sides) >= 1e-6 or min(sides) < 0
            boxes.append("[" + rng.choice([", ", ",", " , "]).join(spelled) + "]")
        texts.append(f"a <st>dog<ed> {', '.join(boxes)} sits.")
        wanted.append(ok)
        clear.append(far)
    assert all(re.fullmatch(CANONICAL, t) for t in texts)
    got = canonical_texts(pa.array(["no box", *texts]), np.arange(1, len(texts) + 1), _MARGIN)
    wanted, clear = np.array(wanted), np.array(clear)
    assert not (got & ~wanted).any()
    assert (got[clear] == wanted[clear]).all() and wanted[clear].sum() > 100
    assert got[~clear & wanted].any()  # sides of 2e-9 pass: the numbers are read finely enough


def test_marked_answer_words_agrees_with_the_rule():
    """The compiled count of answer words (boxes and markers removed) is answer_words' on every text it
    takes: plain ASCII, boxes only in canonical text, no ``<`` but markers (``<e<st>d>`` is left to the
    rule: removing ``<st>`` makes a marker there)."""
    import re

    from svit_data.quality.batch import CANONICAL
    from svit_data.quality.boxscan import marked_answer_words
    from svit_data.quality.signals import answer_words

    rng = random.Random(5)
    pieces = ["<st>", "<ed>", "<st>dog<ed>", " [0.1, 0.2, 0.3, 0.4]", "[.5,0.,1,1.0]", " , ", ",", " ", "\t",
              "\n", "a", "cat.", "<e", "d>", "<", "s", "t>", "é", "x\x0by", "[0.1,0.2,0.3,0.4] ,\n [0,0,1,1]"]  # fmt: skip
    texts = ["", "<st>a<ed>[0.1,0.1,0.2,0.2],[0.3,0.3,0.4,0.4]x", "<st>a<ed>  [0,0,1,1] [0,0,1,1] b"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 9))) for _ in range(4000)]
    # long texts: spaces, markers, boxes and bytes that stop the 8-byte steps on every lane
    filler = ["abcdefg"[:r] for r in range(1, 8)] + ["\x7f", "\x1f", "\x0c", "\r", "  ", "ü", "[0,0,1,1]"]
    texts += ["".join(rng.choice(pieces + filler) for _ in range(rng.randrange(8, 30))) for _ in range(4000)]
    space, box = [" ", "", "  ", "\t", "\n "], "[{}]".format
    for _ in range(2000):  # canonical: references with box lists, between words, commas and spaces
        text = ""
        for _ in range(rng.randrange(1, 5)):
            text += rng.choice(["a", "dog", " ", ", ", ".", "it,", "\t", "> x"])
            if rng.random() < 0.7:
                boxes = [
                    box(
                        rng.choice([",", ", ", " , "]).join(
                            rng.choice(["0.1", ".5", "0.", "1", "1.00"]) for _ in "1234"
                        )
                    )
                    for _ in range(rng.randrange(0, 3))
                ]
                text += "<st>" + rng.choice(["cat", "", "a b", "x,y"]) + "<ed>" + rng.choice(space)
                text += "".join(
                    rng.choice(space) + rng.choice(["", ","]) + rng.choice(space) + b for b in boxes[:1]
                )
                text += "".join(rng.choice(space) + "," + rng.choice(space) + b for b in boxes[1:])
        texts.append(text)
    canonical = np.array([re.fullmatch(CANONICAL, t) is not None for t in texts])
    got = marked_answer_words(pa.array(texts), np.arange(len(texts)), canonical)
    taken = got >= 0
    assert all(got[i] == answer_words(texts[i]) for i in np.flatnonzero(taken))
    plain = np.array([re.fullmatch("[\t\n\r -~]*", t) is not None for t in texts])
    assert taken[canonical & plain].all() and (taken & ~plain).sum() == 0 and (taken & plain).sum() > 1000
    assert not taken[np.array(["[" in t or "<e<st>d>" in t for t in texts]) & ~canonical].any()
    assert (canonical & np.array(["[" in t for t in texts]) & taken).sum() > 300


def test_canonical_pass_agrees_with_re2():
    """The compiled reading of CANONICAL gives what RE2 gives (the rule as the batch path ran it), on
    texts assembled from markers, boxes, RE2's and others' whitespace and numbers on every edge."""
    from svit_data.quality.batch import CANONICAL
    from svit_data.quality.boxscan import canonical_texts

    pieces = [
        "<st>",
        "<ed>",
        "cat",
        " ",
        "\t",
        "\n",
        "\x0b",
        "\x0c",
        "\r",
        "[",
        "]",
        ",",
        ", ",
        "0",
        "1",
        ".",
    ]
    pieces += ["0.5", "1.0", "1.05", ".25", "00", "2", "<", "st>", "é", "\u2003", "[0.1, 0.2, 0.3, 0.4]"]
    pieces += ["[0,0,1,1]", "[ .5 ,1. , 0., 1 ]", "[1., .0, 0.,1]"]
    rng = random.Random(11)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 14))) for _ in range(20000)]
    for _ in range(5000):
        boxes = ", ".join(rng.choice(pieces[-4:]) for _ in range(rng.randrange(1, 4)))
        texts.append(
            f"The <st>cat<ed>{rng.choice(['', ' ', chr(10), chr(11)])}{boxes}{rng.choice(['', '.', ' [', ','])}"
        )
    fill = ["x" * r for r in range(1, 18)]  # < and [ on every lane of the pass's 8-byte steps
    for _ in range(5000):
        texts.append("".join(rng.choice(fill + pieces) for _ in range(rng.randrange(0, 10))))
    array = pa.array(texts)
    want = pc.match_substring_regex(array, CANONICAL).to_numpy(zero_copy_only=False)
    assert 0.2 < want.mean() < 0.8
    ordered = canonical_texts(array, np.arange(len(texts)), 1e-9)
    assert not (ordered & ~want).any() and (ordered != want).any()
    assert canonical_texts(array, np.arange(len(texts))).tolist() == want.tolist()
    picks = np.array([5, 3, 3, 20004])
    assert canonical_texts(array.slice(1), picks).tolist() == want[picks + 1].tolist()
