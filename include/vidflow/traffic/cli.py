"""``python -m vidflow.traffic {history,live,seed}``: the traffic model's command line.

Every mode takes ``--seed`` (the same seed and arguments reproduce the same population and
events) and writes the ground truth to ``.local/traffic/truth-<seed>.json`` (or
``--truth PATH``), a file no pipeline reads.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vidflow.config import Settings, get_settings
from vidflow.stack.demo import DemoError
from vidflow.traffic.live import LiveError
from vidflow.traffic.model import CatalogVideo, Population, build_population, write_truth


def _say(message: str) -> None:
    print(f"[traffic] {message}", flush=True)


def truth_path(settings: Settings, seed: int, given: str | None, mode: str = "") -> Path:
    """``--truth`` or ``.local/traffic/truth-[<mode>-]<seed>.json`` (history has no mode
    part: its truth is the one the pipelines are checked against)."""
    name = f"truth-{mode + '-' if mode else ''}{seed}.json"
    return Path(given) if given else settings.state_dir / "traffic" / name


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from vidflow.traffic.history import directory_put, s3_put, write_history
    from vidflow.traffic.register import processed_videos, register

    day = args.start or (datetime.now(UTC).date() - timedelta(days=args.days))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    videos: int | list[CatalogVideo] = args.videos
    if args.from_catalog:
        videos = processed_videos(settings)
        if not videos:
            _say("the catalog has no processed videos (run `python -m vidflow.traffic seed`)")
            return 1
        _say(f"using the catalog's {len(videos)} processed videos")
    population = build_population(
        args.seed, viewers=args.viewers, videos=videos, start=start, days=args.days
    )
    _say(
        f"seed {args.seed}: {len(population.viewers)} viewers, {len(population.catalog)} "
        f"videos, {len(population.viral)} viral bursts, {args.days} days from {start:%Y-%m-%d}"
    )
    path = truth_path(settings, args.seed, args.truth)
    write_truth(population, path)
    _say(f"ground truth written to {path} (keep it away from the pipelines)")
    if args.register:
        added = register(population, settings)
        _say(f"catalog: {added.users} new users, {added.videos} new videos (rest existed)")
    if args.out:
        root = Path(args.out)
        put = directory_put(root)
        target = str(root)
    else:
        put = s3_put(settings)
        target = f"s3://{settings.bucket_events}"
    if not args.no_events:
        result = write_history(population, put, _say, threads=args.threads)
        _say(
            f"wrote {result.events} events ({result.late_events} late) in {result.objects} "
            f"objects, {result.bytes / 1e6:.1f} MB, to {target} in {result.seconds:.1f} s: "
            f"{result.rows_per_second:,.0f} rows/s"
        )
    if args.cdn_logs:
        _cdn_logs(args, settings, population)
    return 0


def _cdn_logs(args: argparse.Namespace, settings: Settings, population: Population) -> None:
    """The edges' CloudFront logs of the same playbacks (vidflow.traffic.cdnlogs)."""
    from vidflow.traffic.cdnlogs import write_cdn_logs
    from vidflow.traffic.history import directory_put, run_tag

    if args.out:
        put = directory_put(Path(args.out))
        target = str(Path(args.out) / settings.cdn_log_prefix)
    else:
        from vidflow.storage import s3_client

        client = s3_client(settings)

        def put(key: str, body: bytes) -> None:
            client.put_object(Bucket=settings.bucket_cdn_logs, Key=key, Body=body)

        target = f"s3://{settings.bucket_cdn_logs}/{settings.cdn_log_prefix}"
    result = write_cdn_logs(population, settings, put, _say, tag=run_tag(population))
    _say(
        f"wrote {result.requests} CDN requests ({result.hits / max(result.requests, 1):.1%} "
        f"edge hits, {result.late_lines} lines in a later hour's file) in {result.objects} "
        f"objects, {result.bytes / 1e6:.1f} MB, to {target}"
    )


def _live(args: argparse.Namespace, settings: Settings) -> int:
    from vidflow.traffic.live import run_live

    report = run_live(
        settings,
        seed=args.seed,
        viewers=args.viewers,
        duration=args.duration,
        speed=args.speed,
        truth_file=truth_path(settings, args.seed, args.truth, "live"),
        say=_say,
    )
    _say(
        f"{report.playbacks} playbacks, {report.segments} segments, "
        f"{report.bytes / 1e6:.1f} MB fetched, {report.events_acknowledged} events "
        f"acknowledged ({report.events_refused} refused)"
    )
    return 0 if report.playbacks else 1


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    from vidflow.traffic.seed import seed_clips

    video_ids = seed_clips(
        settings,
        seed=args.seed,
        count=args.count,
        seconds=args.seconds,
        truth_file=truth_path(settings, args.seed, args.truth, "clips"),
        say=_say,
    )
    for video_id in video_ids:
        print(video_id)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m vidflow.traffic",
        description="The behavioural model of viewers: seed the catalog with clips, play "
        "streams live through the viewer API, or write days of event history.",
    )
    modes = top.add_subparsers(dest="mode", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        sub.add_argument(
            "--truth",
            metavar="PATH",
            help="ground-truth JSON (default .local/traffic/truth-<seed>.json)",
        )

    history = modes.add_parser("history", help="write days of events to the events bucket")
    common(history)
    history.add_argument(
        "--start", type=_date, help="first UTC day, YYYY-MM-DD (default: --days days ago)"
    )
    history.add_argument("--days", type=_positive, default=1, help="days (default 1)")
    history.add_argument("--viewers", type=_positive, default=2000, help="viewers (default 2000)")
    history.add_argument(
        "--videos", type=_positive, default=500, help="synthetic videos (default 500)"
    )
    history.add_argument(
        "--from-catalog",
        action="store_true",
        help="watch the catalog's processed videos instead of a synthetic catalog",
    )
    history.add_argument(
        "--out", metavar="DIR", help="write the same key layout under DIR instead of S3"
    )
    history.add_argument(
        "--register",
        action="store_true",
        help="insert the model's users and synthetic videos into the catalog (idempotent)",
    )
    history.add_argument("--threads", type=_positive, default=8, help="writer threads")
    history.add_argument(
        "--cdn-logs",
        action="store_true",
        help="also write the edges' CloudFront logs of the same playbacks (cdn-logs bucket, "
        "or DIR/cdn-logs/ with --out)",
    )
    history.add_argument(
        "--no-events", action="store_true", help="write no events (with --cdn-logs: logs only)"
    )
    history.set_defaults(run=_history)

    live = modes.add_parser("live", help="viewers play streams through the viewer API")
    common(live)
    live.add_argument("--viewers", type=_positive, default=3, help="viewers (default 3)")
    live.add_argument(
        "--duration", type=float, default=60.0, help="wall-clock seconds to run (default 60)"
    )
    live.add_argument(
        "--speed",
        type=float,
        default=20.0,
        help="playback speed-up: 20 plays a 60 s watch in 3 s (default 20)",
    )
    live.set_defaults(run=_live)

    seed = modes.add_parser("seed", help="upload generated clips through the real pipeline")
    common(seed)
    seed.add_argument("--count", type=_positive, default=3, help="clips (default 3)")
    seed.add_argument("--seconds", type=_positive, default=4, help="seconds per clip (default 4)")
    seed.set_defaults(run=_seed)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    try:
        code: int = args.run(args, settings)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except (LiveError, DemoError, ValueError) as exc:
        _say(f"error: {exc}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
