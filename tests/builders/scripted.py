"""A deterministic stand-in for GPT-4: answers each task in SVIT's format from the context it is sent.

Answers depend only on the context text (the first non-system user message), so a re-asked request
gets the same answer as the original; referring answers copy boxes from the context, so they ground.
"""

from __future__ import annotations

import re

LINE = re.compile(r"^- (?P<name>[^:(]+?)(?: \([^)]*\))?: (?P<box>\[[^\]]+\])$", re.MULTILINE)


def text_of(content: str | list) -> str:
    """A message's text: the string itself, or the text parts of a content-part list (image requests)."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


def task_of(body: dict) -> str:
    system = body["messages"][0]["content"]
    if "three different conversations" in system:
        return "conversation"
    if "fifteen question-answer pairs" in system:
        return "complex_reasoning"
    if "ten question-answer pairs" in system:
        return "referring_qa"
    return "detail_description"


def objects(context: str) -> list[tuple[str, str]]:
    section = context.split("Objects:\n", 1)[-1].split("Regions:\n", 1)[0] if "Objects:\n" in context else ""
    return [(m.group("name"), m.group("box")) for m in LINE.finditer(section)] or [("scene", "")]


def answer(body: dict) -> str:
    context = next(text_of(m["content"]) for m in body["messages"] if m["role"] == "user")
    objs = objects(context)
    pick = lambda i: objs[i % len(objs)]  # noqa: E731
    task = task_of(body)
    if task == "conversation":
        blocks = []
        for c in range(3):
            qa = [
                f"Question: Is there a {pick(c * 5 + i)[0]} here?\nAnswer: Yes, I can see a {pick(c * 5 + i)[0]}."
                for i in range(5)
            ]
            blocks.append(f"Topic: part {c + 1}\n" + "\n\n".join(qa))
        return "\n===\n".join(blocks)
    if task == "complex_reasoning":
        return "\n===\n".join(
            f"Question: Why might the {pick(i)[0]} be there?\nAnswer: First, the {pick(i)[0]} "
            f"is visible. Therefore it belongs to the scene."
            for i in range(15)
        )
    if task == "referring_qa":
        return "\n===\n".join(
            f"Question: Where is the <st>{pick(i)[0]}<ed> {pick(i)[1]}?\nAnswer: The "
            f"<st>{pick(i)[0]}<ed> {pick(i)[1]} is in the picture."
            for i in range(10)
        )
    names = ", ".join(name for name, _ in objs[:6])
    return (
        f"The image shows {names}. The scene is calm and well lit, and every object sits in a natural place, "
        f"which gives the picture a clear and ordinary everyday character."
    )
