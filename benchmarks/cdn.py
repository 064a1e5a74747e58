# ruff: noqa: S608  (SQL built from the benchmark's own paths and constants)
"""CDN benchmark: bronze + popularity (Spark vs DuckDB), edge-hit throughput (vs a static
nginx), and how much of the LRU -> Belady gap warming closes.

``python -m benchmarks.cdn [--sizes 1,3] [--skip-engines] [--skip-edge] [--skip-warming]``
(or ``make bench BENCH=cdn``).

(a) **Bronze + popularity.** CloudFront log objects from the traffic model's history mode
(``vidflow.traffic.cdnlogs``, seed 11, 6000 viewers, 400 videos), cut at 1M / 3M (/ 10M)
rows. Spark (a warm session: the first pass warms up, the second is timed) runs the
bronze transforms of ``jobs/cdn_bronze.py`` (parse, rules, dedupe by request id) and the
popularity of ``jobs/cdn_plan.py`` and writes both to parquet; DuckDB runs the same
semantics in SQL on the same files and writes the same two outputs. The accepted row
counts and the per-object scores must agree (1e-6) on the smallest input.

(b) **Edge throughput.** A ~512 KB segment through the us-east edge (a hit: fetched once
before) against a static nginx serving the same bytes from disk on loopback, each with
the same bounded load generator (``--clients`` keep-alive connections, ``--seconds``).

(c) **Warming.** On the same history, for three scenarios per edge (steady: the edge's
median-traffic hour; diurnal peak: its busiest hour; viral: the first hour of a viral
burst in its region), the next hour's requests replayed against LRU, LRU warmed by the
plan from the 6 hours before, and Belady, at the edge's configured cache size and at a
larger one; gap share = (warmed - LRU) / (Belady - LRU) in byte hit ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vidflow.cdn.config import parse_nginx_size
from vidflow.cdn.popularity import Request
from vidflow.cdn.replay import evaluate
from vidflow.config import REPO_ROOT, Settings, get_settings
from vidflow.traffic.cdnlogs import write_cdn_logs
from vidflow.traffic.history import directory_put
from vidflow.traffic.model import Population, build_population

RESULTS = Path(__file__).parent / "results"
DATA = REPO_ROOT / ".local" / "bench" / "cdn"
TARGET_RATIO = 3.0
START = datetime(2026, 11, 1, tzinfo=UTC)
HALF_LIFE = 1.0


def _say(message: str) -> None:
    print(f"[cdn] {message}", flush=True)


def population(days: int) -> Population:
    return build_population(11, viewers=6000, videos=400, start=START, days=days)


def history_dir(settings: Settings, millions: int) -> Path:
    """Log objects of ``millions`` x 1M requests (generated once, then reused)."""
    target = DATA / f"rows-{millions}m"
    done = target / "DONE"
    if done.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    days = max(2, math.ceil(millions * 1_000_000 / 850_000) + 1)
    began = time.monotonic()
    result = write_cdn_logs(
        population(days),
        settings,
        directory_put(target),
        _say,
        tag=f"bench{millions}m",
        prefix="",
        max_requests=millions * 1_000_000,
    )
    done.write_text(json.dumps({"requests": result.requests, "objects": result.objects}))
    _say(f"{result.requests} rows in {result.objects} objects in {time.monotonic() - began:.0f}s")
    return target


# --- (a) Spark vs DuckDB ------------------------------------------------------------------


def spark_pass(spark: Any, source: Path, out: Path, as_of: datetime) -> dict[str, int]:
    from pyspark.sql import functions as F

    from jobs.cdn_plan import popularity
    from vidflow.cdn.bronze import accepted_requests, check_lines
    from vidflow.cdn.payloads import CdnWindow

    lines = (
        spark.read.text(str(source / "*.gz"))
        .select(F.col("value").alias("raw_line"), F.col("_metadata.file_path").alias("source_key"))
        .where(~F.col("raw_line").startswith("#") & (F.trim("raw_line") != ""))
    )
    rows = accepted_requests(check_lines(lines)).persist()
    rows.write.mode("overwrite").parquet(str(out / "spark_requests"))
    window = CdnWindow(as_of - timedelta(hours=1), as_of, half_life_hours=HALF_LIFE)
    popularity(rows.where(F.col("request_ts") < F.lit(as_of)), window).write.mode(
        "overwrite"
    ).parquet(str(out / "spark_popularity"))
    counts = {"requests": rows.count()}
    rows.unpersist()
    return counts


DUCKDB_SQL = """
CREATE OR REPLACE TEMP TABLE lines AS
SELECT string_split(line, chr(9)) AS p, filename AS source_key
FROM read_csv('{src}/*.gz', columns={{'line': 'VARCHAR'}}, delim=chr(1), header=false,
              quote='', escape='', filename=true, auto_detect=false)
