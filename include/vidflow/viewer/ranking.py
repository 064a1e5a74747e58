"""How the serving endpoints assemble a list from precomputed rows: pure functions, no I/O.

The catalog holds three precomputed lists, all written by ``recs_scoring``: a viewer's
top-N (``recommendations``), a video's "more like this" (``related_videos``) and the
regional trending list (``trending_videos``). A viewer's answer is assembled as follows:

1. **Session first.** The related lists of the videos the viewer touched in the last
   minutes (``session_activity``, most recent first) are interleaved by rank: the best
   related video of the latest watch, then the best of the one before, ... These take up
   to half of the list, with source ``session`` and the reason "Because you watched <title>".
2. **Then the precomputed top-N** in its order, with its own source.
3. **Then regional trending** (the region's list, then the ``global`` one) until the list
   is full: the whole list for a new viewer.

Throughout, a video appears once, only when it is playable (processed), and never when the
viewer watched it before (``watch_history``) or in this session. Scores are each source's
own; the order of the list is the ranking.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

Source = Literal["collaborative", "co-watch", "content", "trending", "session"]
SOURCES: Final[tuple[str, ...]] = get_args(Source)

#: What recs_scoring may write that is not one of SOURCES: its ranker blends candidate
#: sources (collaborative filtering first), and its popularity fallback is trending.
SOURCE_ALIASES: Final[dict[str, Source]] = {
    "ranker": "collaborative",
    "lightfm": "collaborative",
    "hybrid": "collaborative",
    "popularity": "trending",
    "popular": "trending",
    "cowatch": "co-watch",
    "co_watch": "co-watch",
    "tags": "content",
}


def source_name(raw: str | None, *, default: Source = "collaborative") -> Source:
    """A stored source as one of SOURCES (unknown values fall back to ``default``)."""
    value = (raw or "").strip().lower()
    for name in SOURCES:
        if value == name:
            return name  # type: ignore[return-value]  # a member of the Literal
    return SOURCE_ALIASES.get(value, default)


@dataclass(frozen=True)
class Ranked:
    """One row of a precomputed list: ``recommendations`` (``source`` as stored) or
    ``trending_videos`` (``source``: the list's region, or ``global``)."""

    video_id: str
    score: float
    source: str


@dataclass(frozen=True)
class Related:
    """One row of ``related_videos``: ``video_id`` is related to ``anchor``."""

    anchor: str
    video_id: str
    rank: int
    score: float
    source: str


@dataclass(frozen=True)
class Pick:
    """A video placed in an answer: why (source, and the anchor video for session and
    related items) and the source's score."""

    video_id: str
    source: Source
    score: float
    anchor: str | None = None
    #: For trending items: the list it came from (a region, or ``global``).
    trending_in: str | None = None


def session_slots(limit: int) -> int:
    """Most session items in a list of ``limit``: half of it, at least one."""
    return max(1, (limit + 1) // 2)


def session_picks(recent: Sequence[str], related: Iterable[Related]) -> list[Pick]:
    """Related videos of the session's videos (``recent``: most recent first),
    interleaved by rank so the latest watch leads each round."""
    order = {video_id: position for position, video_id in enumerate(recent)}
    rows = sorted(
        (r for r in related if r.anchor in order), key=lambda r: (r.rank, order[r.anchor])
    )
    return [Pick(r.video_id, "session", r.score, r.anchor) for r in rows]


class _Builder:
    def __init__(self, *, limit: int, excluded: Collection[str], playable: Collection[str]):
        self.limit = limit
        self.excluded = excluded
        self.playable = playable
        self.picks: list[Pick] = []
        self.placed: set[str] = set()

    def add(self, candidates: Iterable[Pick], *, most: int | None = None) -> None:
        room = self.limit - len(self.picks)
        if most is not None:
            room = min(room, most)
        for pick in candidates:
            if room <= 0:
                return
            if pick.video_id in self.placed or pick.video_id in self.excluded:
                continue
            if pick.video_id not in self.playable:
                continue
            self.picks.append(pick)
            self.placed.add(pick.video_id)
            room -= 1


def _trending(rows: Iterable[Ranked]) -> list[Pick]:
    return [Pick(r.video_id, "trending", r.score, trending_in=r.source) for r in rows]


def for_viewer(
    *,
    precomputed: Sequence[Ranked],
    session: Sequence[str],
    related: Iterable[Related],
    trending: Sequence[Ranked],
    watched: Collection[str],
    playable: Collection[str],
    limit: int,
) -> list[Pick]:
    """A signed-in viewer's list (see the module docstring). ``session``: the session's
    videos, most recent first; ``related``: related rows of (some of) them; ``trending``:
    the region's list then the global one; ``watched``: the viewer's history (at least
    where it meets the candidates); ``playable``: the processed videos among them."""
    build = _Builder(limit=limit, excluded={*watched, *session}, playable=playable)
    build.add(session_picks(session, related), most=session_slots(limit))
    build.add(Pick(r.video_id, source_name(r.source), r.score) for r in precomputed)
    build.add(_trending(trending))
    return build.picks


def for_video(
    *,
    video_id: str,
    related: Iterable[Related],
    trending: Sequence[Ranked],
    playable: Collection[str],
    limit: int,
) -> list[Pick]:
    """ "More like this" for ``video_id``: its related list by rank, then trending."""
    build = _Builder(limit=limit, excluded={video_id}, playable=playable)
    own = sorted((r for r in related if r.anchor == video_id), key=lambda r: r.rank)
    build.add(
        Pick(r.video_id, source_name(r.source, default="co-watch"), r.score, r.anchor) for r in own
    )
    build.add(_trending(trending))
    return build.picks


def for_region(*, trending: Sequence[Ranked], playable: Collection[str], limit: int) -> list[Pick]:
    """The anonymous list: the region's trending, then the global one."""
    build = _Builder(limit=limit, excluded=(), playable=playable)
    build.add(_trending(trending))
    return build.picks


def reason(pick: Pick, *, titles: Mapping[str, str], region: str) -> str:
    """Why an item is in the list, in a few words a viewer understands."""
    anchor = titles.get(pick.anchor) if pick.anchor else None
    if pick.source == "session":
        return f"Because you watched {anchor}" if anchor else "Because of what you just watched"
    if pick.source == "trending":
        return "Trending everywhere" if pick.trending_in == "global" else f"Trending in {region}"
    if pick.source == "co-watch":
        return f"Often watched with {anchor}" if anchor else "Often watched with your videos"
    if pick.source == "content":
        return f"Similar to {anchor}" if anchor else "Similar to videos you watched"
    return "Picked for you from viewers with similar taste"
