"""The concept matcher as it was before the byte-level tokenizer (pyarrow Unicode kernels on every
text, scipy COO -> CSR): kept as the oracle the faster matcher must agree with exactly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from svit_data.boxes import BOX_RE, END, START
from svit_data.recipes.matching import FormTable
from svit_data.recipes.vocabulary import TEXT_PATTERN
from svit_data.recipes.yesno import count_yes_no
from svit_data.schema import GPT


def prose_words(values: pa.Array) -> np.ndarray:
    """Whitespace words per text once boxes and ``<st>``/``<ed>`` markers are removed."""
    box_list = rf"{BOX_RE.pattern}(?:\s*,\s*{BOX_RE.pattern})*"
    text = pc.replace_substring_regex(values, box_list, " ")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, f"{START}|{END}", " "))
    words = (
        pc.list_value_length(pc.utf8_split_whitespace(text))
        .fill_null(0)
        .to_numpy(zero_copy_only=False)
        .copy()
    )
    words[pc.binary_length(text).to_numpy(zero_copy_only=False) == 0] = 0  # "" splits into [""]
    return words


def oracle_batch(batch: pa.RecordBatch, forms: FormTable, num_concepts: int) -> dict[str, np.ndarray]:
    """Matrix, yes, no and answer words of one batch, the old way."""
    n = batch.num_rows
    conversations = batch.column("conversations")
    turns = pc.list_flatten(conversations)
    sample_of_turn = pc.list_parent_indices(conversations).to_numpy()
    values = turns.field("value").fill_null("")
    is_answer = pc.equal(turns.field("from"), GPT).fill_null(False).to_numpy(zero_copy_only=False)
    yes, no = count_yes_no(values, is_answer, sample_of_turn, n)
    text = pc.replace_substring_regex(pc.utf8_lower(values), TEXT_PATTERN, " ")
    tokens = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(text))
    turn_of_token = pc.list_parent_indices(tokens).to_numpy()
    answer_words = np.bincount(sample_of_turn, weights=prose_words(values) * is_answer, minlength=n)
    word_ids = pc.index_in(pc.list_flatten(tokens), value_set=forms.words).fill_null(-1).to_numpy()
    positions, concepts = match_forms(forms, word_ids, turn_of_token)
    rows = sample_of_turn[turn_of_token[positions]]
    matrix = sp.csr_matrix(
        (np.ones(len(rows), np.int32), (rows, concepts)), shape=(n, num_concepts), dtype=np.int32
    )
    matrix.sum_duplicates()
    matrix = sp.csr_matrix(
        (np.minimum(matrix.data, 255).astype(np.uint8), matrix.indices, matrix.indptr), shape=matrix.shape
    )
    return {"matrix": matrix, "yes": yes, "no": no, "answer_words": answer_words.astype(np.int32)}


def _concepts(forms: FormTable, pos: np.ndarray, form: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = forms.form_indptr[form + 1] - forms.form_indptr[form]
    offsets = np.repeat(forms.form_indptr[form] - (np.cumsum(width) - width), width)
    return np.repeat(pos, width), forms.form_concepts[np.arange(width.sum()) + offsets]


def match_forms(forms: FormTable, word_ids: np.ndarray, turn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(token position, concept) of every form occurrence; ``word_ids`` is -1 for unknown words. Single
    words by the word -> form array, longer forms by ``searchsorted`` in the sorted codes of each length."""
    known = np.flatnonzero(word_ids >= 0)
    form = forms.word_form[word_ids[known]]
    hit = form >= 0
    hits = [_concepts(forms, known[hit], form[hit])]
    size = len(word_ids)
    for n, (codes, indices) in forms.ngrams.items():
        starts = np.zeros(forms.base, bool)  # words that begin a form of this length
        starts[codes // forms.base ** (n - 1)] = True
        pos = known[starts[word_ids[known]]]
        pos = pos[pos + n <= size]
        code = word_ids[pos].astype(np.int64)
        for k in range(1, n):
            nxt = word_ids[pos + k]
            keep = (nxt >= 0) & (turn[pos + k] == turn[pos])
            pos, code = pos[keep], code[keep] * forms.base + nxt[keep]
        at = np.minimum(np.searchsorted(codes, code), len(codes) - 1)
        found = codes[at] == code
        hits.append(_concepts(forms, pos[found], indices[at[found]]))
    return np.concatenate([h[0] for h in hits]), np.concatenate([h[1] for h in hits])
