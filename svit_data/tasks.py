"""The four SVIT tasks: one record per task with every task-specific rule, and the released file names.

A task's rules live in its :class:`TaskSpec` in ``TASK_SPECS`` and nowhere else: the quota a reply should
meet, how the reply is parsed, whether boxes are required or forbidden, the shape of the output record,
how a record expands into samples, and the typical reply length the dry run prices. Builders, validators,
ingest and the cost estimate read these fields; adding a task is one entry here plus its prompt folder.
"""

from __future__ import annotations

from dataclasses import dataclass

CONVERSATION = "conversation"
COMPLEX_REASONING = "complex_reasoning"
REFERRING_QA = "referring_qa"
DETAIL_DESCRIPTION = "detail_description"

# How a reply is parsed (builders/parsers.py has one function per kind).
REPLY_CONVERSATIONS = "conversations"  # several blocks of Question/Answer pairs
REPLY_QA = "qa"  # one block of Question/Answer pairs
REPLY_DESCRIPTION = "description"  # one free text, no question in the reply


@dataclass(frozen=True)
class TaskSpec:
    name: str
    conversations: int  # conversations one reply should hold (SVIT's quota)
    qa_per_conversation: int  # QA pairs per conversation (SVIT's quota)
    reply: str  # REPLY_* kind: which parser reads the reply
    boxes: bool  # answers must ground objects as <st>obj<ed> [box]; other tasks must give no coordinates
    per_qa_samples: bool  # each QA pair becomes its own sample (else one sample per conversation)
    drawn_question: bool  # the user turn is drawn from the prompt's instructions.txt pool (seeded)
    output_tokens: int  # typical reply length in tokens (our estimate; prices the dry run)


TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(CONVERSATION, 3, 5, REPLY_CONVERSATIONS, False, False, False, 900),
        TaskSpec(COMPLEX_REASONING, 1, 15, REPLY_QA, False, True, False, 1500),
        TaskSpec(REFERRING_QA, 1, 10, REPLY_QA, True, True, False, 1100),
        TaskSpec(DETAIL_DESCRIPTION, 1, 1, REPLY_DESCRIPTION, False, False, True, 300),
    )
}

TASKS: tuple[str, ...] = tuple(TASK_SPECS)

# Released file per task, as in the SVIT repo's `data/` folder.
TASK_FILES: dict[str, str] = {task: f"{task}.json" for task in TASKS}
ALL_TASKS_FILE = "svit.json"

# Speakers of SVIT turns (schema.py re-exports them).
USER = "user"
GPT = "gpt"
SPEAKERS: tuple[str, str] = (USER, GPT)

# Tasks whose conversations hold many independent QA pairs: each pair becomes its own sample.
PER_QA_TASKS: frozenset[str] = frozenset(t for t, spec in TASK_SPECS.items() if spec.per_qa_samples)


# The source column of SVIT data, and the box frame of SVIT texts (see svit_data.frames).
SVIT_SOURCE = "svit"
# Third-party samples have no SVIT task (empty ``task``); recipes count them under this label.
NO_TASK_LABEL = "none"
TASK_LABELS: tuple[str, ...] = (*TASKS, NO_TASK_LABEL)  # task index -> label; index len(TASKS) is no task
ORIGINAL_FRAME = "original"


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return task


def task_spec(task: str) -> TaskSpec:
    return TASK_SPECS[check_task(task)]
