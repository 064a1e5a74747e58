"""The population of the traffic model: a catalog of videos, the viewers, the viral schedule.

Everything is drawn from one seed with numpy (see :mod:`vidflow.traffic` for the model as
a whole). Arrays are columnar (one entry per video or viewer) so the simulator can work on
millions of playbacks at once. Ids are uuid5 in a namespace made from the seed and the
population's size and start, so the same arguments always give the same ids.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vidflow.regions import DEVICES, REGION_NAMES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Topics and their tags (the tag vocabulary). A video's tags come from its topics.
TOPICS: Final[dict[str, tuple[str, ...]]] = {
    "music": ("music", "pop", "hiphop", "concert", "guitar"),
    "gaming": ("gaming", "minecraft", "speedrun", "esports", "retro-games"),
    "cooking": ("cooking", "recipe", "baking", "street-food", "vegan"),
    "travel": ("travel", "backpacking", "city-guide", "hiking", "roadtrip"),
    "sports": ("football", "cricket", "basketball", "highlights", "fitness"),
    "news": ("news", "politics", "economy", "world", "interview"),
    "science": ("science", "space", "physics", "biology", "explainer"),
    "comedy": ("comedy", "standup", "sketch", "prank", "parody"),
    "tech": ("tech", "smartphone", "review", "programming", "gadgets"),
    "education": ("tutorial", "history", "language", "math", "study"),
}
TOPIC_NAMES: Final[tuple[str, ...]] = tuple(TOPICS)
#: Words for titles: one noun list per topic, adjectives shared.
TITLE_NOUNS: Final[dict[str, tuple[str, ...]]] = {
    "music": ("Live Session", "Cover", "Remix", "Acoustic Set", "Album Review"),
    "gaming": ("Walkthrough", "Let's Play", "Tier List", "Boss Fight", "World Record"),
    "cooking": ("Recipe", "Kitchen Hack", "Taste Test", "Dinner Idea", "Masterclass"),
    "travel": ("Guide", "Vlog", "Day Trip", "Hidden Gems", "Itinerary"),
    "sports": ("Highlights", "Analysis", "Workout", "Top Plays", "Match Recap"),
    "news": ("Briefing", "Explained", "Debate", "Report", "Update"),
    "science": ("Experiment", "Explained", "Documentary", "Deep Dive", "Q&A"),
    "comedy": ("Sketch", "Stand-up Set", "Bloopers", "Roast", "Parody"),
    "tech": ("Review", "Unboxing", "Comparison", "Setup Tour", "Crash Course"),
    "education": ("Lesson", "Crash Course", "Study Guide", "Lecture", "Primer"),
}
TITLE_ADJECTIVES: Final = (
    "Ultimate", "Quick", "Honest", "Epic", "Beginner's", "Advanced", "Weekly", "Surprising",
    "Relaxing", "Essential", "Late-Night", "Classic",
)  # fmt: skip
#: Median duration (seconds) of a video per primary topic; lognormal around it.
TOPIC_MEDIAN_SECONDS: Final[dict[str, float]] = {
    "music": 210, "gaming": 900, "cooking": 480, "travel": 600, "sports": 300,
    "news": 180, "science": 540, "comedy": 240, "tech": 600, "education": 720,
}  # fmt: skip

#: Share of viewers (and creators) per region, in REGION_NAMES order.
REGION_SHARES: Final = (0.35, 0.25, 0.28, 0.12)
#: Regional taste: multipliers on the topic prior, per region (others 1).
REGION_TOPIC_BIAS: Final[dict[str, dict[str, float]]] = {
    "us-east": {"gaming": 1.6, "comedy": 1.5, "tech": 1.3},
    "eu-west": {"news": 1.6, "travel": 1.6, "science": 1.3},
    "ap-south": {"sports": 2.0, "tech": 1.6, "education": 1.8},
    "sa-east": {"sports": 2.0, "music": 1.8, "comedy": 1.3},
}
#: Device mix per region (phone, desktop, tv): each viewer draws a Dirichlet around it.
REGION_DEVICE_MIX: Final[dict[str, tuple[float, float, float]]] = {
    "us-east": (0.50, 0.30, 0.20),
    "eu-west": (0.50, 0.35, 0.15),
    "ap-south": (0.75, 0.20, 0.05),
    "sa-east": (0.65, 0.20, 0.15),
}
#: Median bandwidth per device in Mb/s (phone, desktop, tv); lognormal per session.
DEVICE_MEDIAN_MBPS: Final = (2.5, 8.0, 15.0)
#: Relative session rate per local hour (0..23): trough before dawn, peak at 20:00.
DIURNAL: Final = (
    0.35, 0.20, 0.12, 0.08, 0.07, 0.10, 0.20, 0.35, 0.45, 0.50, 0.50, 0.55,
    0.65, 0.60, 0.55, 0.55, 0.60, 0.70, 0.85, 0.95, 1.00, 0.95, 0.75, 0.55,
)  # fmt: skip

assert len(REGION_SHARES) == len(REGION_NAMES)
assert set(REGION_TOPIC_BIAS) == set(REGION_NAMES) == set(REGION_DEVICE_MIX)
assert len(DIURNAL) == 24 and len(DEVICE_MEDIAN_MBPS) == len(DEVICES)


@dataclass(frozen=True)
class ModelParams:
    """Every knob of the model, with the defaults the demo, tests and benchmarks use."""

    # viewers
    preference_concentration: float = 0.25  # Dirichlet alpha per topic: a few dominant topics
    activity_median_sessions: float = 0.6  # sessions per viewer and day (median)...
    activity_sigma: float = 1.1  # ...lognormal: a heavy tail of very active viewers
    activity_max_sessions: float = 40.0
    anonymous_share: float = 0.2  # viewers without an account (user_id null)
    device_concentration: float = 6.0  # Dirichlet concentration around the region's mix
    bandwidth_sigma: float = 0.5  # lognormal spread of a session's bandwidth
    # catalog
    quality_sigma: float = 1.3  # lognormal latent appeal: the popularity head
    regional_taste_sigma: float = 0.6  # per-region lognormal noise on a video's appeal
    home_region_boost: float = 4.0  # a video is this much more popular in its home region
    second_topic_share: float = 0.5  # share of videos with a second topic
    short_share: float = 0.15  # share of shorts (15-60 s)
    duration_sigma: float = 0.6
    preexisting_days: float = 60.0  # catalog uploads spread over this many days before start
    new_upload_share: float = 0.15  # share of the catalog uploaded during the window
    # choice
    attachment_exponent: float = 0.5  # rich-get-richer: appeal x (1 + plays so far)^this
    freshness_boost: float = 3.0  # a new video's appeal x (1 + boost x exp(-age/tau))
    freshness_tau_hours: float = 36.0
    chain_share: float = 0.8  # next video shares a topic with the previous one
    session_continue: float = 0.7  # probability of one more video (geometric length)
    session_max_videos: int = 20
    gap_seconds: tuple[float, float] = (1.0, 12.0)  # browsing between two videos
    # viral bursts
    viral_per_day: float = 0.5
    viral_hours: tuple[float, float] = (4.0, 12.0)
    viral_boost: float = 60.0
    # watching
    abandon_base: float = 0.2  # early abandonment = base x (1.5 - fit)
    abandon_seconds: tuple[float, float] = (1.0, 8.0)
    complete_base: float = 0.1  # completion = base + slope x fit (if not abandoned)
    complete_slope: float = 0.6
    like_max: float = 0.15  # like probability = like_max x fit^2
    pause_share: float = 0.15
    pause_median_seconds: float = 20.0
    seek_share: float = 0.12
    heartbeat_seconds: float = 10.0
    # delivery
    receive_delay_median_seconds: float = 0.4
    late_session_share: float = 0.05  # share of phone sessions sent hours later (offline)
    late_median_hours: float = 3.0
    late_max_hours: float = 48.0


@dataclass(frozen=True)
class Catalog:
    """The videos, columnar. ``topic_weights[v, k]`` sums to 1 over a video's topics."""

    video_ids: list[str]
    titles: list[str]
    tags: list[list[str]]
    topic_weights: FloatArray  # (videos, topics)
    duration: FloatArray  # seconds
    upload_ts: FloatArray  # unix seconds
    home_region: IntArray  # index into REGION_NAMES
    creator_index: IntArray  # index into creator_ids
    creator_ids: list[str]
    appeal: FloatArray  # (regions, videos): latent popularity per region (no freshness)
    synthetic: bool = True  # False when taken from the catalog (--from-catalog)

    def __len__(self) -> int:
        return len(self.video_ids)


