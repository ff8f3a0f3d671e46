"""The concept vocabulary: named visual concepts, each with surface forms to look for in text.

A vocabulary file is JSON: ``{"name": ..., "concepts": [{"concept": "dog", "category": "object",
"synonyms": ["puppy"], "weight": 1.0}, ...]}`` (``category``, ``synonyms`` and ``weight`` optional; a
bare list of strings is accepted as ``concepts`` too). The bundled default (``recipes/data/concepts.json``)
is ours: the visual concepts that MME and MMBench test. ``svit-recipe concepts`` writes the same format.

Surface forms are normalized exactly as sample text is (:func:`normalize`): lowercase, every run of
characters that are not letters or digits becomes one space. The loader adds simple plural and singular
forms of each form's last word, so ``traffic light`` also finds ``traffic lights`` and ``people`` need
only be listed once. A form may belong to several concepts (``road`` is an object and a scene).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from svit_data.errors import InputError

NORMALIZATION_VERSION = "1"
MAX_WORDS = 4  # longest surface form, in words (n-gram matching is vectorized up to this length)
TEXT_PATTERN = r"[^\pL\pN\s]+"  # RE2 (pyarrow): runs of non-letter/digit/space -> " ", then split on spaces
_NON_WORD = re.compile(r"[\W_]+")
IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "knife": "knives",
    "leaf": "leaves",
    "shelf": "shelves",
    "wolf": "wolves",
    "sheep": "sheep",
    "fish": "fish",
    "deer": "deer",
    "goose": "geese",
}
IRREGULAR_SINGULARS = {plural: singular for singular, plural in IRREGULAR_PLURALS.items()}


def normalize(text: str) -> str:
    """Lowercase; every run of non-letter, non-digit characters becomes one space; trimmed."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def plural(word: str) -> str:
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def singular(word: str) -> str | None:
    """A guess at the singular of a plural-looking word, or None when it does not look plural."""
    if word in IRREGULAR_SINGULARS:
        return IRREGULAR_SINGULARS[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return None
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def inflections(form: str) -> list[str]:
    """``form`` plus the plural and (when it looks plural) singular of its last word."""
    words = form.split()
    out = [form, " ".join([*words[:-1], plural(words[-1])])]
    one = singular(words[-1])
    if one:
        out.append(" ".join([*words[:-1], one]))
    return out


@dataclass(frozen=True)
class Concept:
    name: str = field(metadata={"help": "the concept, as reported in diagnostics"})
    category: str = field(default="", metadata={"help": "object, color, count, position, ... (free text)"})
    synonyms: tuple[str, ...] = field(default=(), metadata={"help": "other surface forms of the concept"})
    weight: float = field(default=1.0, metadata={"help": "w_c in the diversity objective (> 0)"})

    def __post_init__(self) -> None:
        if not normalize(self.name):
            raise ValueError(f"concept {self.name!r} has no letters or digits")
        if not self.weight > 0:
            raise ValueError(f"concept {self.name!r}: weight must be > 0, got {self.weight}")


@dataclass(frozen=True)
class Vocabulary:
    """Concepts and their normalized surface forms; :attr:`hash` keys every cache built from it."""

    name: str
    concepts: tuple[Concept, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.concepts:
            raise ValueError("a vocabulary needs at least one concept")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.concepts]

    @property
    def weights(self) -> list[float]:
        return [c.weight for c in self.concepts]

    def forms(self) -> dict[str, list[int]]:
        """Normalized surface form -> indices of the concepts it names (sorted, unique)."""
        out: dict[str, set[int]] = {}
        for index, concept in enumerate(self.concepts):
            for term in (concept.name, *concept.synonyms):
                base = normalize(term)
                if not base:
                    continue
                for form in inflections(base):
                    out.setdefault(form, set()).add(index)
        return {form: sorted(indices) for form, indices in sorted(out.items())}

    @property
    def hash(self) -> str:
        """Hash of what matching depends on: the concepts, their forms and weights, the normalization."""
        canonical = {
            "normalization": NORMALIZATION_VERSION,
            "concepts": [[c.name, c.category, sorted(c.synonyms), c.weight] for c in self.concepts],
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concepts": [
                {"concept": c.name, "category": c.category, "synonyms": list(c.synonyms), "weight": c.weight}
                for c in self.concepts
            ],
        }


def default_vocabulary_path() -> Path:
    return Path(str(resources.files("svit_data.recipes").joinpath("data/concepts.json")))


def _concept(item: Any, *, file: str, index: int) -> Concept:
    where = {"file": file, "record": index}
    if isinstance(item, str):
        item = {"concept": item}
    if not isinstance(item, dict):
        raise InputError("a concept must be a string or an object with 'concept'", **where)
    name = item.get("concept", item.get("name"))
    if not isinstance(name, str) or not normalize(name):
        raise InputError("must be a non-empty string with letters or digits", **where, field="concept")
    synonyms = item.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
        raise InputError("must be a list of strings", **where, field="synonyms")
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        raise InputError(f"must be a number > 0, got {weight!r}", **where, field="weight")
    for term in (name, *synonyms):
        if len(normalize(term).split()) > MAX_WORDS:
            raise InputError(f"{term!r} is longer than {MAX_WORDS} words", **where, field="synonyms")
    category = item.get("category", "")
    return Concept(name.strip(), str(category or ""), tuple(s.strip() for s in synonyms), float(weight))


def parse_vocabulary(data: Any, *, file: str = "<vocabulary>") -> Vocabulary:
    """Check and build a vocabulary from parsed JSON; errors name the file, record and field."""
    if isinstance(data, list):
        data = {"concepts": data}
    if not isinstance(data, dict) or not isinstance(data.get("concepts"), list):
        raise InputError("a vocabulary must be a JSON object with a 'concepts' list", file=file)
    if not data["concepts"]:
        raise InputError("the vocabulary is empty (no concepts)", file=file, field="concepts")
    concepts, seen = [], {}
    for index, item in enumerate(data["concepts"]):
        concept = _concept(item, file=file, index=index)
        key = normalize(concept.name)
        if key in seen:
            raise InputError(
                f"concept {concept.name!r} repeats record {seen[key]}",
                file=file,
                record=index,
                field="concept",
            )
        seen[key] = index
        concepts.append(concept)
    return Vocabulary(str(data.get("name") or Path(file).stem), tuple(concepts), source=file)


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The vocabulary in ``path``, or the bundled default when ``path`` is None."""
    file = Path(path) if path else default_vocabulary_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read the vocabulary: {error.strerror}", file=str(file)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg}, line {error.lineno})", file=str(file)) from None
    return parse_vocabulary(data, file=str(file) if path else "bundled:concepts.json")
