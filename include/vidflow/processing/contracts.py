"""What the video_processing tasks hand each other, defined once.

From the queue message to the catalog row, one concept has one name and one type, a
frozen dataclass with one serialisation:

* :class:`ProcessingMessage`: the processing-queue message (JSON on the wire, built by
  the upload service and by reconciliation, read by the DAG): ``to_json``/``parse``.
* :class:`VideoJob`: one video of a run after probing (ready, skipped or failed).
* :class:`Encode`: one mapped transcode task: some renditions of one video encoded by one
  ffmpeg (:class:`RenditionPlan` each).
* :class:`RenditionResult`: one encoded, cut and uploaded rendition (the one that made
  them also names the posters or the storyboard).
* :class:`Outcome`: how one video's run ended (published, skipped, failed, error).

Everything that crosses a task boundary (an Airflow XCom) goes through ``to_xcom()`` /
``from_xcom()``: JSON-safe dicts, fractions as ``"n/d"`` strings.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vidflow.media.ladder import AudioPlan, LadderRung
from vidflow.media.package import RenditionSummary
from vidflow.media.probe import ProbeResult
from vidflow.storage import original_key

log = logging.getLogger(__name__)

READY: Final = "ready"
SKIPPED: Final = "skipped"
FAILED: Final = "failed"
ERROR: Final = "error"
PUBLISHED: Final = "published"
AUDIO: Final = "audio"
VIDEO: Final = "video"


def video_id_of(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class ProcessingMessage:
    """The processing-queue message of one uploaded video.

    Wire format (unchanged since the first upload service): compact JSON with sorted
    keys, ``{"sha256": "<hex or null>", "size": <int or null>, "source_key":
    "originals/<uuid>/source", "video_id": "<uuid>"}``.
    """

    video_id: str
    source_key: str
    size: int | None = None
    sha256: str | None = None

    @classmethod
    def for_video(
        cls, video_id: uuid.UUID | str, *, size: int | None, sha256: str | None
    ) -> ProcessingMessage:
        """The message of a video; its source key is made from its id."""
        vid = uuid.UUID(str(video_id))
        return cls(video_id=str(vid), source_key=original_key(vid), size=size, sha256=sha256)

    def to_payload(self) -> dict[str, Any]:
        """The message as the outbox stores it (the body is its compact JSON)."""
        return {
            "video_id": self.video_id,
            "source_key": self.source_key,
            "size": self.size,
            "sha256": self.sha256,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_payload(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> ProcessingMessage | None:
        """The message in ``body``, or None (logged) when it is malformed: it cannot be
        retried into validity. Keys are made from ids, never taken on trust."""
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            log.warning("dropping a processing message that is not JSON: %.200r", body)
            return None
        if not isinstance(data, dict):
            log.warning("dropping a processing message that is not an object: %.200r", body)
            return None
        video_id = video_id_of(data.get("video_id"))
        if video_id is None:
            log.warning("dropping a processing message without a valid video_id: %.200r", body)
            return None
        expected = original_key(uuid.UUID(video_id))
        if data.get("source_key") not in (None, expected):
            log.warning(
                "message for %s names source_key %r; using %s",
                video_id,
                data["source_key"],
                expected,
            )
        size, sha256 = data.get("size"), data.get("sha256")
        return cls(
            video_id=video_id,
            source_key=expected,
            size=size
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0
            else None,
            sha256=sha256 if isinstance(sha256, str) else None,
        )


@dataclass(frozen=True)
class VideoJob:
    """One video of a run after the probe step: ``ready`` (with its probe, ladder and
    audio plan, and the media version this run writes), ``skipped`` or ``failed``."""

    video_id: str
    status: str
    reason: str | None = None
    version: str = ""
    source_key: str = ""
    probe: ProbeResult | None = None
    rungs: tuple[LadderRung, ...] = ()
    audio: AudioPlan | None = None

    @property
    def ready(self) -> bool:
        return self.status == READY and self.probe is not None

    @property
    def source(self) -> ProbeResult:
        """The probe of a ready job."""
        if self.probe is None:
            raise ValueError(f"video {self.video_id} is {self.status}: it has no probe")
        return self.probe

    def renditions(self) -> list[str]:
        """Names of the renditions a ready job must end with (its ladder, then audio)."""
        return [r.name for r in self.rungs] + ([AUDIO] if self.audio else [])

    def to_xcom(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "status": self.status,
            "reason": self.reason,
            "version": self.version,
            "source_key": self.source_key,
            "probe": self.probe.to_dict() if self.probe else None,
            "rungs": [r.to_dict() for r in self.rungs],
            "audio": self.audio.to_dict() if self.audio else None,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> VideoJob:
        return cls(
            video_id=data["video_id"],
            status=data["status"],
            reason=data.get("reason"),
            version=data.get("version") or "",
            source_key=data.get("source_key") or "",
            probe=ProbeResult.from_dict(data["probe"]) if data.get("probe") else None,
            rungs=tuple(LadderRung.from_dict(r) for r in data.get("rungs") or ()),
            audio=AudioPlan.from_dict(data["audio"]) if data.get("audio") else None,
        )


@dataclass(frozen=True)
class RenditionPlan:
    """One rendition of an encode: a rung of the ladder or the audio."""

    kind: str  # VIDEO | AUDIO
    name: str
    rung: LadderRung | None = None
    audio: AudioPlan | None = None
    #: The storyboard is cut from this rendition (the smallest video one).
    storyboard: bool = False
    #: The posters come from this rendition's encode (the largest video one), from
    #: candidates its decode keeps on the way (no second decode of the source).
    posters: bool = False

    def to_xcom(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "rung": self.rung.to_dict() if self.rung else None,
            "audio": self.audio.to_dict() if self.audio else None,
            "storyboard": self.storyboard,
            "posters": self.posters,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RenditionPlan:
        return cls(
            kind=data["kind"],
            name=data["name"],
            rung=LadderRung.from_dict(data["rung"]) if data.get("rung") else None,
            audio=AudioPlan.from_dict(data["audio"]) if data.get("audio") else None,
            storyboard=bool(data.get("storyboard")),
            posters=bool(data.get("posters")),
        )


@dataclass(frozen=True)
class Encode:
    """One mapped transcode task: ``renditions`` of one video, one ffmpeg, one decode.

    ``label`` (its map index in the Airflow UI) names its renditions, e.g.
    ``720p+540p+432p+360p+234p``; the DAG's ``map_index_template`` reads it from the XCom.
    """

    video_id: str
    version: str
    source_key: str
    duration: float
    label: str
    video_index: int
    audio_index: int | None
    renditions: tuple[RenditionPlan, ...]

    def to_xcom(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "version": self.version,
            "source_key": self.source_key,
            "duration": self.duration,
            "label": self.label,
            "video_index": self.video_index,
            "audio_index": self.audio_index,
            "renditions": [r.to_xcom() for r in self.renditions],
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Encode:
        return cls(
            video_id=data["video_id"],
            version=data["version"],
            source_key=data["source_key"],
            duration=float(data["duration"]),
            label=data["label"],
            video_index=int(data["video_index"]),
            audio_index=data.get("audio_index"),
            renditions=tuple(RenditionPlan.from_xcom(r) for r in data["renditions"]),
        )


@dataclass(frozen=True)
class RenditionResult:
    """One rendition after its transcode task: ``ready`` (cut, uploaded to the version's
    staging prefix, measured), ``skipped`` (the run lost its claim) or ``failed``."""

    video_id: str
    name: str
    status: str
    reason: str | None = None
    summary: RenditionSummary | None = None
    storyboard_url: str | None = None
    #: The video's posters by size name (``small``, ``large``), on the rendition that
    #: made them.
    poster_urls: Mapping[str, str] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "summary": self.summary.to_dict() if self.summary else None,
            "storyboard_url": self.storyboard_url,
            "poster_urls": dict(self.poster_urls),
            "stats": dict(self.stats),
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RenditionResult:
        return cls(
            video_id=data["video_id"],
            name=data["name"],
            status=data["status"],
            reason=data.get("reason"),
            summary=RenditionSummary.from_dict(data["summary"]) if data.get("summary") else None,
            storyboard_url=data.get("storyboard_url"),
            poster_urls=dict(data.get("poster_urls") or {}),
            stats=dict(data.get("stats") or {}),
        )


@dataclass(frozen=True)
class Outcome:
    """How a video's run ended: ``published`` (with its version), ``skipped``,
    ``failed`` (the source's fault) or ``error`` (a task failed unexpectedly)."""

    video_id: str
    status: str
    reason: str | None = None
    version: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "status": self.status,
            "reason": self.reason,
            "version": self.version,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(
            video_id=data["video_id"],
            status=data["status"],
            reason=data.get("reason"),
            version=data.get("version"),
        )
