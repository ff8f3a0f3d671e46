"""Turn an LLM reply into question-answer turns: pure functions, tolerant of the real variations.

Accepted: ``Question:``/``Answer:`` (also ``Q:``/``A:``, ``User:``/``GPT:``, ``Human:``/``Assistant:``)
on separate lines or on one line; numbering (``1.``, ``Question 3:``, ``(2)``); markdown bold labels;
``===`` / ``---`` separators; ``Conversation N`` headers and ``Topic:`` lines; extra blank lines.
Anything that cannot be paired is reported as an issue, never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from svit_data.tasks import REPLY_CONVERSATIONS, REPLY_DESCRIPTION, REPLY_QA, task_spec

_Q = r"question|q|user|human"
_A = r"answer|a|gpt|assistant|ai"
_DECOR = r"(?:\*\*|__)?"
LABEL = re.compile(
    rf"^[ \t]*(?:[-*#>]+[ \t]*)?(?:\(?\d+[.):]\)?[ \t]*)?{_DECOR}[ \t]*(?P<label>{_Q}|{_A})"
    rf"(?:[ \t]*\d+)?[ \t]*{_DECOR}[ \t]*[:：][ \t]*{_DECOR}[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
INLINE_ANSWER = re.compile(
    rf"(?<=\S)[ \t]+{_DECOR}(?P<label>answer|a|gpt|assistant)(?:[ \t]*\d+)?{_DECOR}[ \t]*:", re.IGNORECASE
)
SEPARATOR = re.compile(r"^[ \t]*(?:={3,}|-{3,}|\*{3,})[ \t]*$", re.MULTILINE)
HEADER = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:\*\*|__)?[ \t]*conversation[ \t]*\d*[ \t]*(?:\*\*|__)?[ \t]*[:.]?"
    r"[ \t]*(?:\*\*|__)?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
TOPIC = re.compile(
    r"^[ \t]*(?:[-*#>]+[ \t]*)?(?:\*\*|__)?[ \t]*topic(?:[ \t]*\d+)?[ \t]*(?:\*\*|__)?[ \t]*[:：].*$",
    re.IGNORECASE | re.MULTILINE,
)
_QUESTION_LABELS = {"question", "q", "user", "human"}


@dataclass(frozen=True)
class QA:
    question: str
    answer: str


@dataclass
class Parsed:
    conversations: list[list[QA]] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)

    @property
    def qa_count(self) -> int:
        return sum(len(c) for c in self.conversations)


def _clean(text: str) -> str:
    text = SEPARATOR.sub("", text).strip().strip("*_").strip()
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)


def _split_inline(text: str) -> str:
    """``Question: ... Answer: ...`` on one line -> two lines."""
    lines = []
    for line in text.splitlines():
        match = LABEL.match(line)
        if match and match.group("label").lower() in _QUESTION_LABELS:
            inline = INLINE_ANSWER.search(line, match.end())
            if inline and (inline.group("label").lower() != "a" or match.group("label").lower() == "q"):
                lines += [line[: inline.start()], line[inline.start() :].lstrip()]
                continue
        lines.append(line)
    return "\n".join(lines)


def parse_qa(text: str) -> tuple[list[QA], list[str]]:
    """Question-answer pairs in ``text`` and the issues met on the way."""
    text = TOPIC.sub("", HEADER.sub("", _split_inline(text)))
    matches = list(LABEL.finditer(text))
    pairs: list[QA] = []
    issues: list[str] = []
    question: str | None = None
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        content = _clean(text[match.end() : end])
        if match.group("label").lower() in _QUESTION_LABELS:
            if question is not None:
                issues.append("question without answer")
            question = content
        elif question is None:
            issues.append("answer without question")
        else:
            if question and content:
                pairs.append(QA(question, content))
            else:
                issues.append("empty question or answer")
            question = None
    if question is not None:
        issues.append("question without answer")
    return pairs, issues


def split_conversations(text: str) -> list[str]:
    """Blocks of a multi-conversation reply, split at separators, headers and ``Topic:`` lines."""
    marked = TOPIC.sub(lambda m: "\x00" + m.group(0), text)
    marked = HEADER.sub("\x00", SEPARATOR.sub("\x00", marked))
    return [block for block in marked.split("\x00") if block.strip()]


def parse_description(text: str, per_conversation: int = 1) -> Parsed:
    """A description reply: the whole text (a leading ``Description:`` label removed) is the answer."""
    body = re.sub(
        r"^\s*(?:\*\*|#+\s*)?(?:detailed\s+)?description(?:\*\*)?\s*[:：]\s*",
        "",
        text.strip(),
        flags=re.IGNORECASE,
    ).strip()
    return Parsed([[QA("", body)]] if body else [], [] if body else ["empty description"])


def parse_one_block(text: str, per_conversation: int = 0) -> Parsed:
    """A reply of question-answer pairs that form one conversation."""
    pairs, issues = parse_qa(text)
    return Parsed([pairs] if pairs else [], issues)


def parse_conversations(text: str, per_conversation: int = 5) -> Parsed:
    """A reply of several conversations; without separators, cut into ``per_conversation`` pairs each."""
    parsed = Parsed()
    for block in split_conversations(text):
        pairs, issues = parse_qa(block)
        parsed.issues += issues
        if pairs:
            parsed.conversations.append(pairs)
    if len(parsed.conversations) == 1 and len(parsed.conversations[0]) > per_conversation:
        pairs = parsed.conversations[0]  # no separators: cut into conversations of the expected size
        parsed.conversations = [
            pairs[i : i + per_conversation] for i in range(0, len(pairs), per_conversation)
        ]
        parsed.issues.append("conversations not separated; split by count")
    return parsed


# One parser per reply kind (TaskSpec.reply).
PARSERS = {
    REPLY_DESCRIPTION: parse_description,
    REPLY_QA: parse_one_block,
    REPLY_CONVERSATIONS: parse_conversations,
}


def parse(task: str, text: str, *, per_conversation: int | None = None) -> Parsed:
    """Parse one reply of ``task`` with the parser its TaskSpec names (see the module docstring)."""
    spec = task_spec(task)
    per = spec.qa_per_conversation if per_conversation is None else per_conversation
    return PARSERS[spec.reply](text, per)
