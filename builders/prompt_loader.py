"""Task prompts stored as files: ours (package data) or a user's directory, in LLaVA's or SVIT's layout.

A prompt directory holds, per task, either a folder (ours and LLaVA's layout) or a single file (SVIT's).

**Folder per task** (``conversation``, ``complex_reasoning``, ``referring_qa``, ``detail_description``), (``conversation``, ``complex_reasoning``, ``referring_qa``,
``detail_description``), each with:

- ``system_message.txt`` (or ``system.txt``): the system message;
- optional few-shot pairs ``NNN_caps.txt`` (an example context, sent as a user turn) and ``NNN_conv.txt``
  (the example answer, sent as an assistant turn) -- the layout of LLaVA's released prompts;
- optional ``system_message_vision.txt``: the system message when the image is sent too (``--send-image``);
  without it, the system message followed by our note that the image is attached (``vision_note.txt``);
- optional ``user_template.txt`` with a ``{context}`` placeholder (default: the context alone);
- for ``detail_description``, optional ``instructions.txt``: the pool of user questions, one per line
  (default: ours). A record's question is drawn from it, seeded by (seed, image id); it is not sent to the LLM.

**SVIT's released layout**: ``prompts/<task>.txt`` holds the task's system prompt (zero-shot, no examples;
``complex-reasoning.txt`` spellings are accepted too) and ``data/questions.txt`` the detail-description
questions. ``--prompts`` may name the repository root (holding ``prompts/``) or the ``prompts`` folder itself;
the questions file is looked up as ``data/questions.txt`` beside ``prompts/`` or ``questions.txt`` inside it,
and is optional (default: ours). The user message is the context alone. ``<task>_vision.txt`` beside a
prompt file is its variant for vision teachers.
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
VISION_SYSTEM = "system_message_vision.txt"
VISION_NOTE = "vision_note.txt"
SVIT_PROMPTS = "prompts"
SVIT_QUESTIONS = "questions.txt"
_FEWSHOT = re.compile(r"^(\d+)_caps\.txt$")


@dataclass(frozen=True)
class TaskPrompt:
    task: str
    system: str
    examples: tuple[tuple[str, str], ...]
    user_template: str
    instructions: tuple[str, ...]
    source: str
    vision_system: str = ""  # system message when the image is sent too ("": system + our vision note)

    @property
    def hash(self) -> str:
        return self.hash_for(vision=False)

    def hash_for(self, vision: bool) -> str:
        """Hash of what is sent: the text-only prompt, or its vision variant."""
        payload = [self.task, self.system, self.examples, self.user_template, self.instructions]
        if vision:
            payload.append(self.system_for(vision=True))
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    def system_for(self, vision: bool) -> str:
        if not vision:
            return self.system
        return self.vision_system or f"{self.system}\n\n{_read(builtin_dir() / VISION_NOTE)}"

    def messages(self, context: str, *, vision: bool = False) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_for(vision)}]
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


def _svit_prompt_file(root: Path, task: str) -> Path | None:
    """SVIT's ``<task>.txt`` for ``task`` in ``root`` or ``root/prompts``, if there is one."""
    for folder in (root, root / SVIT_PROMPTS):
        for name in (task, task.replace("_", "-")):
            if (folder / f"{name}.txt").is_file():
                return folder / f"{name}.txt"
    return None


def _svit_questions(prompt_file: Path) -> Path | None:
    folder = prompt_file.parent
    for candidate in (folder / SVIT_QUESTIONS, folder.parent / "data" / SVIT_QUESTIONS):
        if candidate.is_file():
            return candidate
    return None


def _instruction_pool(pool: Path) -> tuple[str, ...]:
    instructions = tuple(line.strip() for line in _read(pool).splitlines() if line.strip())
    if not instructions:
        raise InputError("instruction pool is empty", file=str(pool))
    return instructions


def _load_svit_prompt(prompt_file: Path, task: str) -> TaskPrompt:
    system = _read(prompt_file)
    if not system:
        raise InputError("system prompt is empty", file=str(prompt_file))
    instructions: tuple[str, ...] = ()
    if task_spec(task).drawn_question:
        questions = _svit_questions(prompt_file)
        instructions = _instruction_pool(questions or builtin_dir() / task / INSTRUCTIONS)
    vision = prompt_file.with_name(f"{prompt_file.stem}_vision.txt")
    vision_system = _read(vision) if vision.is_file() else ""
    return TaskPrompt(task, system, (), "{context}", instructions, str(prompt_file), vision_system)


def load_task_prompt(directory: str | Path, task: str) -> TaskPrompt:
    check_task(task)
    root = Path(directory)
    folder = root / task
    svit_file = None if folder.is_dir() else _svit_prompt_file(root, task)
    if svit_file is not None:
        return _load_svit_prompt(svit_file, task)
    if not folder.is_dir():
        raise InputError(
            f"prompt directory has no folder or file for task {task!r} (expected "
            f"{folder}/system_message.txt or {root}/prompts/{task}.txt)",
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
        instructions = _instruction_pool(pool)
    vision_system = _read(folder / VISION_SYSTEM) if (folder / VISION_SYSTEM).is_file() else ""
    return TaskPrompt(task, system, tuple(examples), template, instructions, str(folder), vision_system)


def load_prompts(
    tasks: list[str] | tuple[str, ...], directory: str | Path | None = None
) -> dict[str, TaskPrompt]:
    """Prompts for ``tasks`` from ``directory`` (a user's), else ours."""
    root = Path(directory) if directory else builtin_dir()
    if not root.is_dir():
        raise InputError("prompt directory not found", file=str(root))
    return {task: load_task_prompt(root, task) for task in tasks}
