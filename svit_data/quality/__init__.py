"""The data quality gate: one set of checks with reason codes, for ingested and generated data.

- :mod:`.base`: reason codes (:data:`REASONS`), findings, the check protocol, :class:`QualityConfig`;
- :mod:`.text`: error and refusal replies, empty answers, answers citing the source text;
- :mod:`.referring`: ``<st>..<ed>`` text and boxes, with the documented safe repairs;
- :mod:`.samples`: every per-sample check in one call (turn order, quota, duplicates in an image);
- :mod:`.near_duplicates`: templated long answers across the pool (MinHash LSH);
- :mod:`.signals`: complexity signals stored as pool columns.

A check flags; nothing is dropped here. Recipes and the trainer skip samples with an excluding flag.
"""

from svit_data.quality.base import EXCLUDING, REASONS, Finding, QualityConfig, Reason, is_excluding
from svit_data.quality.samples import SampleCheck, check_qa, check_sample

__all__ = [
    "EXCLUDING",
    "REASONS",
    "Finding",
    "QualityConfig",
    "Reason",
    "SampleCheck",
    "check_qa",
    "check_sample",
    "is_excluding",
]
