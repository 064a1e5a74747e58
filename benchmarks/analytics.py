# ruff: noqa: S608  (SQL built from dates, constants and the benchmark's own paths)
"""Analytics benchmark: event ingest through the viewer API, and the daily gold job.

``python -m benchmarks.analytics [--quick] [--sizes 1,3,10] [--skip-ingest] [--skip-gold]``
(or ``make bench BENCH=analytics``).

(a) **Ingest.** A viewer API this script starts (``python -m vidflow.viewer``, its usual
worker count, writing to a scratch events bucket) takes ``POST /v1/events`` batches of
100 events from ``--clients`` concurrent clients; it answers after the events are written
to S3 (group commit). Baseline in the same run: the same NDJSON lines written as one
object per 100 events by a bare boto3 ``put_object`` loop, same client count, same
endpoint. Reports events/s and p50/p99 latency per batch, and checks every acknowledged
event is stored exactly once.

(b) **Gold.** One day of events from the traffic model's ``history`` mode (``--out``, the
NDJSON layout of the events bucket), parsed into a silver Delta table laid out as the
hourly silver runs leave it (per day and region, one run per receive hour, sorted in
``vidflow.analytics.silver.clustered`` order: ``as_hourly_loads``); 1M and 3M inputs are
whole-viewer samples of the 10M one (a viewer's sessions stay together). On each input:
the gold transforms + Delta load of ``jobs/watch_gold_daily.py`` in a warm Spark session
(one untimed run, then the median of ``TIMED_RUNS``), against DuckDB (likewise) running
the same semantics in SQL over the Delta table's live parquet files (``inputFiles()``),
writing the three outputs (video_daily_stats, user_video_daily, video_likers) to parquet.
On the smallest input the two must agree exactly (counts) and to 1e-6 (seconds, rates).
Target: Spark <= 3x DuckDB at 10M rows.

``--work DIR`` keeps the generated silver inputs there and reuses them on the next run
(generating 10M events takes minutes).

Writes ``benchmarks/results/analytics.json`` and ``analytics.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from vidflow.config import REPO_ROOT, Settings, get_settings
from vidflow.events import StoredEvent, event_object_key

RESULTS = Path(__file__).parent / "results"
TARGET_RATIO = 3.0
BATCH = 100
#: Events per viewer on the gold day, traffic model at its defaults (seed 1, measured:
#: 90,091 viewers gave 9,702,954 events on GOLD_DAY), so the largest input reaches its size.
EVENTS_PER_VIEWER = 107
GOLD_DAY = date(2026, 11, 20)
#: Timed runs of each engine per size, after one untimed warm-up run; the median counts.
TIMED_RUNS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _say(message: str) -> None:
    print(f"[analytics] {message}", flush=True)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


# --- (a) ingest ------------------------------------------------------------------------


@dataclass
class IngestRun:
    method: str
    clients: int
    batches: int
    events: int
    seconds: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    stored_events: int


def _client_events(now: datetime, n: int) -> list[dict[str, Any]]:
    session, video = str(uuid.uuid4()), str(uuid.uuid4())
    return [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "heartbeat" if i else "play",
            "video_id": video,
            "session_id": session,
            "client_ts": (now - timedelta(seconds=n - i)).isoformat(),
            "position_seconds": float(i * 10),
            "region": "eu-west",
            "device": "phone",
        }
        for i in range(n)
    ]


def _drive(
    clients: int, batches: int, deadline_s: float, send: Any
) -> tuple[list[float], float, int]:
    """``clients`` threads call ``send(i)`` until ``batches`` calls are done or time is up;
    returns per-call latencies, the wall time and the calls made."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(batches))
    stop_at = time.monotonic() + deadline_s

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            send(i)
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started, len(latencies)


def _count_lines(s3: Any, bucket: str, prefix: str) -> int:
    lines = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            lines += body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
    return lines


