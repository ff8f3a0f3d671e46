"""--prompts accepts SVIT's released layout: prompts/<task>.txt system prompts and data/questions.txt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from builders_helpers import generate_args, read_records

from svit_data.builders.prompt_loader import builtin_dir, load_prompts
from svit_data.cli import generate
from svit_data.errors import InputError
from svit_data.tasks import TASKS

SVIT_REPO = Path(__file__).resolve().parent / "fixtures" / "svit_repo"
QUESTIONS = (
    "Tell me what this picture shows, in detail.",
    "Give a thorough account of the scene.",
    "What is going on in this photo? Be detailed.",
)


def test_svit_layout_from_the_repository_root():
    prompts = load_prompts(TASKS, SVIT_REPO)
    for task in TASKS:
        prompt = prompts[task]
        text = (SVIT_REPO / "prompts" / f"{task}.txt").read_text().strip()
        assert prompt.system == text and prompt.examples == () and prompt.source.endswith(f"{task}.txt")
        assert prompt.messages("CTX") == [
            {"role": "system", "content": text},
            {"role": "user", "content": "CTX"},
        ]
    assert prompts["detail_description"].instructions == QUESTIONS  # blank line skipped
    assert prompts["conversation"].instructions == ()
    assert prompts["detail_description"].question(7, seed=1) in QUESTIONS


def test_svit_layout_from_the_prompts_folder_finds_data_questions():
    root = load_prompts(TASKS, SVIT_REPO)
    direct = load_prompts(TASKS, SVIT_REPO / "prompts")
    assert {t: p.hash for t, p in direct.items()} == {t: p.hash for t, p in root.items()}


def test_svit_layout_variants(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(SVIT_REPO, repo)
    (repo / "prompts" / "complex_reasoning.txt").rename(repo / "prompts" / "complex-reasoning.txt")
    (repo / "data" / "questions.txt").unlink()
    prompts = load_prompts(TASKS, repo)
    assert prompts["complex_reasoning"].system.startswith("You read text about one picture. Write questions")
    ours = (builtin_dir() / "detail_description" / "instructions.txt").read_text().split("\n")
    assert set(prompts["detail_description"].instructions) == {q.strip() for q in ours if q.strip()}
    # a task folder (ours/LLaVA's layout) wins over a file of the same task
    (repo / "conversation").mkdir()
    (repo / "conversation" / "system_message.txt").write_text("folder wins")
    assert load_prompts(["conversation"], repo)["conversation"].system == "folder wins"


def test_svit_layout_errors(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(SVIT_REPO, repo)
    (repo / "prompts" / "referring_qa.txt").write_text("  \n")
    with pytest.raises(InputError, match="system prompt is empty") as info:
        load_prompts(["referring_qa"], repo)
    assert "referring_qa.txt" in str(info.value)
    (repo / "prompts" / "conversation.txt").unlink()
    with pytest.raises(InputError, match="no folder or file for task 'conversation'"):
        load_prompts(["conversation"], repo)
    (repo / "data" / "questions.txt").write_text("\n\n")
    with pytest.raises(InputError, match="instruction pool is empty"):
        load_prompts(["detail_description"], repo)


def test_generate_sends_svit_prompts(small_vg, tmp_path, fake_server):
    with fake_server() as (fake, url):
        args = generate_args(
            vg=small_vg, out=tmp_path / "out", base_url=url, prompts=SVIT_REPO, quiet=True, timeout=5, limit=2
        )
        assert generate.run(args) == 0
    systems = {e["body"]["messages"][0]["content"] for e in fake.log}
    expected = {(SVIT_REPO / "prompts" / f"{t}.txt").read_text().strip() for t in TASKS}
    assert systems == expected and len(fake.log) == 8
    assert all(len(e["body"]["messages"]) == 2 for e in fake.log)
    details = read_records(tmp_path / "out", "detail_description")
    assert len(details) == 2
    assert all(r["conversations"][0]["content"][0]["value"] in QUESTIONS for r in details)
