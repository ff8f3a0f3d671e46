from __future__ import annotations

from svit_data.builders.annotations import ImageMeta
from svit_data.builders.llm import ChatResult
from svit_data.builders.parsers import parse
from svit_data.builders.serializer import ImageContext
from svit_data.builders.validators import ValidationConfig, validate

CTX = ImageContext(
    ImageMeta(1, 100, 100), "ctx", 3, (7,), ((0.1, 0.2, 0.3, 0.4), (0.5, 0.5, 0.9, 0.9)), ("man",), 0
)


def _check(task, text, finish="stop", **config):
    result = ChatResult(text, 1, 1, "r", finish)
    return validate(task, CTX, result, parse(task, text), ValidationConfig(**config))


def _qa(n, answer="Yes.", question="Is it?"):
    return "\n===\n".join(f"Question: {question}\nAnswer: {answer}" for _ in range(n))


def test_error_and_empty_replies():
    assert (
        _check(
            "detail_description", "It seems like your message is empty. Could you provide details?"
        ).record_rejection.reason
        == "error_reply"
    )
    assert _check("complex_reasoning", "   ").record_rejection.reason == "empty_reply"
    assert _check("complex_reasoning", _qa(15), finish="length").record_rejection.reason == "truncated"


def test_qa_count_tolerance():
    assert _check("complex_reasoning", _qa(13)).record_rejection is None
    assert _check("complex_reasoning", _qa(12)).record_rejection.reason == "wrong_count"
    assert _check("complex_reasoning", _qa(12), qa_tolerance=3).record_rejection is None
    assert _check("conversation", "\n===\n".join([_qa(5)] * 2)).record_rejection.reason == "wrong_count"


def test_source_mentions_drop_the_pair():
    text = _qa(14) + "\n===\n" + _qa(1, answer="The description says there is a man.")
    verdict = _check("complex_reasoning", text)
    assert verdict.record_rejection is None and len(verdict.conversations[0]) == 14
    assert [r.reason for r in verdict.rejections] == ["source_mention"]
    assert (
        _check("complex_reasoning", _qa(15, answer="Per the bounding box, yes.")).record_rejection.reason
        == "no_valid_qa"
    )


def test_referring_boxes_grounding_and_malformed():
    good = "Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4]?"
    verdict = _check("referring_qa", _qa(10, question=good))
    assert verdict.record_rejection is None and verdict.boxes == verdict.grounded == 10
    far = _check("referring_qa", _qa(10, question="Where is <st>man<ed> [0.6, 0.0, 0.7, 0.1]?"))
    assert far.rejections[0].reason == "ungrounded_box" and far.grounded == 0 and far.boxes == 10
    bad = _check("referring_qa", _qa(10, question="Where is <st>man<ed> [0.1, 0.2, 1.3, 0.4]?"))
    assert bad.rejections[0].reason == "box_out_of_range"
    flipped = _check("referring_qa", _qa(10, question="Where is <st>man<ed> [0.3, 0.2, 0.1, 0.4]?"))
    assert flipped.rejections[0].reason == "box_reversed"  # generated text is never repaired
    loose = _check(
        "referring_qa", _qa(10, question="Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4] and [0.1, 0.1, 0.2]?")
    )
    assert loose.rejections[0].reason == "malformed_box" and "4 values" in loose.rejections[0].detail
    detached = _check(
        "referring_qa", _qa(10, question="Is <st>man<ed> [0.1, 0.2, 0.3, 0.4] near [0.5, 0.5, 0.9, 0.9]?")
    )
    assert detached.rejections[0].reason == "malformed_box"
    assert _check("referring_qa", _qa(10)).rejections[0].reason == "no_reference"


def test_coordinates_leaking_into_other_tasks():
    verdict = _check("complex_reasoning", _qa(15, answer="It sits at [0.1, 0.2, 0.3, 0.4]."))
    assert verdict.rejections[0].reason == "leaked_coordinates"


def test_short_description():
    assert _check("detail_description", "A man.").record_rejection.reason == "too_short"
    assert _check("detail_description", "word " * 25).record_rejection is None


# the same QA pairs through the builders' validators and through ingest: the same reason codes
AGREEMENT = {
    "referring_qa": [
        ("Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4]?", "The <st>man<ed> [0.1, 0.2, 0.3, 0.4] stands."),
        ("Where is <st>man<ed> [0.1, 0.2, 1.3, 0.4]?", "Near the door."),
        ("Where is <st>man<ed> [0.3, 0.2, 0.1, 0.4]?", "Near the door."),
        ("Where is <st>man?", "The <st>man<ed> [0.1, 0.2, 0.3, 0.4] waits."),
        ("Where is <st>man<ed> [0.1, 0.2, 0.3]?", "Here."),
        ("Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4]?", "The given information places him by a window."),
        ("Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4]?", "I'm sorry, but I cannot view the image."),
        ("Where is <st>man<ed> [0.5, 0.5, 0.9, 0.9]?", "The bounding box puts him at the right."),
    ],
    "complex_reasoning": [
        ("Why is he smiling?", "He seems happy to see his friend."),
        ("Why is he smiling?", "The description says he won a prize."),
        ("Where is he?", "He stands at [0.1, 0.2, 0.3, 0.4]."),
        ("Where is he?", "Per the bounding box, on the left."),
        ("What is he holding?", "As an AI language model, I cannot see images."),
    ],
}


def test_validators_and_ingest_agree_on_the_same_records(tmp_path):
    import json

    from svit_data.builders.parsers import QA, Parsed
    from svit_data.pool import open_pool
    from svit_data.tasks import TASK_FILES

    records = {}
    for task, pairs in AGREEMENT.items():
        content = [
            turn for q, a in pairs for turn in ({"from": "user", "value": q}, {"from": "gpt", "value": a})
        ]
        records[task] = [{"image_id": 1, "conversations": [{"content": content}]}]
        (tmp_path / TASK_FILES[task]).write_text(json.dumps(records[task]))
    pool = open_pool(str(tmp_path), repair=False, progress=False)
    flags = {row["id"]: row["flags"] for row in pool.table(["id", "flags"]).to_pylist()}
    for task, pairs in AGREEMENT.items():
        for n, (question, answer) in enumerate(pairs):
            parsed = Parsed([[QA(question, answer)]])
            verdict = validate(
                task, CTX, ChatResult("reply", 1, 1, "r", "stop"), parsed, ValidationConfig(qa_tolerance=99)
            )
            reasons = [r.reason for r in verdict.rejections if r.level == "qa"]
            ingested = [
                f for f in flags[f"{task}/1/{n}"] if f != "off_quota"
            ]  # quota: one record, not one pair
            assert reasons == ingested[:1], (task, n, reasons, ingested)
    # clean: two referring pairs ("bounding box" is fine there); every complex pair is off quota (5 of 15)
    assert sum(bool(f) for f in flags.values()) == 11
