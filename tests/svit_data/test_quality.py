import numpy as np
import pyarrow as pa
import pytest

from svit_data.quality import REASONS, check_sample
from svit_data.quality.base import Finding
from svit_data.quality.near_duplicates import MIN_WORDS, near_duplicate_rows, signatures
from svit_data.quality.samples import check_quota
from svit_data.quality.signals import sample_signals

U, G = "user", "gpt"
CLEAN_REFERRING = (
    "Where is the red kite?",
    "The <st>red kite<ed> [0.12, 0.05, 0.31, 0.2] flies above the beach.",
)

# (task, question, answer, expected flags): one hand-made example per ingest reason code
CASES = [
    (
        "detail_description",
        "Describe the image in detail.",
        "It seems like your message is empty. Could you please provide the description?",
        ["error_reply", "source_mention"],
    ),
    ("conversation", "What is the man holding?", "I'm sorry, but I cannot view images.", ["error_reply"]),
    ("complex_reasoning", "Why is the road wet?", "   ", ["empty_answer"]),
    (
        "conversation",
        "What color is the bus?",
        "According to the description, the bus is red.",
        ["source_mention"],
    ),
    (
        "complex_reasoning",
        "Where is the dog?",
        "Based on the given information, it sits by the door.",
        ["source_mention"],
    ),
    ("conversation", "Where is the cat?", "The bounding box of the cat is at the top.", ["source_mention"]),
    (
        "referring_qa",
        "Where is the <st>cat?",
        "The <st>cat<ed> [0.1, 0.1, 0.2, 0.2] sleeps.",
        ["malformed_box"],
    ),
    ("referring_qa", "Where is the cat?", "The <st>cat<ed> [0.1, 0.1, 0.2] sleeps.", ["malformed_box"]),
    (
        "referring_qa",
        "Where is the cat?",
        "The <st>cat<ed> sleeps at [0.1, 0.1, 0.2, 0.2] today.",
        ["malformed_box"],
    ),
    (
        "referring_qa",
        "Where is the cat?",
        "The <st>cat<ed> [0.1, 0.1, 1.3, 0.2] sleeps.",
        ["box_out_of_range"],
    ),
    ("conversation", "Where is the cat?", "The cat is at [0.1, 0.1, 0.2, 0.2].", ["leaked_coordinates"]),
    ("referring_qa", "Where is the cat?", "The <st>cat<ed> [0.6, 0.1, 0.2, 0.4] sleeps.", ["box_repaired"]),
    (
        "referring_qa",
        "Where is the cat?",
        "The <st>cat<ed> [0.1, 0.1, 1.0004, 0.4] sleeps.",
        ["box_repaired"],
    ),
]


@pytest.mark.parametrize("task, question, answer, flags", CASES)
def test_each_reason_is_raised_on_its_example(task, question, answer, flags):
    assert check_sample(task, [U, G], [question, answer]).flags == flags


CLEAN = [
    ("conversation", "Is there a dog?", "Yes."),
    (
        "conversation",
        "What describes the mood of the scene?",
        "The scene feels calm; the signs glow red in the evening.",
    ),
    (
        "complex_reasoning",
        "Why might the man carry an umbrella?",
        "Dark clouds fill the sky, so rain is likely soon.",
    ),
    ("referring_qa", *CLEAN_REFERRING),
    (
        "referring_qa",
        "Give the coordinates of the <st>dog<ed>.",
        "The <st>dog<ed> [0.0, 0.5, 1.0, 1.0], [0.2, 0.2, 0.3, 0.3].",
    ),
    ("detail_description", "Describe the image.", "A busy street with two buses, a cyclist and tall trees."),
    ("conversation", "What are the coordinates of the bus in the picture?", "The bus is on the left side."),
]


@pytest.mark.parametrize("task, question, answer", CLEAN)
def test_clean_pairs_get_no_flag(task, question, answer):
    result = check_sample(task, [U, G], [question, answer], seen=set(), conversation_pairs=None)
    assert result.flags == [] and result.values == [question, answer]


def test_a_question_asking_for_a_box_is_no_source_mention():
    """LLaVA-1.5's grounding data asks for boxes (a task of its own); an answer naming boxes still cites
    the annotations. Third-party ingest drops leaked_coordinates (svit_data.source_batches)."""
    question = "Please provide the bounding box coordinate of the region this sentence describes: a red kite."
    assert "source_mention" not in check_sample("", [U, G], [question, "[0.12, 0.05, 0.31, 0.2]"]).flags
    cited = check_sample("", [U, G], ["Where is the kite?", "Its bounding box is at the top left."])
    assert cited.flags == ["source_mention"]