def bench_ingest(
    settings: Settings, clients: int, batches: int, deadline_s: float, log: Path
) -> list[IngestRun]:
    from vidflow.storage import s3_client

    bucket = f"vidflow-bench-events-{uuid.uuid4().hex[:8]}"
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=bucket)
    port = _free_port()
    env = {**os.environ, "VIDFLOW_BUCKET_EVENTS": bucket}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidflow.viewer", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    runs = []
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"viewer API did not start; see {log}")
            time.sleep(0.3)
        local = threading.local()
        accepted = [0]
        lock = threading.Lock()

        def post(i: int) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(base_url=url, timeout=60)
            events = _client_events(datetime.now(UTC), BATCH)
            answer = client.post("/v1/events", json={"events": events})
            answer.raise_for_status()
            with lock:
                accepted[0] += len(answer.json()["accepted"])

        post(-1)  # warm-up batch (not counted below: its objects are listed separately)
        warm = accepted[0]
        time.sleep(settings.events_flush_seconds * 2)
        before = _count_lines(s3, bucket, "events/")
        lat, wall, done = _drive(clients, batches, deadline_s, post)
        stored = _count_lines(s3, bucket, "events/") - before
        if accepted[0] - warm != done * BATCH or stored != done * BATCH:
            raise RuntimeError(
                f"API: {done * BATCH} sent, {accepted[0] - warm} accepted, {stored} stored"
            )
        runs.append(
            IngestRun("viewer_api", clients, done, done * BATCH, wall, done * BATCH / wall,
                      _pct(lat, 0.5) * 1e3, _pct(lat, 0.99) * 1e3, stored)
        )  # fmt: skip

        # Baseline: the same NDJSON objects written directly.
        prefix_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        writer = f"bench-{uuid.uuid4().hex[:8]}"

        def put(i: int) -> None:
            now = datetime.now(UTC)
            lines = [
                StoredEvent(
                    event_id=e["event_id"], event_type=e["event_type"], video_id=e["video_id"],
                    session_id=e["session_id"], user_id=None,
                    client_ts=datetime.fromisoformat(e["client_ts"]), received_at=now,
                    position_seconds=e["position_seconds"], region=e["region"],
                    device=e["device"],
                ).to_json_line()
                for e in _client_events(now, BATCH)
            ]  # fmt: skip
            body = ("\n".join(lines) + "\n").encode()
            key = event_object_key(prefix_hour, writer, i).replace("events/", "baseline/", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=body)

        lat, wall, done = _drive(clients, batches, deadline_s, put)
        stored = _count_lines(s3, bucket, "baseline/")
        runs.append(
            IngestRun("boto3_put_object", clients, done, done * BATCH, wall, done * BATCH / wall,
                      _pct(lat, 0.5) * 1e3, _pct(lat, 0.99) * 1e3, stored)
        )  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=bucket)
    return runs


# --- (b) gold --------------------------------------------------------------------------


@dataclass
class GoldRun:
    target_millions: float
    silver_events: int
    spark_seconds: float
    spark_first_run_seconds: float
    duckdb_seconds: float
    ratio: float
    video_daily_stats_rows: int
    user_video_daily_rows: int
    verified_equal: bool | None = None
    spark_runs: list[float] | None = None
    duckdb_runs: list[float] | None = None


def _duckdb_sql(dates: list[date]) -> tuple[str, str, str, str]:
    """(sessions temp table, video_daily_stats, user_video_daily, video_likers): the gold
    definition of
    ``vidflow.analytics.gold`` (module docstring), in DuckDB SQL."""
    from vidflow.analytics.gold import PLAYING_EVENTS, WATCH_SLACK_SECONDS, context_dates

    ctx = ", ".join(f"DATE '{d}'" for d in context_dates(dates))
    days = ", ".join(f"DATE '{d}'" for d in dates)
    playing = ", ".join(f"'{t}'" for t in PLAYING_EVENTS)
    sessions = f"""
    CREATE OR REPLACE TEMP TABLE sessions AS
    WITH ev AS (
        SELECT event_id, event_type, video_id, session_id, user_id, event_ts,
               position_seconds, event_date, region
        FROM read_parquet($files, hive_partitioning = true,
                          hive_types = {{'event_date': DATE, 'region': VARCHAR}})
        WHERE event_date IN ({ctx})
    ), reports AS (
        SELECT *,
            lag(event_type) OVER p AS prev_type,
            position_seconds - lag(position_seconds) OVER p AS advance,
            (epoch_us(event_ts) - epoch_us(lag(event_ts) OVER p)) / 1e6 AS gap
        FROM ev
        WINDOW p AS (PARTITION BY session_id, video_id, event_type = 'like'
                     ORDER BY event_ts, event_id)
    ), credited AS (
        SELECT *, CASE WHEN prev_type IN ({playing}) AND event_type NOT IN ('seek', 'like')
                        AND advance >= 0 AND advance <= gap + {WATCH_SLACK_SECONDS}
                       THEN advance ELSE 0.0 END AS watch_seconds
        FROM reports WHERE event_date IN ({days})
    )
    SELECT event_date, region, video_id, session_id, user_id,
           count(*) FILTER (WHERE event_type = 'play') AS plays,
           bool_or(event_type = 'complete') AS completed,
           bool_or(event_type = 'like') AS liked,
           sum(watch_seconds) AS watch_seconds,
           max(event_ts) AS last_event_ts
    FROM credited GROUP BY event_date, region, video_id, session_id, user_id
    """
    video = """
    WITH viewers AS (
        SELECT event_date, region, video_id, coalesce(user_id, session_id) AS viewer,
               sum(plays) AS plays, count(*) FILTER (WHERE plays > 0) AS played,
               count(*) FILTER (WHERE plays > 0 AND completed) AS completed,
               bool_or(liked) AS liked, sum(watch_seconds) AS watch_seconds
        FROM sessions GROUP BY ALL
    )
    SELECT event_date, region, video_id, sum(plays)::BIGINT AS plays,
           count(*)::BIGINT AS unique_viewers, sum(watch_seconds)::DOUBLE AS watch_seconds,
           CASE WHEN sum(played) > 0 THEN sum(completed) / sum(played) ELSE 0.0 END::DOUBLE
               AS completion_rate,
           count(*) FILTER (WHERE liked)::BIGINT AS likes
    FROM viewers GROUP BY ALL
    """
    user = """
    SELECT event_date, region, user_id, video_id, sum(watch_seconds)::DOUBLE AS watch_seconds,
           max(last_event_ts) AS last_watched_at
    FROM sessions WHERE user_id IS NOT NULL GROUP BY ALL
    """
    likers = """
    SELECT DISTINCT event_date, region, video_id, coalesce(user_id, session_id) AS viewer
    FROM sessions WHERE liked
    """
    return sessions, video, user, likers


