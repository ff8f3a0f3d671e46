"""Would this dataset folder load with ``datasets`` and show in the viewer? Offline (``svit-recipe check``).

It reads the card's YAML, compares it with the build state, then for every config and split checks
the files (present, no strays the card's glob would also pick up), the parquet viewer limits, a full
load and a streaming load with ``datasets``, the schema, and the decoding of a few images. It prints
one table row per split and every problem as one sentence. ``push`` refuses a folder whose card
disagrees with its data (:func:`load_folder` + ``card_problems``) before it uploads anything.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svit_data.errors import SvitError
from svit_data.folder import config_features, read_state
from svit_data.state import BuildState, ConfigState
from svit_data.viewer import inspect_parquet, split_count_problems

IMAGES_PER_SPLIT = 8
log = logging.getLogger(__name__)


@dataclass
class SplitCheck:
    """One row of the report: what was found for one split of one config."""

    config: str
    split: str
    rows: int = 0
    files: int = 0
    cells: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def mark(self, column: str, problems: list[str], ok: str = "ok") -> None:
        self.cells[column] = ok if not problems else "FAIL"
        self.problems += problems


COLUMNS = ("files", "viewer", "load", "schema", "stream", "images")


def load_folder(folder: Path) -> tuple[BuildState, dict[str, Any]]:
    """The build state and the card metadata; errors a user can fix are raised as SvitError."""
    from svit_data.cards import parse_card

    state = read_state(folder)
    if not state.configs:
        raise SvitError(f"{folder} has no built configs")
    card = folder / "README.md"
    if not card.is_file():
        raise SvitError(f"{folder} has no README.md dataset card; rebuild it with 'svit-recipe build'")
    return state, parse_card(card.read_text(encoding="utf-8"), where=str(card))


def _check_files(check: SplitCheck, folder: Path, config: ConfigState) -> list[Path]:
    split = config.splits[check.split]
    paths = [folder / "data" / check.config / name for name in split.files]
    problems = [f"{p.relative_to(folder)} is missing" for p in paths if not p.is_file()]
    on_disk = set((folder / "data" / check.config).glob(f"{check.split}-*.parquet"))
    problems += [f"{p.relative_to(folder)} is not part of the build" for p in sorted(on_disk - set(paths))]
    check.files = len(paths)
    check.mark("files", problems)
    return [p for p in paths if p.is_file()]


def _check_viewer(check: SplitCheck, paths: list[Path], config: ConfigState) -> None:
    from datasets import Features

    declared = config_features(config)
    problems, rows = [], 0
    for path in paths:
        report = inspect_parquet(path)
        rows += report.num_rows
        problems += report.problems
        if report.features is not None and Features.from_dict(report.features) != declared:
            problems.append(f"{path.name}: its declared features differ from the card")
    expected = config.splits[check.split].num_examples
    if rows != expected:
        problems.append(f"the parquet files hold {rows:,} rows, the card says {expected:,}")
    check.mark("viewer", problems)


def _check_images(check: SplitCheck, dataset: Any) -> None:
    import pyarrow.compute as pc

    if "image" not in dataset.column_names:
        check.cells["images"] = "-"
        return
    present = pc.invert(pc.is_null(dataset.data.column("image"))).to_pylist()
    indices = [i for i, p in enumerate(present) if p]
    if not indices:
        check.cells["images"] = "none"
        return
    step = max(1, len(indices) // IMAGES_PER_SPLIT)
    problems = []
    for i in indices[::step][:IMAGES_PER_SPLIT]:
        try:
            dataset[i]["image"].load()
        except Exception as error:  # any decoder failure is a finding, not a crash
            problems.append(f"row {i}: its image does not decode ({type(error).__name__}: {error})")
    check.mark("images", problems, ok=f"{len(indices):,} ok" if not problems else "FAIL")


def _check_load(checks: list[SplitCheck], folder: Path, name: str, config: ConfigState, cache: str) -> None:
    """Load the config as a user would, fully and streaming, and compare with the declared data."""
    from datasets import load_dataset

    from svit_data.schema import FEATURES

    declared = config_features(config)
    try:
        loaded = load_dataset(str(folder), name, cache_dir=cache)
    except Exception as error:  # whatever datasets raises is the answer to "would it load?"
        for check in checks:
            check.mark("load", [f"load_dataset failed: {type(error).__name__}: {error}"])
        return
    try:
        streamed = load_dataset(str(folder), name, streaming=True)
    except Exception as error:
        streamed = None
        stream_error = f"streaming load_dataset failed: {type(error).__name__}: {error}"
    for check in checks:
        dataset = loaded.get(check.split)
        if dataset is None:
            check.mark("load", [f"load_dataset returned no {check.split!r} split"])
            continue
        expected = config.splits[check.split].num_examples
        check.mark(
            "load",
            [] if len(dataset) == expected else [f"loaded {len(dataset):,} rows, expected {expected:,}"],
        )
        schema = [] if dataset.features == declared else ["loaded features differ from the declared ones"]
        if config.schema == "svit" and declared != FEATURES:
            schema.append("declared features are not the svit schema")
        check.mark("schema", schema)
        if streamed is None:
            check.mark("stream", [stream_error])
        else:
            try:
                first = next(iter(streamed[check.split]))
                same = first.get("id") == dataset[0].get("id")
                check.mark("stream", [] if same else ["the first streamed row differs from the loaded one"])
            except Exception as error:
                check.mark("stream", [f"streaming failed: {type(error).__name__}: {error}"])
        _check_images(check, dataset)


def check_folder(folder: Path, state: BuildState, meta: dict[str, Any]) -> tuple[list[SplitCheck], list[str]]:
    """Per-split results and folder-level problems (card vs data, split counts)."""
    import datasets

    from svit_data.cards.validate import card_problems, rendered_card_problems

    datasets.disable_progress_bars()
    general = card_problems(meta, state)
    card = folder / "README.md"
    general += rendered_card_problems(card.read_text(encoding="utf-8"), state, where=str(card))
    results: list[SplitCheck] = []
    with tempfile.TemporaryDirectory(prefix="svit-check-") as cache:
        for name in sorted(state.configs):
            config = state.configs[name]
            general += split_count_problems(name, config.splits)
            checks = [
                SplitCheck(name, split, config.splits[split].num_examples) for split in sorted(config.splits)
            ]
            for check in checks:
                paths = _check_files(check, folder, config)
                _check_viewer(check, paths, config)
            if all(c.cells["files"] == "ok" for c in checks):
                _check_load(checks, folder, name, config, cache)
            results += checks
    general += _contamination(folder, state)
    return results, general


def _contamination(folder: Path, state: BuildState) -> list[str]:
    """A train split holding a probe image is a problem (missing files are reported per split)."""
    from svit_data.decontam import check_decontaminated

    try:
        check_decontaminated(folder, state)
    except SvitError as error:
        return [str(error)]
    except OSError:
        return []
    return []


def format_table(results: list[SplitCheck]) -> str:
    header = ("config", "split", "rows", "files", *COLUMNS[1:], "status")
    rows = [
        (
            r.config,
            r.split,
            f"{r.rows:,}",
            f"{r.files:,}" if r.cells.get("files") == "ok" else "FAIL",
            *(r.cells.get(c, "skipped") for c in COLUMNS[1:]),
            "ok" if not r.problems else "FAIL",
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
    return "\n".join(lines)
