""" "More like this": the top-N related videos of every video, from three item-item
signals the fitted recommender already has.

* ``co-watch``: the co-watch similarity ("watched X, then Y"), the strongest signal
  where viewers have watched both;
* ``collaborative``: cosine of the LightFM item embeddings (each is its id's vector plus
  its tags', so a video with few viewers still has neighbours);
* ``content``: cosine of the TF-IDF tag/title vectors, computed on the catalog given at
  scoring time, so a video processed after the model was trained gets neighbours too.

Each signal proposes its ``per_source`` best neighbours; the lists are merged by
reciprocal-rank fusion (score = sum over signals of ``1 / (fusion_k + rank)``, Cormack et
al. 2009), which needs no tuning of scales that differ by orders of magnitude. ``source``
says which signal ranked the neighbour highest (ties: the order above). Only catalog
videos are candidates and a video is never its own neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from models.candidates.content import item_term_matrix
from models.topk import FloatArray, IntArray, chunked_top_k

SIGNALS = ("co-watch", "collaborative", "content")
BLOCK = 1024


@dataclass(frozen=True)
class RelatedParams:
    n: int = 20
    per_source: int = 50
    fusion_k: float = 60.0
    title_weight: float = 0.3


def _top_neighbours(
    sims: FloatArray, rows: IntArray, k: int
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Best k columns per row of a (rows x catalog) similarity block, the row's own
    video excluded, and which of them are real (similarity > 0)."""
    sims[np.arange(len(rows)), rows] = -np.inf
    k = min(k, sims.shape[1])
    top = chunked_top_k(sims, k) if k else np.empty((len(rows), 0), np.int64)
    ok = np.take_along_axis(sims, top, axis=1) > 0
    return top, ok


def neighbour_lists(
    catalog_ids: pd.Index,
    model_ids: pd.Index,
    cowatch: sp.csr_matrix | None,
    embeddings: FloatArray | None,
    content_vectors: sp.csr_matrix,
    per_source: int,
) -> dict[str, tuple[IntArray, npt.NDArray[np.bool_]]]:
    """Per signal, the (catalog x per_source) neighbour indexes into ``catalog_ids`` and
    which are real. Model signals cover the catalog videos the model knows."""
    n = len(catalog_ids)
    in_model = model_ids.get_indexer(catalog_ids)  # -1: unknown to the model
    known = in_model >= 0
    out: dict[str, tuple[IntArray, npt.NDArray[np.bool_]]] = {}
    k = min(per_source, max(n - 1, 0))

    def blocks(similarity_of: object) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        top = np.zeros((n, k), dtype=np.int64)
        ok = np.zeros((n, k), dtype=bool)
        for start in range(0, n, BLOCK):
            rows = np.arange(start, min(start + BLOCK, n))
            sims = similarity_of(rows)  # type: ignore[operator]
            top[rows], ok[rows] = _top_neighbours(sims, rows, k)
        return top, ok

    if cowatch is not None:
        # catalog x catalog co-watch, zero where either video is unknown to the model
        pick = sp.csr_matrix(
            (np.ones(known.sum(), np.float32), (np.flatnonzero(known), in_model[known])),
            shape=(n, len(model_ids)),
        )
        cw = sp.csr_matrix(pick @ cowatch @ pick.T)
        out["co-watch"] = blocks(lambda rows: np.asarray(cw[rows].todense(), np.float32))
    if embeddings is not None:
        vectors = np.zeros((n, embeddings.shape[1]), dtype=np.float32)
        vectors[known] = embeddings[in_model[known]]
        vectors = normalize(vectors).astype(np.float32)
        vt = np.ascontiguousarray(vectors.T)
        out["collaborative"] = blocks(lambda rows: vectors[rows] @ vt)
    ct = content_vectors
    out["content"] = blocks(lambda rows: np.asarray((ct[rows] @ ct.T).todense(), np.float32))
    return out


def fuse(
    lists: dict[str, tuple[IntArray, npt.NDArray[np.bool_]]], n: int, fusion_k: float
) -> tuple[IntArray, FloatArray, npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """Reciprocal-rank fusion of the signals' lists: (rows x n) neighbours, fused
    scores, the signal (index into ``SIGNALS``) that ranked each highest, validity."""
    rows_n = next(iter(lists.values()))[0].shape[0]
    frames = []
    for signal, (top, ok) in lists.items():
        r, pos = np.nonzero(ok)
        frames.append(
            pd.DataFrame(
                {
                    "row": r,
                    "item": top[r, pos],
                    "rank": pos,
                    "signal": np.int8(SIGNALS.index(signal)),
                }
            )
        )
    merged = pd.concat(frames, ignore_index=True)
    out_items = np.zeros((rows_n, n), dtype=np.int64)
    out_scores = np.zeros((rows_n, n), dtype=np.float32)
    out_signal = np.full((rows_n, n), -1, dtype=np.int8)
    valid = np.zeros((rows_n, n), dtype=bool)
    if merged.empty:
        return out_items, out_scores, out_signal, valid
    merged["rrf"] = 1.0 / (fusion_k + merged["rank"] + 1.0)
    # the signal that ranked it best (lowest rank, then the SIGNALS order)
    best = merged.sort_values(["row", "item", "rank", "signal"], kind="stable").drop_duplicates(
        ["row", "item"]
    )
    total = merged.groupby(["row", "item"], sort=False)["rrf"].sum()
    best = best.set_index(["row", "item"]).assign(rrf=total).reset_index()
    best = best.sort_values(["row", "rrf", "item"], ascending=[True, False, True], kind="stable")
    best["pos"] = best.groupby("row", sort=False).cumcount()
    best = best[best["pos"] < n]
    r, p = best["row"].to_numpy(), best["pos"].to_numpy()
    out_items[r, p] = best["item"].to_numpy()
    out_scores[r, p] = best["rrf"].to_numpy(np.float32)
    out_signal[r, p] = best["signal"].to_numpy(np.int8)
    valid[r, p] = True
    return out_items, out_scores, out_signal, valid


def related_videos(
    catalog: pd.DataFrame,
    model_ids: pd.Index,
    cowatch: sp.csr_matrix | None,
    embeddings: FloatArray | None,
    params: RelatedParams | None = None,
) -> pd.DataFrame:
    """Rows ``item_id, rank, related_item_id, score, source`` (rank 1..<= n) for every
    item of ``catalog`` (``item_id, tags`` and optional ``title``): the candidates."""
    p = params or RelatedParams()
    catalog = catalog.drop_duplicates("item_id").reset_index(drop=True)
    ids = pd.Index(catalog["item_id"].astype(str))
    columns = ["item_id", "rank", "related_item_id", "score", "source"]
    if len(ids) < 2:
        return pd.DataFrame(columns=columns)
    content, _ = item_term_matrix(catalog, p.title_weight)
    lists = neighbour_lists(
        ids, pd.Index(model_ids.astype(str)), cowatch, embeddings, content, p.per_source
    )
    items, scores, signal, valid = fuse(lists, p.n, p.fusion_k)
    r, pos = np.nonzero(valid)
    return pd.DataFrame(
        {
            "item_id": np.asarray(ids)[r],
            "rank": pos + 1,
            "related_item_id": np.asarray(ids)[items[r, pos]],
            "score": scores[r, pos].astype(np.float64),
            "source": np.asarray(SIGNALS, dtype=object)[signal[r, pos]],
        }
    )[columns]
