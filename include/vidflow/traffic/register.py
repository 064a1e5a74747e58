"""Catalog rows for the model's population (``history --register``), so the pipelines
recognise its users and videos.

Viewers with an account and the synthetic catalog's creators become ``users`` (with their
``usernames`` and ``user_emails`` lookup rows); synthetic videos become ``processed``
videos with the model's title, tags, duration and upload time and no media URLs. Ids are
the population's uuid5 ids, every insert is ``ON CONFLICT DO NOTHING``: registering twice
changes nothing. The accounts get an unusable password hash (not an argon2 hash), so a
login attempt fails like a wrong password (401), never as a server error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vidflow.catalog.db import session_scope
from vidflow.catalog.models import User, UserEmail, Username, Video
from vidflow.config import Settings
from vidflow.traffic.model import CatalogVideo, Population

#: Not an argon2 hash: verification fails for every password.
UNUSABLE_PASSWORD_HASH: Final = "!traffic-model-account"  # noqa: S105 (not a secret)
EMAIL_DOMAIN: Final = "traffic.vidflow.example"
_BATCH: Final = 5000


@dataclass(frozen=True)
class Registered:
    users: int
    videos: int


def usernames(population: Population) -> dict[str, str]:
    """user_id -> username for every account of the population."""
    prefix = f"tm-{population.namespace.hex[:8]}"
    names = {
        user_id: f"{prefix}-v{i}"
        for i, user_id in enumerate(population.viewers.user_ids)
        if user_id is not None
    }
    if population.catalog.synthetic:
        names.update({c: f"{prefix}-c{i}" for i, c in enumerate(population.catalog.creator_ids)})
    return names


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> int:
    inserted = 0
    for at in range(0, len(rows), _BATCH):
        statement = insert(table).values(rows[at : at + _BATCH]).on_conflict_do_nothing()
        inserted += session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    return inserted


def register(population: Population, settings: Settings) -> Registered:
    """Insert the population's users and synthetic videos; returns how many were new."""
    names = usernames(population)
    users = [
        {
            "user_id": uuid.UUID(user_id),
            "username": name,
            "email": f"{name}@{EMAIL_DOMAIN}",
            "password_hash": UNUSABLE_PASSWORD_HASH,
        }
        for user_id, name in names.items()
    ]
    cat = population.catalog
    videos = (
        [
            {
                "video_id": uuid.UUID(cat.video_ids[v]),
                "user_id": uuid.UUID(cat.creator_ids[int(cat.creator_index[v])]),
                "title": cat.titles[v],
                "status": "processed",
                "tags": cat.tags[v],
                "duration_seconds": float(cat.duration[v]),
                "upload_timestamp": datetime.fromtimestamp(float(cat.upload_ts[v]), UTC),
                "updated_at": datetime.fromtimestamp(float(cat.upload_ts[v]), UTC),
            }
            for v in range(len(cat))
        ]
        if cat.synthetic
        else []
    )
    with session_scope(settings) as session:
        _insert(
            session,
            Username.__table__,  # type: ignore[arg-type]
            [{"username": u["username"], "user_id": u["user_id"]} for u in users],
        )
        _insert(
            session,
            UserEmail.__table__,  # type: ignore[arg-type]
            [{"email": u["email"], "user_id": u["user_id"]} for u in users],
        )
        new_users = _insert(session, User.__table__, users)  # type: ignore[arg-type]
        new_videos = _insert(session, Video.__table__, videos)  # type: ignore[arg-type]
    return Registered(users=new_users, videos=new_videos)


def processed_videos(settings: Settings, *, playable_only: bool = False) -> list[CatalogVideo]:
    """The catalog's processed videos (``--from-catalog``), oldest first; with
    ``playable_only`` only those with a published HLS master."""
    from sqlalchemy import select

    query = select(
        Video.video_id,
        Video.user_id,
        Video.title,
        Video.tags,
        Video.duration_seconds,
        Video.upload_timestamp,
    ).where(Video.status == "processed")
    if playable_only:
        query = query.where(Video.manifest_url.is_not(None))
    with session_scope(settings) as session:
        rows = session.execute(query.order_by(Video.upload_timestamp, Video.video_id)).all()
    return [
        CatalogVideo(
            video_id=str(row.video_id),
            user_id=str(row.user_id),
            title=row.title,
            tags=list(row.tags or []),
            duration_seconds=float(row.duration_seconds or 60.0),
            upload_ts=row.upload_timestamp.timestamp(),
        )
        for row in rows
    ]
