"""Records in the SVIT original format, shards written atomically as the run goes, and the rejection log.

Layout of ``OUT``::

    OUT/<task>/shard-<i>of<N>-<chunk>.jsonl   one image record per line (read by --source)
    OUT/rejections/<task>-<i>of<N>-<chunk>.jsonl  rejection parts, merged at the end into
    OUT/rejections.jsonl                      (rejections-<i>of<N>.jsonl when --shard N > 1)
    OUT/summary.json                          counts, tokens, cost (summary-<i>of<N>.json likewise)
    OUT/generate_config.json                  the resolved configuration

A shard's content depends only on its images and the cached answers, so a rerun rewrites it identically.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

from svit_data.atomic import TEMP, process_alive, write_text
from svit_data.builders.parsers import QA
from svit_data.errors import InputError
from svit_data.state import GenerationSelection
from svit_data.tasks import task_spec

log = logging.getLogger(__name__)
_TEMP_NAME = re.compile(rf"\.(.+)\.{TEMP}-(\d+)-[0-9a-f]+")


def write_atomic(path: Path, text: str) -> None:
    """Generated records cost money: write them durably (fsync), so a crash never loses a finished shard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text, durable=True)


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if not lines:
        path.unlink(missing_ok=True)
        return 0
    write_atomic(path, "\n".join(lines) + "\n")
    return len(lines)


def conversations_to_svit(
    task: str, conversations: list[list[QA]], question: str | None = None
) -> list[dict]:
    """Parsed turns -> SVIT ``conversations`` (one entry per conversation; ``from`` user/gpt)."""
    if task_spec(task).drawn_question:  # one turn: the drawn question, then the reply
        qa = conversations[0][0]
        return [
            {
                "content": [
                    {"from": "user", "value": question or qa.question},
                    {"from": "gpt", "value": qa.answer},
                ]
            }
        ]
    return [
        {
            "content": [
                turn
                for qa in pairs
                for turn in ({"from": "user", "value": qa.question}, {"from": "gpt", "value": qa.answer})
            ]
        }
        for pairs in conversations
    ]


def read_selections(folder: str | Path) -> dict[str, dict]:
    """``{summary file name: its "selection" record}`` of a generate output folder (``--select`` runs)."""
    found = {}
    for path in sorted(Path(folder).glob("summary*.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the generation summary: {exc}", file=str(path)) from None
        if isinstance(summary, dict) and isinstance(summary.get("selection"), dict):
            found[path.name] = summary["selection"]
    return found


def generation_selections(folders: Iterable[str | Path]) -> dict[str, GenerationSelection] | None:
    """The ``--select`` records of the generate output folders among ``folders``, for the build state.

    Keyed ``<folder name>/<summary file>`` (no home directories in cards); None when there are none.
    """
    found = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            continue
        for name, record in read_selections(folder).items():
            missing = [f.name for f in fields(GenerationSelection) if f.name not in record]
            if missing:
                raise InputError(
                    f"the selection record lacks {', '.join(missing)}; rerun generate with --select",
                    file=str(folder / name),
                    field="selection",
                )
            found[f"{folder.name}/{name}"] = GenerationSelection(
                **{f.name: record[f.name] for f in fields(GenerationSelection)}
            )
    return found or None


def shard_tag(index: int, count: int) -> str:
    return f"{index:03d}of{count:03d}"


class OutputLayout:
    def __init__(self, out: str | Path, shard_index: int = 0, shard_count: int = 1):
        self.out = Path(out)
        self.tag = shard_tag(shard_index, shard_count)
        self.single = shard_count == 1

    def shard(self, task: str, chunk: int) -> Path:
        return self.out / task / f"shard-{self.tag}-{chunk:05d}.jsonl"

    def rejection_part(self, task: str, chunk: int) -> Path:
        return self.out / "rejections" / f"{task}-{self.tag}-{chunk:05d}.jsonl"

    @property
    def rejections(self) -> Path:
        return self.out / ("rejections.jsonl" if self.single else f"rejections-{self.tag}.jsonl")

    @property
    def summary(self) -> Path:
        return self.out / ("summary.json" if self.single else f"summary-{self.tag}.json")

    @property
    def config(self) -> Path:
        return self.out / "generate_config.json"

    @property
    def selected_ids(self) -> Path:
        """The image ids ``--select`` chose, sorted, one per line."""
        return self.out / ("selected_ids.txt" if self.single else f"selected_ids-{self.tag}.txt")

    def remove_stale_tmp(self) -> int:
        """Temporary files of a killed run (never renamed, so never read) are removed on restart.

        Only those whose writer is gone (the pid in ``.<name>.tmp-<pid>-<token>``, as
        :func:`svit_data.atomic.temp_path` names them), and with ``--shard i/N`` only this shard's: another
        process writing into the same folder keeps its files.
        """
        stale = []
        for path in self.out.glob(f"**/.*.{TEMP}-*"):
            match = _TEMP_NAME.fullmatch(path.name)
            if not match or not path.is_file() or process_alive(int(match.group(2))):
                continue
            if self.single or self.tag in match.group(1):
                stale.append(path)
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            log.warning("removed %d temporary file(s) of killed runs in %s", len(stale), self.out)
        return len(stale)

    def merge_rejections(self) -> int:
        parts = sorted((self.out / "rejections").glob(f"*-{self.tag}-*.jsonl"))
        lines = [line for part in parts for line in part.read_text(encoding="utf-8").splitlines() if line]
        write_atomic(self.rejections, "\n".join(lines) + ("\n" if lines else ""))
        return len(lines)
