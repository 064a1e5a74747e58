"""Pieces of the upload service that need no network: running digests and lock keys."""

from __future__ import annotations

import hashlib
import uuid

from vidflow.uploads.locks import lock_key
from vidflow.uploads.service import DigestCache
from vidflow.uploads.store import new_parked_key, staging_prefix


def test_digest_follows_committed_offsets_only() -> None:
    cache = DigestCache()
    upload = uuid.uuid4()
    hasher = cache.resume(upload, 0)
    assert hasher is not None
    hasher.update(b"abc")
    cache.commit(upload, 3, hasher)
    # A speculative continuation (e.g. a body that then fails its checksum) is a copy.
    speculative = cache.resume(upload, 3)
    assert speculative is not None
    speculative.update(b"WRONG")
    resumed = cache.resume(upload, 3)
    assert resumed is not None
    resumed.update(b"def")
    cache.commit(upload, 6, resumed)
    assert cache.hexdigest(upload, 6) == hashlib.sha256(b"abcdef").hexdigest()
    # Another offset than the one recorded (the upload moved replicas): unknown.
    assert cache.resume(upload, 4) is None
    assert cache.hexdigest(upload, 7) is None
    cache.forget(upload)
    assert cache.resume(upload, 6) is None


def test_digest_cache_is_bounded() -> None:
    cache = DigestCache(capacity=2)
    ids = [uuid.uuid4() for _ in range(3)]
    for upload in ids:
        cache.commit(upload, 1, hashlib.sha256(b"x"))
    assert cache.resume(ids[0], 1) is None
    assert cache.resume(ids[2], 1) is not None


def test_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert lock_key(a) == lock_key(uuid.UUID(str(a)))
    assert lock_key(a) != lock_key(b)
    assert -(2**63) <= lock_key(a) < 2**63


def test_parked_keys_live_under_the_upload_staging_prefix() -> None:
    upload = uuid.uuid4()
    first, second = new_parked_key(upload), new_parked_key(upload)
    assert first.startswith(staging_prefix(upload)) and second.startswith(staging_prefix(upload))
    assert first != second  # a new piece never overwrites the committed one
    assert staging_prefix(upload) == f"staging/uploads/{upload}/"