WHERE NOT starts_with(line, '#') AND trim(line) <> '';

-- Every rule of vidflow.cdn.bronze.request_rules and every column of cdn_requests, so
-- both engines do the same work (fields are 1-based here).
CREATE OR REPLACE TEMP TABLE requests AS
WITH checked AS (
  SELECT p, source_key,
         try_strptime(p[1] || ' ' || p[2], '%Y-%m-%d %H:%M:%S') AS ts,
         url_decode(replace(p[8], '+', '%2B')) AS stem
  FROM lines
  WHERE len(p) = 33
), good AS (
  SELECT * FROM checked
  WHERE ts IS NOT NULL
    AND TRY_CAST(p[4] AS BIGINT) >= 0 AND TRY_CAST(p[9] AS BIGINT) >= 0
    AND TRY_CAST(p[18] AS BIGINT) >= 0 AND TRY_CAST(p[27] AS BIGINT) >= 0
    AND (p[26] = '-' OR TRY_CAST(p[26] AS BIGINT) >= 0)
    AND (p[31] = '-' OR TRY_CAST(p[31] AS BIGINT) >= 0)
    AND (p[32] = '-' OR TRY_CAST(p[32] AS BIGINT) >= 0)
    AND (p[33] = '-' OR TRY_CAST(p[33] AS BIGINT) >= 0)
    AND TRY_CAST(p[19] AS DOUBLE) >= 0 AND TRY_CAST(p[28] AS DOUBLE) >= 0
    AND p[3] <> '-' AND p[5] <> '-' AND p[6] <> '-' AND p[7] <> '-' AND p[8] <> '-'
    AND p[14] <> '-' AND p[15] <> '-' AND p[17] <> '-' AND p[23] <> '-' AND p[24] <> '-'
    AND p[29] <> '-'
    AND p[3] IN ('us-east', 'eu-west', 'ap-south', 'sa-east')
    AND p[14] IN ('Hit', 'RefreshHit', 'Miss', 'Error', 'LimitExceeded', 'CapacityExceeded')
), typed AS (
  SELECT p[15] AS request_id, ts AS request_ts, ts::DATE AS request_date,
         date_trunc('hour', ts) AS request_hour, p[3] AS region, stem AS uri_stem,
         CASE WHEN p[12] = '-' THEN NULL ELSE url_decode(replace(p[12], '+', '%2B')) END
           AS uri_query,
         CASE WHEN ends_with(stem, '/master.m3u8') THEN 'master'
              WHEN ends_with(stem, '.m3u8') THEN 'playlist'
              WHEN ends_with(stem, '/init.mp4') THEN 'init'
              WHEN ends_with(stem, '.m4s') THEN 'segment' ELSE 'other' END AS object_kind,
         nullif(lower(regexp_extract(stem, '{media}', 1)), '') AS video_id,
         nullif(regexp_extract(stem, '{media}', 3), '') AS rendition,
         TRY_CAST(nullif(regexp_extract(stem, '{media}', 4), '') AS INTEGER) AS segment,
         TRY_CAST(p[9] AS INTEGER) AS sc_status, TRY_CAST(p[4] AS BIGINT) AS sc_bytes,
         coalesce(TRY_CAST(nullif(p[31], '-') AS BIGINT), TRY_CAST(p[4] AS BIGINT))
           AS object_bytes,
         p[14] AS result_type, p[23] AS response_result_type, p[29] AS detailed_result_type,
         p[5] AS c_ip,
         CASE WHEN p[11] = '-' THEN NULL ELSE url_decode(replace(p[11], '+', '%2B')) END
           AS user_agent,
         TRY_CAST(p[19] AS DOUBLE) AS time_taken, TRY_CAST(p[28] AS DOUBLE) AS time_to_first_byte,
         CASE WHEN p[30] = '-' THEN NULL ELSE url_decode(replace(p[30], '+', '%2B')) END
           AS content_type,
         TRY_CAST(nullif(p[32], '-') AS BIGINT) AS range_start,
         TRY_CAST(nullif(p[33], '-') AS BIGINT) AS range_end,
         source_key,
         try_strptime(regexp_extract(source_key, '{object_name}', 2), '%Y-%m-%d-%H') AS file_hour
  FROM good
)
SELECT * EXCLUDE (rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY file_hour, source_key) AS rn
  FROM typed
) WHERE rn = 1;