def duckdb_connection() -> Any:
    import duckdb

    con = duckdb.connect(config={"threads": 2})  # Spark runs local[2]
    con.execute("SET TimeZone = 'UTC'")
    return con


def run_duckdb(files: list[str], dates: list[date], out: Path) -> float:
    sessions, video, user, likers = _duckdb_sql(dates)
    con = duckdb_connection()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con.execute(sessions, {"files": files})
    con.execute(f"COPY ({video}) TO '{out / 'video_daily_stats.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY ({user}) TO '{out / 'user_video_daily.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY ({likers}) TO '{out / 'video_likers.parquet'}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def _rounded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def norm(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 6)
        if isinstance(v, datetime):
            return (
                v.replace(tzinfo=None)
                if v.tzinfo is None
                else v.astimezone(UTC).replace(tzinfo=None)
            )
        return v

    return sorted(tuple(norm(v) for v in r) for r in rows)


def generate_history(viewers: int, out: Path) -> None:
    cmd = [
        sys.executable, "-m", "vidflow.traffic", "history", "--seed", "1",
        "--start", GOLD_DAY.isoformat(), "--days", "1", "--viewers", str(viewers),
        "--videos", str(max(500, viewers // 20)), "--out", str(out),
        "--truth", str(out / "truth.json"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=REPO_ROOT)


def silver_from_history(spark: Any, ndjson: Path) -> Any:
    """The NDJSON lines as silver rows (contract columns; the history is valid input, so
    the silver job's checks and dedupe are not repeated here)."""
    from pyspark.sql import functions as F

    schema = (
        "schema int, event_id string, event_type string, video_id string, session_id string, "
        "user_id string, client_ts string, received_at string, position_seconds double, "
        "region string, device string"
    )
    raw = (
        spark.read.schema(schema).option("recursiveFileLookup", "true").json(str(ndjson / "events"))
    )
    event_ts = F.to_timestamp("client_ts")
    received = F.to_timestamp("received_at")
    return raw.select(
        "event_id", "event_type", "video_id", "session_id", "user_id",
        event_ts.alias("event_ts"), received.alias("received_at"), "position_seconds",
        "device", F.date_trunc("hour", received).alias("ingest_hour"),
        F.to_date(event_ts).alias("event_date"), "region",
    )  # fmt: skip


def as_hourly_loads(silver: Any) -> Any:
    """The rows in the order the hourly silver runs leave them: each run MERGEs one
    receive hour in :func:`vidflow.analytics.silver.clustered` order, so a day and region
    holds one sorted run per receive hour. Here each (day, region) file holds those same
    runs one after the other (receive hour first, then the clustering columns): as many
    sorted runs as the hourly files would have, in fewer files."""
    from vidflow.analytics.silver import CLUSTER_COLUMNS, PARTITION_COLUMNS

    return silver.repartition(*PARTITION_COLUMNS).sortWithinPartitions(
        "ingest_hour", *CLUSTER_COLUMNS
    )


def _has_table(path: str) -> bool:
    """A committed Delta table (a failed first write leaves a ``_delta_log`` without one)."""
    return any((Path(path) / "_delta_log").glob("*.json"))


def bench_gold(settings: Settings, sizes: list[float], work: Path) -> list[GoldRun]:
    from pyspark.sql import functions as F

    from jobs import watch_gold_daily
    from vidflow.analytics.gold import VIDEO_DAILY_STATS_COLUMNS, VIDEO_LIKERS_COLUMNS
    from vidflow.spark import get_spark, lake_path

    spark = get_spark("bench-analytics", settings)
    largest = max(sizes)
    ndjson = work / "history"
    viewers = math.ceil(largest * 1e6 / EVENTS_PER_VIEWER)
    base_lake = work / f"lake-full-{viewers}"
    full_settings = settings.model_copy(update={"lake_uri": str(base_lake)})
    silver_path = lake_path(full_settings, "analytics", "watch_events")
    if _has_table(silver_path):
        _say(f"history: reusing the silver table of {viewers} viewers in {base_lake}")
    else:
        _say(f"history: {viewers} viewers, one day ({GOLD_DAY}) -> {ndjson}")
        generate_history(viewers, ndjson)
        (
            as_hourly_loads(silver_from_history(spark, ndjson))
            .write.format("delta")
            .partitionBy("event_date", "region")
            .save(silver_path)
        )
        shutil.rmtree(ndjson)
    full = spark.read.format("delta").load(silver_path)
    dates = [GOLD_DAY]
    # Sizes count the gold day's events (what the job aggregates), not the whole table.
    total = full.where(F.col("event_date").isin(*dates)).count()
    _say(f"silver: {total} events on {GOLD_DAY}")
    runs = []
    for size in sorted(sizes):
        share = min(1.0, size * 1e6 / total)
        if share < 1.0:
            lake = base_lake.with_name(f"{base_lake.name}-{size:g}M")
            sized = settings.model_copy(update={"lake_uri": str(lake)})
            # A sample of whole viewers, so sessions and users stay intact.
            bucket = F.abs(F.xxhash64(F.coalesce("user_id", "session_id"))) % 10_000
            sample_path = lake_path(sized, "analytics", "watch_events")
            if not _has_table(sample_path):
                (
                    as_hourly_loads(full.where(bucket < int(share * 10_000)))
                    .write.format("delta")
                    .partitionBy("event_date", "region")
                    .save(sample_path)
                )
        else:
            sized = full_settings
        silver = spark.read.format("delta").load(lake_path(sized, "analytics", "watch_events"))
        events = silver.where(F.col("event_date").isin(*dates)).count()
        started = time.perf_counter()
        watch_gold_daily.run(spark, sized, dates, None)
        first = time.perf_counter() - started
        spark_times = []
        for _ in range(TIMED_RUNS):
            started = time.perf_counter()
            summary = watch_gold_daily.run(spark, sized, dates, None)
            spark_times.append(time.perf_counter() - started)
        spark_s = statistics.median(spark_times)
        files = silver.inputFiles()
        run_duckdb(files, dates, work / "duck-warm")
        duck_times = [run_duckdb(files, dates, work / f"duck-{size:g}M") for _ in range(TIMED_RUNS)]
        duck_s = statistics.median(duck_times)
        con = duckdb_connection()
        run = GoldRun(
            size, events, spark_s, first, duck_s, spark_s / duck_s,
            summary.video_daily_stats_rows, summary.user_video_daily_rows,
            spark_runs=[round(t, 2) for t in spark_times],
            duckdb_runs=[round(t, 2) for t in duck_times],
        )  # fmt: skip
        if size == min(sizes):
            read = spark.read.format("delta")
            spark_video = read.load(lake_path(sized, "analytics", "video_daily_stats")).select(
                *VIDEO_DAILY_STATS_COLUMNS
            )
            spark_user = read.load(lake_path(sized, "analytics", "user_video_daily")).select(
                "event_date", "region", "user_id", "video_id", "watch_seconds",
                F.date_format("last_watched_at", "yyyy-MM-dd HH:mm:ss.SSSSSS").alias("t"),
            )  # fmt: skip
            duck_video = con.execute(
                f"SELECT * FROM '{work / f'duck-{size:g}M' / 'video_daily_stats.parquet'}'"
            ).fetchall()
            duck_user = con.execute(
                "SELECT event_date, region, user_id, video_id, watch_seconds, "
                "strftime(last_watched_at, '%Y-%m-%d %H:%M:%S.%f') "
                f"FROM '{work / f'duck-{size:g}M' / 'user_video_daily.parquet'}'"
            ).fetchall()
            spark_likers = read.load(lake_path(sized, "analytics", "video_likers")).select(
                *VIDEO_LIKERS_COLUMNS
            )
            duck_likers = con.execute(
                f"SELECT * FROM '{work / f'duck-{size:g}M' / 'video_likers.parquet'}'"
            ).fetchall()
            same = (
                _rounded([tuple(r) for r in spark_video.collect()]) == _rounded(duck_video)
                and _rounded([tuple(r) for r in spark_user.collect()]) == _rounded(duck_user)
                and _rounded([tuple(r) for r in spark_likers.collect()]) == _rounded(duck_likers)
            )
            run.verified_equal = same
            if not same:
                raise RuntimeError("Spark and DuckDB gold differ on the smallest input")
        con.close()
        _say(
            f"{events:,} events: Spark {spark_s:.1f} s (first run {first:.1f} s), DuckDB "
            f"{duck_s:.1f} s, ratio {run.ratio:.1f}x"
        )
        runs.append(run)
    spark.stop()
    return runs


# --- report -----------------------------------------------------------------------------


def write_results(ingest: list[IngestRun], gold: list[GoldRun], meta: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics.json").write_text(
        json.dumps(
            {**meta, "ingest": [asdict(r) for r in ingest], "gold": [asdict(r) for r in gold]},
            indent=2,
        )
    )
    lines = [f"# Analytics benchmark ({meta['when']})", "", meta["machine"], ""]
    if ingest:
        lines += [
            "## Event ingest (batches of 100 events)",
            "",
            "| method | clients | events | events/s | p50 ms | p99 ms | stored |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.method} | {r.clients} | {r.events} | {r.events_per_s:,.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.stored_events} |"
            for r in ingest
        ]
        lines.append("")
    if gold:
        lines += [
            "## Daily gold job: Spark (warm session) vs DuckDB, same semantics",
            "",
            "| silver events | Spark s | (first run s) | DuckDB s | Spark/DuckDB | gold rows |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.silver_events:,} | {r.spark_seconds:.1f} | {r.spark_first_run_seconds:.1f} | "
            f"{r.duckdb_seconds:.1f} | {r.ratio:.1f}x | "
            f"{r.video_daily_stats_rows:,} + {r.user_video_daily_rows:,} |"
            for r in gold
        ]
        lines += ["", f"Target: Spark <= {TARGET_RATIO:g}x DuckDB at the largest input. "
                  f"Input: {meta['input']}.", ""]  # fmt: skip
    (RESULTS / "analytics.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", default=bool(os.environ.get("VIDFLOW_BENCH_QUICK"))
    )
    parser.add_argument("--sizes", default="1,3,10", help="silver sizes in millions of events")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batches", type=int, default=600, help="batches per ingest method")
    parser.add_argument("--seconds", type=float, default=60, help="time bound per method")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-gold", action="store_true")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument(
        "--work",
        type=Path,
        help="keep the generated silver inputs in this directory and reuse them next time "
        "(default: a temporary directory, removed at the end)",
    )
    args = parser.parse_args()
    sizes = [0.2, 0.5] if args.quick else [float(s) for s in args.sizes.split(",")]
    os.environ["VIDFLOW_SPARK_DRIVER_MEMORY"] = args.driver_memory
    get_settings.cache_clear()
    settings = get_settings()
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, load average "
        f"{os.getloadavg()[0]:.1f} at start",
        "input": "traffic model `history` (seed 1, one day); smaller sizes are whole-viewer "
        "samples of the largest",
        "spark": {"master": settings.spark_master, "driver_memory": settings.spark_driver_memory,
                  "shuffle_partitions": settings.spark_shuffle_partitions},
    }  # fmt: skip
    ingest: list[IngestRun] = []
    gold: list[GoldRun] = []
    if not args.skip_ingest:
        ingest = bench_ingest(
            settings, args.clients, args.batches, args.seconds, RESULTS / "analytics-viewer.log"
        )
        for r in ingest:
            _say(
                f"{r.method}: {r.events_per_s:,.0f} events/s, "
                f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms"
            )
        write_results(ingest, gold, meta)
    if not args.skip_gold and args.work:
        # Kept between runs: the silver inputs are generated once and reused.
        args.work.mkdir(parents=True, exist_ok=True)
        gold = bench_gold(settings, sizes, args.work)
    elif not args.skip_gold:
        with tempfile.TemporaryDirectory(prefix="bench-analytics-", dir=settings.state_dir) as work:
            gold = bench_gold(settings, sizes, Path(work))
    meta["load_average_end"] = os.getloadavg()[0]
    write_results(ingest, gold, meta)
    print((RESULTS / "analytics.md").read_text())


if __name__ == "__main__":
    main()
