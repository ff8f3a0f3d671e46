"""Task prompts stored as files: ours (package data) or a user's directory, including LLaVA's layout.

A prompt directory holds one folder per task (``conversation``, ``complex_reasoning``, ``referring_qa``,
``detail_description``), each with:

- ``system_message.txt`` (or ``system.txt``): the system message;
- optional few-shot pairs ``NNN_caps.txt`` (an example context, sent as a user turn) and ``NNN_conv.txt``
  (the example answer, sent as an assistant turn) -- the layout of LLaVA's released prompts;
- optional ``user_template.txt`` with a ``{context}`` placeholder (default: the context alone);
- for ``detail_description``, optional ``instructions.txt``: the pool of user questions, one per line
  (default: ours). A record's question is drawn from it, seeded by (seed, image id); it is not sent to the LLM.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from svit_data.errors import InputError
from svit_data.tasks import check_task, task_spec

SYSTEM_FILES = ("system_message.txt", "system.txt")
USER_TEMPLATE = "user_template.txt"
INSTRUCTIONS = "instructions.txt"
_FEWSHOT = re.compile(r"^(\d+)_caps\.txt$")


@dataclass(frozen=True)
class TaskPrompt:
    task: str
    system: str
    examples: tuple[tuple[str, str], ...]
    user_template: str
    instructions: tuple[str, ...]
    source: str

    @property
    def hash(self) -> str:
        payload = [self.task, self.system, self.examples, self.user_template, self.instructions]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    def messages(self, context: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}]
        for caps, conv in self.examples:
            messages += [{"role": "user", "content": caps}, {"role": "assistant", "content": conv}]
        messages.append({"role": "user", "content": self.user_template.replace("{context}", context)})
        return messages

    def question(self, image_id: int, seed: int) -> str:
        """The detail-description question of one image, drawn reproducibly from the instruction pool."""
        if not self.instructions:
            raise ValueError(f"task {self.task} has no instruction pool")
        return random.Random(f"{seed}:{image_id}").choice(self.instructions)


def builtin_dir() -> Path:
    return Path(str(resources.files("svit_data.builders.prompts")))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise InputError("prompt file is not UTF-8 text", file=str(path)) from exc


def load_task_prompt(directory: str | Path, task: str) -> TaskPrompt:
    check_task(task)
    root = Path(directory)
    folder = root / task
    if not folder.is_dir():
        raise InputError(
            f"prompt directory has no folder for task {task!r} (expected {folder}/system_message.txt)",
            file=str(root),
        )
    system_file = next((folder / n for n in SYSTEM_FILES if (folder / n).exists()), None)
    if system_file is None:
        raise InputError(
            f"no system message for task {task!r} (expected system_message.txt)", file=str(folder)
        )
    system = _read(system_file)
    if not system:
        raise InputError("system message is empty", file=str(system_file))
    examples = []
    for caps in sorted(folder.iterdir()):
        match = _FEWSHOT.match(caps.name)
        if match:
            conv = folder / f"{match.group(1)}_conv.txt"
            if not conv.exists():
                raise InputError(f"few-shot example has no answer file {conv.name}", file=str(caps))
            examples.append((_read(caps), _read(conv)))
    template = _read(folder / USER_TEMPLATE) if (folder / USER_TEMPLATE).exists() else "{context}"
    if "{context}" not in template:
        raise InputError("user template has no {context} placeholder", file=str(folder / USER_TEMPLATE))
    instructions: tuple[str, ...] = ()
    if task_spec(task).drawn_question:
        pool = (
            folder / INSTRUCTIONS if (folder / INSTRUCTIONS).exists() else builtin_dir() / task / INSTRUCTIONS
        )
        instructions = tuple(line.strip() for line in _read(pool).splitlines() if line.strip())
        if not instructions:
            raise InputError("instruction pool is empty", file=str(pool))
    return TaskPrompt(task, system, tuple(examples), template, instructions, str(folder))


def load_prompts(
    tasks: list[str] | tuple[str, ...], directory: str | Path | None = None
) -> dict[str, TaskPrompt]:
    """Prompts for ``tasks`` from ``directory`` (a user's), else ours."""
    root = Path(directory) if directory else builtin_dir()
    if not root.is_dir():
        raise InputError("prompt directory not found", file=str(root))
    return {task: load_task_prompt(root, task) for task in tasks}