COPY requests TO '{out}/duckdb_requests.parquet' (FORMAT parquet);

COPY (
  WITH w AS (
    SELECT *, pow(2.0, -(epoch(TIMESTAMP '{as_of}') - epoch(request_ts)) / {hl_seconds}) AS w
    FROM requests
    WHERE sc_status IN (200, 206) AND result_type <> 'Error'
      AND request_ts < TIMESTAMP '{as_of}'
  )
  SELECT 'object' AS level, region, uri_stem AS id, sum(w) AS score,
         max(object_bytes) AS size, count(*) AS requests
  FROM w GROUP BY region, uri_stem
  UNION ALL
  SELECT 'video', region, video_id, sum(w), NULL, count(*)
  FROM w WHERE object_kind = 'master' GROUP BY region, video_id
) TO '{out}/duckdb_popularity.parquet' (FORMAT parquet);
"""


def duckdb_pass(source: Path, out: Path, as_of: datetime) -> dict[str, int]:
    import duckdb

    from vidflow.cdn.bronze import MEDIA_PATH_JAVA, OBJECT_NAME_JAVA

    con = duckdb.connect(config={"threads": 2})
    sql = DUCKDB_SQL.format(
        src=source,
        out=out,
        media=MEDIA_PATH_JAVA.replace("'", "''"),
        object_name=OBJECT_NAME_JAVA.replace("'", "''"),
        as_of=as_of.strftime("%Y-%m-%d %H:%M:%S"),
        hl_seconds=HALF_LIFE * 3600.0,
    )
    con.execute(sql)
    count = con.execute("SELECT count(*) FROM requests").fetchone()
    con.close()
    return {"requests": int(count[0]) if count else 0}


def compare_outputs(out: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    diff = con.execute(
        f"""
        SELECT count(*) AS objects,
               max(abs(s.score - d.score)) AS max_score_diff,
               sum(CASE WHEN s.requests <> d.requests THEN 1 ELSE 0 END) AS count_mismatch
        FROM read_parquet('{out}/spark_popularity/*.parquet') s
        FULL JOIN read_parquet('{out}/duckdb_popularity.parquet') d
          ON s.level = d.level AND s.region = d.region AND s.id = d.id
        """
    ).fetchone()
    con.close()
    assert diff is not None
    return {"objects": diff[0], "max_score_diff": diff[1], "count_mismatch": diff[2]}


def bench_engines(settings: Settings, sizes: list[int]) -> list[dict[str, Any]]:
    from vidflow.spark import get_spark

    spark = get_spark("bench_cdn", settings)
    results = []
    for millions in sizes:
        source = history_dir(settings, millions)
        as_of = latest_hour(source)
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            out = Path(tmp)
            spark_pass(spark, source, out, as_of)  # warm-up
            began = time.monotonic()
            spark_counts = spark_pass(spark, source, out, as_of)
            spark_s = time.monotonic() - began
            began = time.monotonic()
            duck_counts = duckdb_pass(source, out, as_of)
            duck_s = time.monotonic() - began
            check = compare_outputs(out) if millions == sizes[0] else None
        row = {
            "rows_millions": millions,
            "accepted_spark": spark_counts["requests"],
            "accepted_duckdb": duck_counts["requests"],
            "spark_seconds": round(spark_s, 2),
            "duckdb_seconds": round(duck_s, 2),
            "ratio": round(spark_s / duck_s, 2),
            "check": check,
        }
        _say(f"engines {millions}M: {row}")
        results.append(row)
    spark.stop()
    return results


def latest_hour(source: Path) -> datetime:
    names = sorted(p.name.split(".")[1] for p in source.glob("*.gz"))
    return datetime.strptime(names[-1], "%Y-%m-%d-%H").replace(tzinfo=UTC)


# --- (b) edge throughput ----------------------------------------------------------------


def load(host: str, port: int, path: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = []
        while time.monotonic() < stop:
            began = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            if ok:
                mine.append(time.perf_counter() - began)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors[0],
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3) if ordered else math.nan,
        "p99_ms": round(
            ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] * 1000, 3
        )
        if ordered
        else math.nan,
    }


VEGETA = REPO_ROOT / ".local" / "bin" / "vegeta"


def vegeta(url: str, *, rate: int, seconds: float, workers: int) -> dict[str, float]:
    """One vegeta attack on ``url``: ``rate`` requests/s held open-loop (latency at a fixed
    load), or ``rate`` 0 for ``workers`` closed-loop connections as fast as they go."""
    binary = str(VEGETA) if VEGETA.exists() else shutil.which("vegeta")
    if binary is None:
        raise RuntimeError("vegeta not found: scripts/setup.sh installs it into .local/bin")
    attack = [binary, "attack", f"-rate={rate}", f"-duration={seconds}s", "-keepalive=true"]
    if rate == 0:
        attack += [f"-workers={workers}", f"-max-workers={workers}"]
    else:
        attack += ["-workers=4", f"-max-workers={max(workers, 64)}"]
    hits = subprocess.run(
        attack, input=f"GET {url}\n".encode(), capture_output=True, check=True
    ).stdout
    report = subprocess.run(
        [binary, "report", "-type=json"], input=hits, capture_output=True, check=True
    ).stdout
    data = json.loads(report)
    lat = data["latencies"]
    return {
        "rate": rate,
        "requests": int(data["requests"]),
        "rps": round(float(data["throughput"]), 1),
        "success": round(float(data["success"]), 4),
        "p50_ms": round(lat["50th"] / 1e6, 3),
        "p99_ms": round(lat["99th"] / 1e6, 3),
        "max_ms": round(lat["max"] / 1e6, 3),
    }


def load_profile(url: str, rate: int, seconds: float, workers: int) -> dict[str, Any]:
    """Closed-loop throughput, then latency at a fixed ``rate`` (vegeta), and a
    one-connection sequential probe (Python, the service time without queueing)."""
    host, _, rest = url.split("//", 1)[1].partition("/")
    name, port = host.split(":")
    return {
        "max": vegeta(url, rate=0, seconds=seconds, workers=workers),
        "fixed": vegeta(url, rate=rate, seconds=seconds, workers=workers),
        "sequential": load(name, int(port), "/" + rest, 1, min(seconds, 3.0)),
    }


def edge_session(settings: Settings) -> str:
    """Whether the us-east edge's nginx master runs in a session of its own (the launcher
    of vidflow.cdn) or in its supervisor's (an edge started before that change)."""
    from vidflow.cdn.config import find_tier, pid_path

    master = int(pid_path(settings, find_tier(settings, "edge-us-east")).read_text().strip())
    return "own" if os.getsid(master) == master else "shared with its supervisor"


