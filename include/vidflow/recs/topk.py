"""Top-k of a score matrix in blocks, cheaper than argpartition over every score.

For each row, the maxima of ``k`` or more disjoint column chunks give a lower bound on the
row's k-th best score (k different chunks each hold a score at least that high), so only
scores at or above the k-th largest chunk maximum can be in the top k. Those few are
found with one comparison per score and sorted; argpartition touches every score with a
much larger constant. Exact: ties at the bound are all kept before the final sort.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def chunked_top_k(scores: FloatArray, k: int, chunk: int | None = None) -> IntArray:
    """Column indexes of the k best scores per row, best first (ties: lower index
    first). ``scores`` must be finite; k <= columns."""
    rows, cols = scores.shape
    if not 0 < k <= cols:
        raise ValueError(f"k must be in 1..{cols}, got {k}")
    chunk = chunk or max(1, cols // (10 * k))  # ~10k chunks: measured best
    n_chunks = cols // chunk
    if n_chunks < k:  # too few chunks for the bound: plain argpartition
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        best: IntArray = np.take_along_axis(part, order, axis=1).astype(np.int64)
        return best
    blocks = scores[:, : n_chunks * chunk].reshape(rows, n_chunks, chunk)
    maxima = blocks.max(axis=2)
    bound = np.partition(maxima, n_chunks - k, axis=1)[:, n_chunks - k]
    # only the chunks whose maximum reaches the bound can hold a top-k score
    cr, cc = np.nonzero(maxima >= bound[:, None])
    cand = blocks[cr, cc]  # (chunks, chunk)
    keep = cand >= bound[cr, None]
    sub_r, sub_j = np.nonzero(keep)
    r = cr[sub_r]
    c = cc[sub_r] * chunk + sub_j
    v = cand[sub_r, sub_j]
    tail = n_chunks * chunk
    if tail < cols:  # the columns after the last whole chunk, checked directly
        tr, tc = np.nonzero(scores[:, tail:] >= bound[:, None])
        r = np.concatenate([r, tr])
        c = np.concatenate([c, tc + tail])
        v = np.concatenate([v, scores[tr, tc + tail]])
    order = np.lexsort((c, -v, r))  # by row, then best score, then index
    r, c = r[order], c[order]
    starts = np.searchsorted(r, np.arange(rows))
    take = (starts[:, None] + np.arange(k)[None, :]).ravel()
    out: IntArray = c[take].reshape(rows, k).astype(np.int64)
    return out
