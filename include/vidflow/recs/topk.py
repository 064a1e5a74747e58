"""The batch-scoring top-k kernel lives in ``models.topk`` (usable outside the
platform); re-exported here for the platform's code."""

from __future__ import annotations

from vidflow.recs import ensure_models_importable

ensure_models_importable()

from models.topk import blocked_top_k, chunked_top_k, default_chunks  # noqa: E402

__all__ = ["blocked_top_k", "chunked_top_k", "default_chunks"]
