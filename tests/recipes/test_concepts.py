"""svit-recipe concepts against a loopback OpenAI-compatible server (the builders' fake)."""

import json
import sys
from pathlib import Path

import pytest

from svit_data.recipes.concepts import format_output, merge, read_questions
from svit_data.recipes.vocabulary import load_vocabulary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builders"))
FakeOpenAI = pytest.importorskip("fake_openai").FakeOpenAI

REPLY = {
    "concepts": [
        {"concept": "Dogs", "category": "object", "synonyms": ["puppy"]},
        {"concept": "red", "category": "color", "synonyms": []},
        {"concept": "a very long concept phrase here", "category": "x"},
        "clock",
    ]
}


def answer(body: dict) -> str:
    questions = body["messages"][-1]["content"]
    if "traffic" in questions:
        return (
            "```json\n"
            + json.dumps({"concepts": [{"concept": "traffic light", "synonyms": ["stoplight"]}]})
            + "\n```"
        )
    return "Here you go: " + json.dumps(REPLY)


def test_format_output_keeps_usable_concepts_and_gives_reasons():
    concepts, reason = format_output(json.dumps(REPLY))
    assert reason == "" and [c["concept"] for c in concepts] == ["dogs", "red", "clock"]
    assert format_output("sorry, I cannot")[1] == "no JSON object in the reply"
    assert format_output("{bad json}")[1].startswith("reply JSON does not parse")
    assert format_output('{"other": 1}')[1] == "reply has no 'concepts' list"
    merged = merge(
        [
            [{"concept": "dog", "category": "object", "synonyms": ["puppy"]}],
            [{"concept": "dog", "category": "animal", "synonyms": ["hound", "dog"]}],
        ]
    )
    assert merged == [{"concept": "dog", "category": "object", "synonyms": ["hound", "puppy"]}]


def test_read_questions_formats(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"question": "Is there a dog?"}\n\n{"text": "What color?"}\n')
    assert read_questions(tmp_path / "q.jsonl") == ["Is there a dog?", "What color?"]
    (tmp_path / "mme.txt").write_text("1.jpg\tIs there a clock?\tYes\n2.jpg\tIs there a clock?\tNo\n")
    assert read_questions(tmp_path / "mme.txt") == ["Is there a clock?"]
    (tmp_path / "mmb.tsv").write_text("index\tquestion\tA\n0\tWhich is red?\tx\n")
    assert read_questions(tmp_path / "mmb.tsv") == ["Which is red?"]
    (tmp_path / "bad.jsonl").write_text('{"answer": 1}\n')
    from svit_data.errors import InputError

    with pytest.raises(InputError, match="record 0"):
        read_questions(tmp_path / "bad.jsonl")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(InputError, match="no questions"):
        read_questions(tmp_path / "empty.txt")


def test_concepts_command_writes_a_vocabulary_and_caches_answers(cli, tmp_path, svit_cache):
    bench = tmp_path / "mme_questions.jsonl"
    lines = [{"question": f"Is there a dog number {i}?"} for i in range(5)] + [
        {"question": "Is the traffic light red?"}
    ]
    bench.write_text("\n".join(json.dumps(x) for x in lines))
    fake = FakeOpenAI(answer=answer)
    out = tmp_path / "concepts.json"
    with fake.serve(hard_timeout=60) as url:
        argv = [
            "concepts",
            "--benchmark",
            bench,
            "--model",
            "gpt-4o",
            "--out",
            out,
            "--base-url",
            url,
            "--questions-per-request",
            5,
            "--quiet",
        ]
        assert cli(*argv) == 0
        sent = len(fake.log)
        assert sent == 2
        assert cli(*argv) == 0  # the rerun is served from the response cache
        assert len(fake.log) == sent
    vocab = load_vocabulary(out)
    assert vocab.names == ["clock", "dogs", "red", "traffic light"]
    assert "stoplight" in vocab.concepts[3].synonyms
    document = json.loads(out.read_text())
    assert document["source"] == {"benchmark": "mme_questions.jsonl", "model": "gpt-4o", "questions": 6}
    # the file feeds a recipe
    assert (
        cli("build", "svit-80k-d", "--concepts", out, "--size", 20, "--out", tmp_path / "svit", "--quiet")
        == 0
    )


def test_concepts_command_when_the_model_gives_nothing(cli, tmp_path, capsys):
    bench = tmp_path / "q.json"
    bench.write_text(json.dumps(["Is there a cat?"]))
    fake = FakeOpenAI(answer=lambda body: "I cannot help with that.")
    with fake.serve(hard_timeout=60) as url:
        code = cli(
            "concepts",
            "--benchmark",
            bench,
            "--out",
            tmp_path / "c.json",
            "--base-url",
            url,
            "--quiet",
            "--cache",
            tmp_path / "cache.sqlite",
        )
    assert code == 2
    assert "no usable concepts" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
