"""Exact top-k of a score matrix at close to the cost of reading it once.

For each row, split the columns into ``n_chunks >= k`` disjoint chunks and take each
chunk's maximum. The k-th largest chunk maximum is a lower bound on the row's k-th best
score (k different chunks each hold a score at least that high), so only scores at or
above it can be in the top k, and only chunks whose maximum reaches it can hold them.

The chunks are strided (chunk j = columns j, j + n_chunks, j + 2 n_chunks, ...): their
maxima are an element-wise maximum over contiguous slices of the row, which vectorises.
The kernel is compiled with numba and runs one row per iteration of a parallel loop, so
a row is read from memory once for its maxima and its few candidates are then picked
from cache: a quickselect finds the bound among the chunk maxima, the chunks that reach
it are walked in column order, and a k-slot insertion keeps the best. The numpy
formulation of the same bound (gather the winning chunks, filter, ``lexsort``) cost 1.5x
the matrix product on its own; ``argpartition`` costs 8x.

``-inf`` is allowed (masked items: they sort last, as with argpartition); NaN is not.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numba
import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
T = TypeVar("T")


def default_chunks(k: int, cols: int) -> int:
    """~4 chunks per wanted item (measured best at k = 50, 10k columns: fewer make the
    bound loose, more make the bound's quickselect dearer), at least k and at most a
    chunk per 4 columns."""
    return max(k, min(4 * k, cols // 4))


def chunked_top_k(scores: FloatArray, k: int, n_chunks: int | None = None) -> IntArray:
    """Column indexes of the k best scores per row, best first; ties: lower index first
    (the order of ``np.lexsort`` on (index, -score)). ``1 <= k <= columns``."""
    rows, cols = scores.shape
    n_chunks = _checked_chunks(k, cols, n_chunks)
    best = np.empty((rows, k), dtype=np.int64)
    if rows == 0:
        return best
    nan_rows = np.zeros(rows, dtype=np.bool_)
    kernel = _top_k_rows_serial if in_block_worker() else _top_k_rows
    kernel(np.ascontiguousarray(scores, dtype=np.float32), k, n_chunks, best, nan_rows)
    _refuse_nan(nan_rows)
    return best


def _checked_chunks(k: int, cols: int, n_chunks: int | None) -> int:
    if not 0 < k <= cols:
        raise ValueError(f"k must be in 1..{cols}, got {k}")
    n_chunks = n_chunks or default_chunks(k, cols)
    if n_chunks < k or n_chunks > cols:
        raise ValueError(f"n_chunks must be in {k}..{cols}, got {n_chunks}")
    return n_chunks


def _refuse_nan(nan_rows: npt.NDArray[np.bool_], first_row: int = 0) -> None:
    if nan_rows.any():
        rows = (np.flatnonzero(nan_rows)[:5] + first_row).tolist()
        raise ValueError(f"scores contain NaN (rows {rows})")


def blocked_top_k(
    left: FloatArray,
    right_t: FloatArray,
    k: int,
    block: int = 2048,
    bias: FloatArray | None = None,
    threads: int | None = None,
) -> IntArray:
    """Top-k columns of ``left @ right_t (+ bias)`` per row, one block of rows at a
    time, so the full score matrix is never held: the batch-scoring kernel, run on
    :func:`map_row_blocks`' workers."""
    rows, cols = left.shape[0], right_t.shape[1]
    n_chunks = _checked_chunks(k, cols, None)
    out = np.empty((rows, k), dtype=np.int64)
    nan_rows = np.zeros(rows, dtype=np.bool_)
    local = threading.local()

    def one(start: int, end: int) -> None:
        part = left[start:end]
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = np.empty((min(block, rows), cols), dtype=np.float32)
        scores = buffer[: len(part)]
        np.matmul(part, right_t, out=scores)
        if bias is not None:
            scores += bias
        _top_k_rows_serial(scores, k, n_chunks, out[start:end], nan_rows[start:end])

    map_row_blocks(rows, block, one, threads)
    _refuse_nan(nan_rows)
    return out


_worker = threading.local()


def in_block_worker() -> bool:
    """True on a :func:`map_row_blocks` worker thread: kernels there run serially."""
    return bool(getattr(_worker, "active", False))


def map_row_blocks(
    rows: int, block: int, fn: Callable[[int, int], T], threads: int | None = None
) -> list[T]:
    """``fn(start, end)`` for each block of ``rows``, in order, on ``threads`` worker
    threads (default: one per CPU) with BLAS held to one thread per call.

    Each worker takes whole blocks, product and selection, so one block's selection
    overlaps another's product. A multi-threaded product followed by a multi-threaded
    selection is slower on few cores: BLAS's idle threads spin against the selection's
    (measured at 100k x 10k, top 50 on 2 cores: 2.75x the bare product, against 1.5x
    this way). :func:`chunked_top_k` called on a worker selects on that thread."""
    starts = range(0, rows, block)
    workers = max(1, min(threads or os.cpu_count() or 1, len(starts)))

    def run(start: int) -> T:
        _worker.active = True
        try:
            return fn(start, min(start + block, rows))
        finally:
            _worker.active = False

    if in_block_worker():  # nested: already on a worker, with BLAS held to one thread
        return [fn(start, min(start + block, rows)) for start in starts]
    if workers == 1:
        with threadpool_limits(limits=1, user_api="blas"):
            return [run(start) for start in starts]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, starts))


