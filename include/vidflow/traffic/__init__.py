"""The behavioural model of viewers: one seeded model of who watches what, when, on which
device and for how long, used by the demo, the tests and the benchmarks.

Run it as ``python -m vidflow.traffic {seed,live,history} --help``.

Catalog (:mod:`.model`)
    Ten topics (music, gaming, cooking, travel, sports, news, science, comedy, tech,
    education) of five tags each form the tag vocabulary. A video has a primary topic (70 %
    of the time its creator's favourite), for half the videos a second one (weights 0.7 /
    0.3), 2-4 tags from those topics, a title made of topic words, a duration (lognormal
    around the topic's median, 15 % shorts of 15-60 s), a creator (n/8 creators with
    Zipf-like productivity), an upload time (spread over the 60 days before the start, 15 %
    during the simulated window) and a home region (its creator's). Its latent appeal is
    lognormal (sigma 1.3) with per-region noise (sigma 0.6), x4 in its home region.

Viewers (:mod:`.model`)
    Regions of :mod:`vidflow.regions` with shares 35/25/28/12 % (us-east, eu-west,
    ap-south, sa-east). Topic preferences are Dirichlet (alpha 0.25 per topic, tilted by
    the region's tastes: cricket and education in ap-south, music and sports in sa-east,
    ...), so each viewer has a few dominant topics. Activity is lognormal (median 0.6
    sessions a day, sigma 1.1: a heavy tail). Each viewer has a device mix around the
    region's (phone-heavy in ap-south) and each session draws a device and a bandwidth
    (lognormal around phone 2.5, desktop 8, tv 15 Mb/s). 20 % are anonymous (user_id
    null). Sessions start by the local-time curve ``DIURNAL`` (trough 0.07 at 04:00, peak
    1.0 at 20:00).

Choice (:mod:`.simulate`)
    A video v is chosen for viewer u in region r at hour t with probability proportional to
    ``sum_k pref[u,k] w[v,k] x appeal[r,v] x (1 + plays_r(v))^0.5 x fresh(v,t) x viral``:
    topic fit, regional popularity with rich-get-richer (plays of earlier days), freshness
    ``1 + 3 exp(-age / 36 h)`` (zero before upload), and x60 while a scheduled burst makes v
    viral in r (Poisson 0.5 bursts a day, at least one, 4-12 hours each). Sessions chain:
    geometric length (mean 3.3, at most 20); after the first video, 80 % of the next ones
    come from a topic of the previous video.

Watching (:mod:`.simulate`)
    ``fit`` = the viewer's preference for the video's topics over their top preference
    (0..1). Early abandonment (stop within 1-8 s) has probability 0.2 x (1.5 - fit);
    otherwise the video completes with probability 0.1 + 0.6 fit, else stops at a
    Beta(1 + 2 fit, 1.5) fraction (at least 10 s). 12 % of longer playbacks seek (back up to
    20 s or forward), 15 % pause (lognormal, median 20 s), likes have probability
    0.15 fit^2.

Events (:mod:`.simulate`, :mod:`vidflow.events`)
    ``play`` at 0, ``heartbeat`` every 10 s of playback with the position, ``pause``,
    ``seek`` (the position after the jump), ``like``, ``complete`` at the end. Event and
    session ids are seeded random UUIDs; ``received_at`` is ``client_ts`` + ~0.4 s, except
    5 % of phone sessions, sent hours later (lognormal, median 3 h, at most 48 h) as a
    phone that was offline would.

Truth
    Each viewer's preferences and activity, each video's topics, appeal and home region, and
    the viral schedule go to a separate JSON file (``.local/traffic/truth-<seed>.json`` or
    ``--truth``), never to anything the pipelines read.

Every knob is a field of :class:`vidflow.traffic.model.ModelParams`; the same seed and
arguments reproduce the same population, ids and events.
"""