def test_repairs_rewrite_only_the_bad_box_and_can_be_turned_off():
    answer = "The <st>cat<ed> [0.60, 0.1, 0.2, 0.4] and <st>dog<ed> [0.50, 0.5, 0.7, 1.0001]."
    repaired = check_sample("referring_qa", [U, G], ["Where?", answer])
    assert repaired.values[1] == "The <st>cat<ed> [0.2, 0.1, 0.6, 0.4] and <st>dog<ed> [0.5, 0.5, 0.7, 1.0]."
    assert repaired.flags == ["box_repaired"] and len(repaired.findings) == 2
    kept = check_sample("referring_qa", [U, G], ["Where?", answer], repair=False)
    assert kept.values[1] == answer and kept.flags == ["box_reversed", "box_out_of_range"]
    untouched = "<st>cat<ed> [0.60, 0.1, 0.7, 0.4]"
    assert check_sample("referring_qa", [U, G], ["Where?", untouched]).values[1] == untouched


def test_turn_order_and_its_location():
    result = check_sample("conversation", [G, U], ["Hello.", "What is this?"])
    assert result.flags == ["turn_order"]
    odd = check_sample("conversation", [U, G, U], ["Q?", "A.", "The <st>x<ed> [0.1, 0.1, 0.2, 0.2]"])
    assert odd.flags == ["turn_order", "leaked_coordinates"]
    assert [(f.turn, f.part) for f in odd.findings] == [(2, "from"), (2, "value")]


def test_quota_is_far_only_beyond_half_or_double():
    assert check_quota("conversation", 5) is None and check_quota("conversation", 3) is None
    assert check_quota("conversation", 2).code == "off_quota"
    assert (
        check_quota("complex_reasoning", 30) is None
        and check_quota("complex_reasoning", 31).code == "off_quota"
    )
    assert (
        check_quota("detail_description", 1) is None
        and check_quota("detail_description", 3).code == "off_quota"
    )
    flagged = check_sample("complex_reasoning", [U, G], ["Why?", "Because it rains."], conversation_pairs=4)
    assert flagged.flags == ["off_quota"]


def test_duplicates_within_an_image_are_normalized_but_other_images_are_not_duplicates():
    seen: set = set()
    first = check_sample("complex_reasoning", [U, G], ["Is there a dog?", "Yes."], seen=seen)
    again = check_sample("complex_reasoning", [U, G], ["is there a  DOG?", "yes."], seen=seen)
    other_image = check_sample("complex_reasoning", [U, G], ["Is there a dog?", "Yes."], seen=set())
    assert (first.flags, again.flags, other_image.flags) == ([], ["duplicate_qa"], [])


def test_every_ingest_reason_has_an_example_and_a_description():
    raised = {flag for *_, flags in CASES for flag in flags} | {
        "turn_order",
        "off_quota",
        "duplicate_qa",
        "box_reversed",
        "near_duplicate",
    }
    assert raised == {code for code, reason in REASONS.items() if reason.ingest}
    assert all(reason.description and "\n" not in reason.description for reason in REASONS.values())
    with pytest.raises(ValueError, match="unknown reason"):
        Finding("nope", "")


def test_signals_skip_boxes_and_markers():
    words, pairs, boxes = sample_signals(
        [U, G, U, G],
        [
            "Where?",
            CLEAN_REFERRING[1],
            "And?",
            "Two <st>dogs<ed> [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6].",
        ],
    )
    assert (words, pairs, boxes) == (7 + 2, 2, 3)


TEMPLATE = (
    "The scene shows a quiet street at dusk where a red bus waits near the corner while two people "
    "cross the road and a dog watches them from the sidewalk beside a bakery"
)


def conversations(answers):
    return pa.array(
        [[{"from": U, "value": "Describe it."}, {"from": G, "value": a}] for a in answers],
        pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())])),
    )


def test_near_duplicates_flag_templated_long_answers_but_keep_the_first():
    assert len(TEMPLATE.split()) >= MIN_WORDS
    variant = TEMPLATE.replace("dusk", "dawn") + "."
    different = (
        "A kitchen with white cabinets holds a steel kettle on the stove, a bowl of green apples on "
        "the counter, and a small radio near the window that faces a garden full of roses"
    )
    rows = near_duplicate_rows(
        [conversations([TEMPLATE, different]), conversations(["Yes.", variant, "Yes."])]
    )
    assert rows.tolist() == [3]


def test_near_duplicates_ignore_short_answers_and_answers_of_one_sample():
    assert near_duplicate_rows([conversations(["Yes."] * 5)]).size == 0
    one_sample = pa.array(
        [
            [
                {"from": U, "value": "Q"},
                {"from": G, "value": TEMPLATE},
                {"from": U, "value": "Q"},
                {"from": G, "value": TEMPLATE},
            ]
        ],
        conversations([]).type,
    )
    assert near_duplicate_rows([one_sample]).size == 0


def test_signature_estimates_jaccard():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    base = list(rng.choice(words, 200))
    half = base[:100] + list(rng.choice(words, 100))
    sig = signatures(pa.array([" ".join(base), " ".join(base), " ".join(half)]))
    assert (sig[0] == sig[1]).all()
    assert 0.15 < (sig[0] == sig[2]).mean() < 0.6
