from __future__ import annotations

from svit_data.builders.parsers import QA, parse, parse_qa


def test_separate_lines_numbering_bold_and_blank_lines():
    text = (
        "1. **Question:** What is it?\n\n\n**Answer:** A cat.\n\nQuestion 2: Where?\nAnswer 2:\nOn a mat.\n\n"
    )
    pairs, issues = parse_qa(text)
    assert pairs == [QA("What is it?", "A cat."), QA("Where?", "On a mat.")] and issues == []


def test_one_line_and_speaker_variants():
    pairs, _ = parse_qa(
        "Question: Is it red? Answer: Yes.\nQ: Big? A: No.\nUser: hi\nGPT: hello\nHuman: a\nAssistant: b"
    )
    assert pairs == [QA("Is it red?", "Yes."), QA("Big?", "No."), QA("hi", "hello"), QA("a", "b")]


def test_conversations_split_on_separators_headers_and_topics():
    text = (
        "Conversation 1:\nTopic: food\nQuestion: a\nAnswer: b\n===\nTopic: dogs\nQuestion: c\nAnswer: d\n"
        "---\n## Conversation 3\nQuestion: e\nAnswer: f"
    )
    parsed = parse("conversation", text)
    assert parsed.conversations == [[QA("a", "b")], [QA("c", "d")], [QA("e", "f")]]


def test_unseparated_conversation_is_split_by_count():
    text = "\n".join(f"Question: q{i}\nAnswer: a{i}" for i in range(15))
    parsed = parse("conversation", text)
    assert [len(c) for c in parsed.conversations] == [5, 5, 5] and parsed.issues


def test_unpaired_turns_are_issues_not_errors():
    pairs, issues = parse_qa("Answer: orphan\nQuestion: lonely")
    assert pairs == [] and issues == ["answer without question", "question without answer"]
    assert parse("complex_reasoning", "just prose").conversations == []


def test_detail_description_keeps_text():
    parsed = parse("detail_description", "Description: A red bus.\n\nIt is parked.")
    assert parsed.conversations == [[QA("", "A red bus.\n\nIt is parked.")]]
    assert parse("detail_description", "  ").conversations == []


def test_referring_markers_survive():
    pairs, _ = parse_qa(
        "Question: Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4]?\nAnswer: Next to <st>car<ed> [0.5, 0.5, 0.9, 0.9]."
    )
    assert pairs[0].question == "Where is <st>man<ed> [0.1, 0.2, 0.3, 0.4]?"


def test_every_task_has_one_complete_spec():
    import pytest

    from svit_data.builders.parsers import PARSERS
    from svit_data.tasks import TASK_SPECS, TASKS, task_spec

    assert tuple(TASK_SPECS) == TASKS
    for name, spec in TASK_SPECS.items():
        assert spec.name == name and spec.reply in PARSERS and spec.output_tokens > 0
        assert spec.conversations >= 1 and spec.qa_per_conversation >= 1
    assert [t for t in TASKS if task_spec(t).boxes] == ["referring_qa"]
    assert [t for t in TASKS if task_spec(t).drawn_question] == ["detail_description"]
    with pytest.raises(ValueError, match="unknown task"):
        task_spec("captioning")


def test_the_parser_follows_the_task_spec(monkeypatch):
    """A task whose spec says 'qa' is parsed as one block, whatever its name."""
    import dataclasses

    from svit_data import tasks

    reply = "Question: A?\nAnswer: a.\nQuestion: B?\nAnswer: b."
    assert len(parse("detail_description", reply).conversations[0]) == 1
    spec = dataclasses.replace(tasks.TASK_SPECS["detail_description"], reply=tasks.REPLY_QA)
    monkeypatch.setitem(tasks.TASK_SPECS, "detail_description", spec)
    assert parse("detail_description", reply).conversations == [[QA("A?", "a."), QA("B?", "b.")]]