def bench_edge(settings: Settings, clients: int, seconds: float, rate: int) -> dict[str, Any]:
    from vidflow.storage import s3_client

    body = os.urandom(512 * 1024)
    key = f"media/videos/{uuid.uuid4()}/v1/720p/seg_00001.m4s"
    s3_client(settings).put_object(Bucket=settings.bucket_media, Key=key, Body=body)
    edge = settings.edge_urls()["us-east"]
    import httpx

    for _ in range(2):
        answer = httpx.get(f"{edge}/{key}", timeout=30)
        answer.raise_for_status()
    assert answer.headers.get("X-Cache-Edge") == "HIT", answer.headers
    edge_result = load_profile(f"{edge}/{key}", rate, seconds, clients)

    root = Path(tempfile.mkdtemp(prefix="static-nginx-"))
    (root / "www" / Path(key).parent).mkdir(parents=True)
    (root / "www" / key).write_bytes(body)
    static_port = 18190
    conf = root / "nginx.conf"
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\n"
        f"error_log {root}/error.log;\nevents {{ worker_connections 1024; }}\n"
        f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{static_port}; "
        f"root {root}/www; }} }}\n"
    )
    # nginx's workers run as nobody: they must be able to read the file.
    for item in (root, root / "www", *(root / "www").rglob("*")):
        item.chmod(0o755 if item.is_dir() else 0o644)
    # In a session of its own, like the edges: Linux shares the CPU between sessions
    # (autogroups) first, so both servers compete on the same terms.
    proc = subprocess.Popen(
        [settings.cdn_nginx_binary, "-c", str(conf), "-p", str(root)], start_new_session=True
    )
    try:
        for _ in range(50):
            try:
                httpx.get(f"http://127.0.0.1:{static_port}/{key}", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        static_url = f"http://127.0.0.1:{static_port}/{key}"
        static_result = load_profile(static_url, rate, seconds, clients)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "object_bytes": len(body),
        "clients": clients,
        "seconds": seconds,
        "rate": rate,
        "edge_session": edge_session(settings),
        "load": os.getloadavg()[0],
        "edge_hit": edge_result,
        "static_nginx": static_result,
        "rps_ratio": round(edge_result["max"]["rps"] / static_result["max"]["rps"], 3),
    }
    _say(f"edge: {result}")
    return result