@dataclass(frozen=True)
class Viewers:
    """The viewers, columnar. ``user_ids[i]`` is None for an anonymous viewer."""

    viewer_ids: list[str]
    user_ids: list[str | None]
    region: IntArray
    preferences: FloatArray  # (viewers, topics), rows sum to 1
    sessions_per_day: FloatArray
    device_mix: FloatArray  # (viewers, devices)

    def __len__(self) -> int:
        return len(self.viewer_ids)


@dataclass(frozen=True)
class ViralBurst:
    """One video going viral in one region for some hours (appeal x ``boost``)."""

    video_index: int
    region: int
    start_ts: float
    end_ts: float
    boost: float


@dataclass(frozen=True)
class Population:
    """Everything the simulator needs: what exists, who watches, when bursts happen."""

    seed: int
    start: datetime
    days: int
    params: ModelParams
    catalog: Catalog
    viewers: Viewers
    viral: list[ViralBurst] = field(default_factory=list)

    @property
    def namespace(self) -> uuid.UUID:
        return population_namespace(self.seed, len(self.viewers), len(self.catalog), self.start)

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()


def population_namespace(seed: int, viewers: int, videos: int, start: datetime) -> uuid.UUID:
    """The uuid5 namespace of a population: same arguments, same ids."""
    key = f"vidflow-traffic/{seed}/{viewers}/{videos}/{start:%Y-%m-%d}"
    return uuid.uuid5(uuid.NAMESPACE_URL, key)


