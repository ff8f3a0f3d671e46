"""The four SVIT tasks, their released file names, and how each record expands into samples."""

from __future__ import annotations

CONVERSATION = "conversation"
COMPLEX_REASONING = "complex_reasoning"
REFERRING_QA = "referring_qa"
DETAIL_DESCRIPTION = "detail_description"

TASKS: tuple[str, ...] = (CONVERSATION, COMPLEX_REASONING, REFERRING_QA, DETAIL_DESCRIPTION)

# Released file per task, as in the SVIT repo's `data/` folder.
TASK_FILES: dict[str, str] = {task: f"{task}.json" for task in TASKS}
ALL_TASKS_FILE = "svit.json"

# Speakers of SVIT turns (schema.py re-exports them).
USER = "user"
GPT = "gpt"
SPEAKERS: tuple[str, str] = (USER, GPT)

# Tasks whose conversations hold many independent QA pairs: each pair becomes its own sample.
PER_QA_TASKS: frozenset[str] = frozenset({COMPLEX_REASONING, REFERRING_QA})


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return task