@numba.njit(cache=True, nogil=True)
def _kth_largest(values: FloatArray, k: int) -> float:
    """The k-th largest of ``values`` by quickselect (Hoare); reorders ``values``."""
    lo, hi = 0, values.shape[0] - 1
    target = k - 1
    while lo < hi:
        pivot = values[(lo + hi) >> 1]
        i, j = lo, hi
        while i <= j:
            while values[i] > pivot:
                i += 1
            while values[j] < pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    return float(values[target])


@numba.njit(cache=True, nogil=True, parallel=True)
def _top_k_rows(
    scores: FloatArray, k: int, n_chunks: int, out: IntArray, nan_rows: npt.NDArray[np.bool_]
) -> None:
    """Every row on numba's threads."""
    for i in numba.prange(scores.shape[0]):
        nan_rows[i] = _top_k_row(scores[i], k, n_chunks, out[i])


@numba.njit(cache=True, nogil=True)
def _top_k_rows_serial(
    scores: FloatArray, k: int, n_chunks: int, out: IntArray, nan_rows: npt.NDArray[np.bool_]
) -> None:
    """Every row on the calling thread (without the GIL): for callers that run their own
    threads, as :func:`blocked_top_k` does."""
    for i in range(scores.shape[0]):
        nan_rows[i] = _top_k_row(scores[i], k, n_chunks, out[i])


@numba.njit(cache=True, nogil=True)
def _top_k_row(row: FloatArray, k: int, n_chunks: int, out: IntArray) -> bool:
    """The k best columns of one row into ``out``; True (and ``out`` untouched) if the row
    holds a NaN."""
    cols = row.shape[0]
    per = cols // n_chunks
    whole = per * n_chunks
    maxima = row[:n_chunks].copy()
    nan = 0
    for j in range(n_chunks):
        nan += maxima[j] != maxima[j]
    for s in range(1, per):
        segment = row[s * n_chunks : (s + 1) * n_chunks]
        for j in range(n_chunks):
            best, v = maxima[j], segment[j]
            nan += v != v
            maxima[j] = best if best >= v else v
    for j in range(whole, cols):
        nan += row[j] != row[j]
    if nan:
        return True
    bound = _kth_largest(maxima.copy(), k)
    hot = np.empty(n_chunks, dtype=np.int64)
    n_hot = 0
    for j in range(n_chunks):
        if maxima[j] >= bound:
            hot[n_hot] = j
            n_hot += 1
    # the k best so far, best first (value descending, then column ascending): the
    # candidates arrive in column order, so a strictly-greater insertion keeps ties
    # by the lower column
    top_v = np.full(k, -np.inf, dtype=np.float32)
    top_c = np.full(k, cols, dtype=np.int64)
    filled = 0
    for s in range(per):
        base = s * n_chunks
        for h in range(n_hot):
            c = base + hot[h]
            filled = _keep(row[c], c, bound, top_v, top_c, filled)
    for c in range(whole, cols):  # the last cols % n_chunks columns, in no chunk
        filled = _keep(row[c], c, bound, top_v, top_c, filled)
    out[:] = top_c
    return False


@numba.njit(cache=True, nogil=True, inline="always")
def _keep(v: float, c: int, bound: float, top_v: FloatArray, top_c: IntArray, filled: int) -> int:
    """Insert column ``c`` scoring ``v`` into the best-first buffers if it belongs."""
    k = int(top_v.shape[0])
    if v < bound or (filled == k and v <= top_v[k - 1]):
        return filled
    at = min(filled, k - 1)
    while at > 0 and top_v[at - 1] < v:
        top_v[at] = top_v[at - 1]
        top_c[at] = top_c[at - 1]
        at -= 1
    top_v[at] = v
    top_c[at] = c
    return min(filled + 1, k)