def stream(seed: int, *purpose: int) -> np.random.Generator:
    """An independent random stream for one purpose (so adding draws in one place does not
    shift another's)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *purpose]))


# Stream purposes (stable numbers: changing one changes that part's draws only).
_VIEWERS, _CATALOG, _VIRAL = 1, 2, 3


def build_viewers(
    seed: int, n: int, namespace: uuid.UUID, params: ModelParams = ModelParams()
) -> Viewers:
    rng = stream(seed, _VIEWERS)
    n_topics = len(TOPIC_NAMES)
    region = rng.choice(len(REGION_NAMES), size=n, p=np.asarray(REGION_SHARES))
    bias = np.ones((len(REGION_NAMES), n_topics))
    for r, name in enumerate(REGION_NAMES):
        for topic, factor in REGION_TOPIC_BIAS[name].items():
            bias[r, TOPIC_NAMES.index(topic)] = factor
    alpha = params.preference_concentration * bias / bias.mean(axis=1, keepdims=True)
    # Dirichlet through gammas, vectorised over viewers with their region's alpha.
    gam = rng.standard_gamma(alpha[region])
    gam = np.maximum(gam, 1e-12)
    preferences = gam / gam.sum(axis=1, keepdims=True)
    sessions = rng.lognormal(np.log(params.activity_median_sessions), params.activity_sigma, n)
    sessions = np.minimum(sessions, params.activity_max_sessions)
    mixes = np.asarray([REGION_DEVICE_MIX[name] for name in REGION_NAMES])
    dgam = np.maximum(rng.standard_gamma(params.device_concentration * mixes[region]), 1e-12)
    device_mix = dgam / dgam.sum(axis=1, keepdims=True)
    anonymous = rng.random(n) < params.anonymous_share
    viewer_ids = [str(uuid.uuid5(namespace, f"viewer/{i}")) for i in range(n)]
    user_ids: list[str | None] = [
        None if anonymous[i] else str(uuid.uuid5(namespace, f"user/{i}")) for i in range(n)
    ]
    return Viewers(
        viewer_ids=viewer_ids,
        user_ids=user_ids,
        region=region.astype(np.int64),
        preferences=preferences,
        sessions_per_day=sessions,
        device_mix=device_mix,
    )


def _appeal(
    rng: np.random.Generator, home: IntArray, params: ModelParams
) -> tuple[FloatArray, FloatArray]:
    n = len(home)
    quality = rng.lognormal(0.0, params.quality_sigma, n)
    noise = rng.lognormal(0.0, params.regional_taste_sigma, (len(REGION_NAMES), n))
    appeal = quality[None, :] * noise
    appeal[home, np.arange(n)] *= params.home_region_boost
    return quality, appeal


def title_for(rng: np.random.Generator, topic: str, tag: str, number: int) -> str:
    adjective = TITLE_ADJECTIVES[int(rng.integers(len(TITLE_ADJECTIVES)))]
    noun = TITLE_NOUNS[topic][int(rng.integers(len(TITLE_NOUNS[topic])))]
    words = tag.replace("-", " ").title()
    return f"{adjective} {words} {noun} #{number}"


def build_catalog(
    seed: int,
    n: int,
    namespace: uuid.UUID,
    start: datetime,
    days: int,
    params: ModelParams = ModelParams(),
) -> Catalog:
    """A synthetic catalog of ``n`` videos by about n/8 creators."""
    rng = stream(seed, _CATALOG)
    n_topics = len(TOPIC_NAMES)
    n_creators = max(1, n // 8)
    creator_region = rng.choice(len(REGION_NAMES), size=n_creators, p=np.asarray(REGION_SHARES))
    # Creators are prolific to a Zipf-like degree; each has a favourite topic.
    productivity = 1.0 / np.arange(1, n_creators + 1) ** 0.8
    creator_index = rng.choice(n_creators, size=n, p=productivity / productivity.sum())
    creator_topic = rng.integers(n_topics, size=n_creators)
    home = creator_region[creator_index].astype(np.int64)
    primary = np.where(
        rng.random(n) < 0.7, creator_topic[creator_index], rng.integers(n_topics, size=n)
    )
    secondary = (primary + rng.integers(1, n_topics, size=n)) % n_topics
    has_second = rng.random(n) < params.second_topic_share
    weights = np.zeros((n, n_topics))
    weights[np.arange(n), primary] = np.where(has_second, 0.7, 1.0)
    weights[np.arange(n)[has_second], secondary[has_second]] = 0.3
    medians = np.asarray([TOPIC_MEDIAN_SECONDS[t] for t in TOPIC_NAMES])[primary]
    duration = np.clip(rng.lognormal(np.log(medians), params.duration_sigma), 30, 3 * 3600)
    shorts = rng.random(n) < params.short_share
    duration[shorts] = rng.uniform(15, 60, int(shorts.sum()))
    duration = np.round(duration, 3)
    start_ts = start.timestamp()
    new = rng.random(n) < params.new_upload_share
    upload = start_ts - rng.uniform(0, params.preexisting_days * 86400, n)
    upload[new] = start_ts + rng.uniform(0, days * 86400, int(new.sum()))
    upload = np.floor(upload)
    _, appeal = _appeal(rng, home, params)
    tags: list[list[str]] = []
    titles: list[str] = []
    for v in range(n):
        topic = TOPIC_NAMES[primary[v]]
        own = list(rng.choice(TOPICS[topic], size=int(rng.integers(2, 4)), replace=False))
        if has_second[v]:
            own.append(str(rng.choice(TOPICS[TOPIC_NAMES[secondary[v]]])))
        tags.append([str(t) for t in own])
        titles.append(title_for(rng, topic, str(own[0]), v + 1))
    return Catalog(
        video_ids=[str(uuid.uuid5(namespace, f"video/{v}")) for v in range(n)],
        titles=titles,
        tags=tags,
        topic_weights=weights,
        duration=duration,
        upload_ts=upload,
        home_region=home,
        creator_index=creator_index.astype(np.int64),
        creator_ids=[str(uuid.uuid5(namespace, f"creator/{c}")) for c in range(n_creators)],
        appeal=appeal,
    )


@dataclass(frozen=True)
class CatalogVideo:
    """A processed video read from the catalog (``--from-catalog``)."""

    video_id: str
    user_id: str
    title: str
    tags: list[str]
    duration_seconds: float
    upload_ts: float


def catalog_from_videos(
    seed: int, videos: list[CatalogVideo], params: ModelParams = ModelParams()
) -> Catalog:
    """A model catalog over real videos: topics from their tags (a random topic for a video
    whose tags are outside the vocabulary), a random home region and appeal."""
    if not videos:
        raise ValueError("the catalog has no processed videos to simulate viewers for")
    rng = stream(seed, _CATALOG)
    n, n_topics = len(videos), len(TOPIC_NAMES)
    tag_topic = {tag: k for k, topic in enumerate(TOPIC_NAMES) for tag in TOPICS[topic]}
    weights = np.zeros((n, n_topics))
    for v, video in enumerate(videos):
        for tag in video.tags:
            if tag in tag_topic:
                weights[v, tag_topic[tag]] += 1.0
        if weights[v].sum() == 0:
            weights[v, int(rng.integers(n_topics))] = 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    creators = sorted({v.user_id for v in videos})
    home = rng.choice(len(REGION_NAMES), size=n, p=np.asarray(REGION_SHARES)).astype(np.int64)
    _, appeal = _appeal(rng, home, params)
    return Catalog(
        video_ids=[v.video_id for v in videos],
        titles=[v.title for v in videos],
        tags=[list(v.tags) for v in videos],
        topic_weights=weights,
        duration=np.asarray([max(1.0, v.duration_seconds) for v in videos]),
        upload_ts=np.asarray([v.upload_ts for v in videos]),
        home_region=home,
        creator_index=np.asarray([creators.index(v.user_id) for v in videos], dtype=np.int64),
        creator_ids=creators,
        appeal=appeal,
        synthetic=False,
    )


def viral_schedule(
    seed: int, catalog: Catalog, start: datetime, days: int, params: ModelParams
) -> list[ViralBurst]:
    """Bursts: Poisson(viral_per_day x days), at least one; each in one region, on a video
    already uploaded when it starts."""
    rng = stream(seed, _VIRAL)
    count = max(1, int(rng.poisson(params.viral_per_day * days))) if days > 0 else 0
    bursts = []
    start_ts = start.timestamp()
    for _ in range(count):
        begin = start_ts + float(rng.uniform(0, max(days * 86400 - 4 * 3600, 3600)))
        candidates = np.flatnonzero(catalog.upload_ts <= begin)
        if len(candidates) == 0:
            continue
        hours = float(rng.uniform(*params.viral_hours))
        bursts.append(
            ViralBurst(
                video_index=int(rng.choice(candidates)),
                region=int(rng.choice(len(REGION_NAMES), p=np.asarray(REGION_SHARES))),
                start_ts=float(np.floor(begin)),
                end_ts=float(np.floor(begin + hours * 3600)),
                boost=params.viral_boost,
            )
        )
    return bursts


def build_population(
    seed: int,
    *,
    viewers: int,
    videos: int | list[CatalogVideo],
    start: datetime,
    days: int,
    params: ModelParams = ModelParams(),
) -> Population:
    """The whole model population. ``videos`` is a count (synthetic catalog) or the
    processed videos of the real catalog."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC)
    n_videos = videos if isinstance(videos, int) else len(videos)
    if viewers < 1 or n_videos < 1 or days < 0:
        raise ValueError("need at least one viewer and one video, and days >= 0")
    namespace = population_namespace(seed, viewers, n_videos, start)
    if isinstance(videos, int):
        catalog = build_catalog(seed, videos, namespace, start, days, params)
    else:
        catalog = catalog_from_videos(seed, videos, params)
    return Population(
        seed=seed,
        start=start,
        days=days,
        params=params,
        catalog=catalog,
        viewers=build_viewers(seed, viewers, namespace, params),
        viral=viral_schedule(seed, catalog, start, days, params),
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def truth(population: Population) -> dict[str, Any]:
    """The ground truth as JSON-ready data: what the pipelines must never see."""
    cat, view = population.catalog, population.viewers

    def topic_dict(row: FloatArray, floor: float = 0.0) -> dict[str, float]:
        return {
            TOPIC_NAMES[k]: round(float(w), 4)
            for k, w in enumerate(row)
            if w > floor and round(float(w), 4) > 0
        }

    return {
        "seed": population.seed,
        "start": population.start.isoformat().replace("+00:00", "Z"),
        "days": population.days,
        "namespace": str(population.namespace),
        "params": asdict(population.params),
        "topics": {name: list(tags) for name, tags in TOPICS.items()},
        "viewers": [
            {
                "viewer_id": view.viewer_ids[i],
                "user_id": view.user_ids[i],
                "region": REGION_NAMES[int(view.region[i])],
                "preferences": topic_dict(view.preferences[i], 0.005),
                "sessions_per_day": round(float(view.sessions_per_day[i]), 4),
                "device_mix": {
                    DEVICES[d]: round(float(view.device_mix[i, d]), 4) for d in range(len(DEVICES))
                },
            }
            for i in range(len(view))
        ],
        "videos": [
            {
                "video_id": cat.video_ids[v],
                "creator_id": cat.creator_ids[int(cat.creator_index[v])],
                "title": cat.titles[v],
                "tags": cat.tags[v],
                "topics": topic_dict(cat.topic_weights[v]),
                "duration_seconds": float(cat.duration[v]),
                "uploaded_at": _iso(float(cat.upload_ts[v])),
                "home_region": REGION_NAMES[int(cat.home_region[v])],
                "appeal": {
                    REGION_NAMES[r]: round(float(cat.appeal[r, v]), 4)
                    for r in range(len(REGION_NAMES))
                },
            }
            for v in range(len(cat))
        ],
        "viral": [
            {
                "video_id": cat.video_ids[b.video_index],
                "region": REGION_NAMES[b.region],
                "start": _iso(b.start_ts),
                "end": _iso(b.end_ts),
                "boost": b.boost,
            }
            for b in population.viral
        ],
    }


def day_start(population: Population, day: int) -> datetime:
    return population.start + timedelta(days=day)


def write_truth(population: Population, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write :func:`truth` (plus ``extra``) as JSON to ``path``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**truth(population), **(extra or {})}, indent=1) + "\n")
    tmp.replace(path)