# --- (c) warming ----------------------------------------------------------------------------


def by_hour(requests: list[Request]) -> dict[tuple[str, int], list[Request]]:
    out: dict[tuple[str, int], list[Request]] = defaultdict(list)
    for r in requests:
        out[r.edge, int(r.ts // 3600)].append(r)
    return out


def scenario_hours(hours: dict[tuple[str, int], list[Request]], day: int) -> list[Any]:
    """(scenario, edge, hour) on ``day`` (unix day number): per edge its median-traffic
    hour (steady) and its busiest hour (diurnal peak)."""
    from vidflow.regions import REGION_NAMES

    first, last = day * 24 + HISTORY_HOURS, day * 24 + 24
    chosen = []
    for edge in REGION_NAMES:
        mine = {h: len(v) for (e, h), v in hours.items() if e == edge and first <= h < last}
        if not mine:
            continue
        ranked = sorted(mine, key=lambda h: (mine[h], h))
        chosen.append(("steady", edge, ranked[len(ranked) // 2]))
        chosen.append(("diurnal_peak", edge, ranked[-1]))
    return chosen


def viral_hours(pop: Population, after: datetime) -> list[tuple[str, str, int]]:
    """The first two whole hours of each viral burst that starts after ``after``, in its
    region."""
    from vidflow.regions import REGION_NAMES

    out = []
    for burst in pop.viral:
        first = int(burst.start_ts // 3600) + 1
        if burst.start_ts >= after.timestamp():
            out += [("viral", REGION_NAMES[burst.region], h) for h in (first, first + 1)]
    return out


#: Hours of history before each replayed hour (the cache's state and the plan's input;
#: with a half-life of 1 h, older requests weigh under 1/8).
HISTORY_HOURS = 3
#: The admission threshold per cache size, fitted on the fit day (see bench_warming).
ADMIT_THRESHOLDS = {256 << 20: 2.0, 2048 << 20: 1.0}
FIT_DAY = START
REPORT_DAY = START + timedelta(days=1)


def read_hours(source: Path, first: datetime, last: datetime) -> list[Request]:
    """The requests of the log objects named for hours in [first, last)."""
    import gzip

    from vidflow.cdn.logformat import LogRecord, iter_lines
    from vidflow.cdn.popularity import is_cacheable, request_of

    out = []
    for path in sorted(source.glob("*.gz")):
        hour = datetime.strptime(path.name.split(".")[1], "%Y-%m-%d-%H").replace(tzinfo=UTC)
        if not first <= hour < last:
            continue
        for _, item in iter_lines(gzip.decompress(path.read_bytes()).decode("utf-8", "replace")):
            if isinstance(item, LogRecord) and is_cacheable(item):
                out.append(request_of(item))
    out.sort(key=lambda r: r.ts)
    return out


def bench_warming(settings: Settings, millions: int) -> list[dict[str, Any]]:
    """Replay the scenarios of the report days: steady and diurnal peak of the second day
    of the ``millions`` trace, and the first two hours of each viral burst from that day on.
    The admission thresholds were chosen on the first day of the 1M trace (2026-11-01,
    hours 5, 9, 13, 17 of every edge, 256 MiB and 2 GiB: the threshold with the largest
    pooled gap share of 0.5, 1, 2, 4), never on a day reported here."""
    source = history_dir(settings, millions)
    days = max(2, math.ceil(millions * 1_000_000 / 850_000) + 1)
    pop = population(days)
    begin = REPORT_DAY - timedelta(hours=HISTORY_HOURS)
    requests = read_hours(source, begin, REPORT_DAY + timedelta(days=1))
    _say(f"warming: {len(requests)} requests of {REPORT_DAY.date()} (+{HISTORY_HOURS} h before)")
    hours = by_hour(requests)
    chosen = scenario_hours(hours, int(REPORT_DAY.timestamp() // 86400))
    for scenario, edge, hour in viral_hours(pop, REPORT_DAY):
        if not hours.get((edge, hour)):  # a later day: read its hours
            start = datetime.fromtimestamp((hour - HISTORY_HOURS) * 3600, UTC)
            more = by_hour(read_hours(source, start, start + timedelta(hours=HISTORY_HOURS + 1)))
            for k, v in more.items():
                hours.setdefault(k, v)
        if hours.get((edge, hour)):
            chosen.append((scenario, edge, hour))
    edge_cache = parse_nginx_size(settings.cdn_edge_cache_max_size)
    rows = []
    for scenario, edge, hour in chosen:
        history = [r for h in range(hour - HISTORY_HOURS, hour) for r in hours.get((edge, h), [])]
        upcoming = hours.get((edge, hour), [])
        for cache in (edge_cache, 8 * edge_cache):
            (result,) = evaluate(
                history,
                upcoming,
                cache_bytes=cache,
                budget_bytes=cache // 4,
                half_life_hours=HALF_LIFE,
                edges=[edge],
                admit_threshold=ADMIT_THRESHOLDS.get(cache, 1.0),
            )
            row = {
                "scenario": scenario,
                "edge": edge,
                "hour": datetime.fromtimestamp(hour * 3600, UTC).isoformat(),
                "requests": len(upcoming),
                "admit_threshold": ADMIT_THRESHOLDS.get(cache, 1.0),
                **{k: v for k, v in result.to_dict().items() if k != "edge"},
            }
            rows.append(row)
            admitted = result.admitted.byte_hit_ratio if result.admitted else math.nan
            _say(
                f"{scenario} {edge} {row['hour']} cache {cache >> 20} MiB: LRU "
                f"{result.lru.byte_hit_ratio:.3f} warmed {result.warmed.byte_hit_ratio:.3f} "
                f"admitted+warmed {admitted:.3f} Belady {result.belady.byte_hit_ratio:.3f} "
                f"shares {row['gap_share']} / {row['admitted_gap_share']}"
            )
    return rows


def pooled_share(rows: list[dict[str, Any]], policy: str, cache: int) -> float | None:
    """Sum over scenarios of (policy - LRU) / sum of (Belady - LRU), in byte hit ratio."""
    mine = [r for r in rows if r["cache_bytes"] == cache and r.get(policy)]
    gap = sum(r["belady"]["byte_hit_ratio"] - r["lru"]["byte_hit_ratio"] for r in mine)
    if gap <= 0:
        return None
    won = sum(r[policy]["byte_hit_ratio"] - r["lru"]["byte_hit_ratio"] for r in mine)
    return float(won / gap)


# --- report ------------------------------------------------------------------------------


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cdn.json").write_text(json.dumps(results, indent=2, default=str))
    lines = ["# CDN benchmark", "", f"{results['machine']}", ""]
    if results.get("engines"):
        lines += [
            "## Bronze + popularity: Spark (warm) vs DuckDB, same input",
            "",
            "| rows | Spark s | DuckDB s | ratio | accepted (Spark/DuckDB) |",
            "|---|---|---|---|---|",
        ]
        for r in results["engines"]:
            lines.append(
                f"| {r['rows_millions']}M | {r['spark_seconds']} | {r['duckdb_seconds']} | "
                f"{r['ratio']}x | {r['accepted_spark']}/{r['accepted_duckdb']} |"
            )
        for r in results.get("engines_earlier_runs") or []:
            lines.append(
                f"| {r['rows_millions']}M (earlier run) | {r['spark_seconds']} | "
                f"{r['duckdb_seconds']} | {r['ratio']}x | {r['accepted_spark']}/"
                f"{r['accepted_duckdb']} |"
            )
        lines += ["", f"Target: <= {TARGET_RATIO}x. Check on the smallest input: "
                  f"{results['engines'][0]['check']}", ""]  # fmt: skip
    if results.get("edge"):
        e = results["edge"]
        lines += [
            "## Edge hit vs static nginx (loopback, vegeta)",
            "",
            f"{e['object_bytes']} B object; closed loop: {e['clients']} keep-alive connections "
            f"for {e['seconds']} s; fixed rate: {e['rate']} req/s; sequential: one connection. "
            f"Edge session: {e['edge_session']}; load average {e['load']:.1f} on "
            f"{os.cpu_count()} cores.",
            "",
            "| target | max req/s | p99 ms (max) | req/s at fixed rate | p50 ms | p99 ms "
            "| sequential p50 ms |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {name} | {e[name]['max']['rps']} | {e[name]['max']['p99_ms']} | "
                f"{e[name]['fixed']['rps']} | {e[name]['fixed']['p50_ms']} | "
                f"{e[name]['fixed']['p99_ms']} | {e[name]['sequential']['p50_ms']} |"
                for name in ("edge_hit", "static_nginx")
            ),
            "",
        ]
    if results.get("warming"):
        rows = results["warming"]
        lines += [
            "## Warming and admission: share of the LRU -> Belady gap closed (byte hit ratio)",
            "",
            f"Steady and peak hours of {REPORT_DAY.date()}, viral hours of bursts from then "
            f"on (thresholds fitted on {FIT_DAY.date()} of another trace); "
            f"{HISTORY_HOURS} h of history before each hour; budget = cache / 4. "
            "*warmed*: plain LRU after the pushes; *admitted*: the edge behind its admission "
            "list (threshold per cache size) after the pushes.",
            "",
            "| scenario | edge | hour | cache MiB | LRU | warmed | admitted | Belady "
            "| share warmed | share admitted |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]

        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        for r in rows:
            admitted = r["admitted"]["byte_hit_ratio"] if r.get("admitted") else None
            lines.append(
                f"| {r['scenario']} | {r['edge']} | {r['hour'][:13]} | {r['cache_bytes'] >> 20} "
                f"| {r['lru']['byte_hit_ratio']:.3f} | {r['warmed']['byte_hit_ratio']:.3f} | "
                f"{fmt(admitted)} | {r['belady']['byte_hit_ratio']:.3f} | "
                f"{fmt(r['gap_share'])} | {fmt(r.get('admitted_gap_share'))} |"
            )
        lines += ["", "Pooled over the scenarios (sum of gains / sum of gaps):", ""]
        for cache in sorted({r["cache_bytes"] for r in rows}):
            lines.append(
                f"- {cache >> 20} MiB: warmed {fmt(pooled_share(rows, 'warmed', cache))}, "
                f"admitted {fmt(pooled_share(rows, 'admitted', cache))}"
            )
        lines.append("")
    (RESULTS / "cdn.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,3", help="millions of rows (default 1,3)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=300, help="fixed rate (req/s) for latency")
    parser.add_argument(
        "--warming-millions", type=int, default=3, help="trace of the warming part (two days)"
    )
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--skip-edge", action="store_true")
    parser.add_argument("--skip-warming", action="store_true")
    args = parser.parse_args()
    settings = get_settings()
    DATA.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    previous = RESULTS / "cdn.json"
    # Parts skipped in this run keep their last figures (each part says when it ran).
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    results |= {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}",
        "at": datetime.now(UTC).isoformat(),
    }
    if not args.skip_warming:
        results["warming"] = bench_warming(settings, args.warming_millions)
        write(results)
    if not args.skip_edge:
        results["edge"] = bench_edge(settings, args.clients, args.seconds, args.rate)
        write(results)
    if not args.skip_engines:
        fresh = bench_engines(settings, sizes)
        # Sizes measured in an earlier run (and not now) keep their rows.
        kept = [r for r in results.get("engines") or [] if r["rows_millions"] not in sizes]
        results["engines"] = sorted([*kept, *fresh], key=lambda r: r["rows_millions"])
    write(results)


if __name__ == "__main__":
    main()
