"""Fan-out planning: every ready video's renditions split into encodes.

An :class:`~vidflow.processing.contracts.Encode` is one mapped transcode task: one ffmpeg
that decodes the source once and encodes its share of the ladder. Renditions are split
into at most ``encodes_per_video`` encodes of about equal cost (one per slot of the
``transcode`` pool by default); fewer encodes mean fewer decodes, more mean more
parallelism.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from vidflow.processing.contracts import AUDIO, VIDEO, Encode, RenditionPlan, VideoJob


def rendition_cost(rendition: RenditionPlan) -> float:
    """Relative encoding cost of a rendition: pixels per second (audio is nearly free)."""
    if rendition.kind == AUDIO or rendition.rung is None:
        return 0.0
    rung = rendition.rung
    return float(rung.width * rung.height * Fraction(rung.frame_rate))


def group_renditions(renditions: Sequence[RenditionPlan], groups: int) -> list[list[RenditionPlan]]:
    """Split one video's renditions into at most ``groups`` encodes of about equal cost
    (longest processing time first: each rendition, most expensive first, joins the
    cheapest group so far)."""
    ordered = sorted(renditions, key=rendition_cost, reverse=True)
    bins: list[tuple[float, list[RenditionPlan]]] = [
        (0.0, []) for _ in range(max(1, min(groups, len(ordered))))
    ]
    for rendition in ordered:
        index = min(range(len(bins)), key=lambda i: (bins[i][0], len(bins[i][1])))
        cost, members = bins[index]
        bins[index] = (cost + rendition_cost(rendition), [*members, rendition])
    return [members for _, members in bins if members]


def renditions_of(job: VideoJob) -> list[RenditionPlan]:
    """A ready video's renditions: its ladder (the smallest rung also makes the
    storyboard, from its keyframes; the largest one's encode keeps the poster candidates)
    and its audio."""
    smallest = min(job.rungs, key=lambda r: r.width * r.height).name
    largest = max(job.rungs, key=lambda r: r.width * r.height).name
    renditions = [
        RenditionPlan(
            kind=VIDEO,
            name=rung.name,
            rung=rung,
            storyboard=rung.name == smallest,
            posters=rung.name == largest,
        )
        for rung in job.rungs
    ]
    if job.audio is not None and job.source.audio is not None:
        renditions.append(RenditionPlan(kind=AUDIO, name=AUDIO, audio=job.audio))
    return renditions


def plan_encodes(jobs: Sequence[VideoJob | None], *, encodes_per_video: int) -> list[Encode]:
    """The work items of the mapped transcode task, the most expensive of the run first.
    An encode's ``label`` (its map index in the Airflow UI) names its renditions, e.g.
    ``720p+540p+432p+360p+234p`` (plus the video's id when the run has several)."""
    ready = [job for job in jobs if job is not None and job.ready]
    items: list[tuple[float, Encode]] = []
    for job in ready:
        probe = job.source
        suffix = "" if len(ready) == 1 else f" {job.video_id[:8]}"
        for group in group_renditions(renditions_of(job), encodes_per_video):
            cost = sum(rendition_cost(r) for r in group) * probe.duration
            encode = Encode(
                video_id=job.video_id,
                version=job.version,
                source_key=job.source_key,
                duration=probe.duration,
                label="+".join(r.name for r in group) + suffix,
                video_index=probe.video.index,
                audio_index=probe.audio.index if probe.audio else None,
                renditions=tuple(group),
            )
            items.append((cost, encode))
    items.sort(key=lambda item: item[0], reverse=True)
    return [encode for _, encode in items]
