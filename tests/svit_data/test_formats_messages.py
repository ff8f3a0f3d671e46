"""TRL / transformers messages: typed content parts, the image part first, and back to svit turns."""

from __future__ import annotations

from svit_data.formats.messages import from_messages, to_messages
from svit_data.tasks import TASKS


def test_messages_of_a_referring_row():
    row = {
        "id": "referring_qa/3/0",
        "task": "referring_qa",
        "image_file": "3.jpg",
        "conversations": [
            {"from": "user", "value": "Where is the <st>dog<ed>?"},
            {"from": "gpt", "value": "The <st>dog<ed> [0.1, 0.2, 0.3, 0.4] sleeps."},
        ],
    }
    out = to_messages(row)
    assert out == {
        "id": "referring_qa/3/0",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": "Where is the <st>dog<ed>?"}],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "The <st>dog<ed> [0.1, 0.2, 0.3, 0.4] sleeps."}],
            },
        ],
        "images": ["3.jpg"],
    }
    plain = to_messages(row, keep_markers=False, image="PIL")
    assert plain["messages"][1]["content"][0]["text"] == "The dog [0.1, 0.2, 0.3, 0.4] sleeps."
    assert plain["images"] == ["PIL"]


def test_every_bundled_sample_round_trips_through_messages(sample_pool_rows):
    seen = set()
    for row in sample_pool_rows:
        out = to_messages(row)
        assert from_messages(out) == row["conversations"]
        image_parts = [p for m in out["messages"] for p in m["content"] if p["type"] == "image"]
        assert len(image_parts) == 1 == len(out["images"])
        assert out["messages"][0]["content"][0] == {"type": "image"}
        assert all(m["role"] in ("user", "assistant") for m in out["messages"])
        seen.add(row["task"])
    assert seen == set(TASKS)
