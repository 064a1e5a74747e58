"""Ship the edges' access logs to the cdn-logs bucket, every line exactly once.

Each round, for each edge:

1. **Rotate.** Rename ``access.log`` into ``pending/`` (same file system: atomic), send
   the edge's nginx master ``SIGUSR1`` (reopen logs), then wait until no nginx process
   still holds the renamed file open. Lines of requests that finish meanwhile are still
   written to the renamed file (by inode); lines after the reopen go to the new
   ``access.log``. Once nobody holds the file, it is complete.
2. **Ship.** Convert each raw line into its CloudFront line (:mod:`logformat`), group the
   lines by the UTC hour their request happened in, and upload one gzip object per hour:
   ``{prefix}{distribution}.YYYY-MM-DD-HH.{unique}.gz`` where ``unique`` is the pending
   file's own name. Then delete the pending file.

Nothing is lost: a pending file is deleted only after all its objects are uploaded, and
files left by a crash (or when the S3 endpoint is down) are shipped in the next round.
Nothing is duplicated: object keys derive only from the pending file and the hour, and
the bytes only from its lines, so shipping a file again overwrites the same objects with
the same content. A raw line that cannot be converted (never expected: nginx writes them)
goes to ``rejected.log`` next to the edge's log, with its reason, and is counted.

Like CloudFront, an object is named by the hour its requests happened in, not the hour it
was shipped: a request of 10:59:59 shipped at 11:00:05 lands in a ``-10`` object that
appears after 11:00. Readers of an hour therefore list that hour's prefix again later to
pick up late objects (at most one ship interval late while the shipper runs).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidflow.cdn.config import Tier, access_log_path, edges, pending_dir, pid_path, tier_dir
from vidflow.cdn.logformat import LogObjectName, LogRecord, MalformedLine, gzip_file
from vidflow.cdn.logformat import parse_raw_line as parse_raw
from vidflow.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("vidflow.cdn.shipper")

#: How long a rotation waits for nginx's workers to let go of the renamed file.
RELEASE_TIMEOUT_SECONDS = 10.0


@dataclass
class ShipReport:
    """What one round shipped."""

    objects: list[str] = field(default_factory=list)
    lines: int = 0
    rejected: int = 0
    #: Pending files left for the next round (a worker still writing, or S3 failing).
    deferred: int = 0


def _nginx_pids(master: int) -> list[int]:
    """The master and its children (workers, cache manager/loader)."""
    pids = [master]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, ...
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == master:
            pids.append(int(entry.name))
    return pids


def _held_open(path: Path, pids: list[int]) -> bool:
    """Does any of ``pids`` have ``path`` (by inode) open?"""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue  # gone
        for fd in fds:
            try:
                target = fd.stat()
            except OSError:
                continue
            if (target.st_dev, target.st_ino) == (st.st_dev, st.st_ino):
                return True
    return False


def _master_pid(settings: Settings, tier: Tier) -> int | None:
    try:
        pid = int(pid_path(settings, tier).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


class Shipper:
    """Rotates and ships the logs of ``tiers`` (default: every edge of the settings)."""

    def __init__(
        self,
        settings: Settings,
        *,
        s3: S3Client | None = None,
        tiers: list[Tier] | None = None,
        prefix: str | None = None,
    ) -> None:
        from vidflow.storage import s3_client

        self.settings = settings
        self.s3 = s3 or s3_client(settings)
        self.tiers = edges(settings) if tiers is None else tiers
        self.prefix = settings.cdn_log_prefix if prefix is None else prefix
        self._lock = threading.Lock()
        self.totals = ShipReport()
        self.last_round: datetime | None = None
        self.last_error: str | None = None

    # --- rotation ----------------------------------------------------------------------

    def rotate(self, tier: Tier) -> Path | None:
        """Move the edge's current log into pending/ and make nginx reopen it. Returns the
        pending file, or None when there was nothing to rotate."""
        current = access_log_path(self.settings, tier)
        try:
            if current.stat().st_size == 0:
                return None
        except FileNotFoundError:
            return None
        pending = pending_dir(self.settings, tier)
        pending.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = pending / f"{stamp}-{secrets.token_hex(4)}.log"
        current.rename(target)
        master = _master_pid(self.settings, tier)
        if master is not None:
            os.kill(master, signal.SIGUSR1)
        return target

    def _released(self, tier: Tier, path: Path) -> bool:
        master = _master_pid(self.settings, tier)
        return master is None or not _held_open(path, _nginx_pids(master))

    # --- shipping ------------------------------------------------------------------------

    def ship_file(self, tier: Tier, path: Path, report: ShipReport) -> None:
        """Upload one complete pending file (one object per hour), then delete it."""
        by_hour: dict[datetime, list[LogRecord]] = defaultdict(list)
        rejects: list[str] = []
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = parse_raw(line)
            except MalformedLine as exc:
                rejects.append(f"{path.name}:{number}\t{exc}\t{line}")
                continue
            by_hour[record.hour].append(record)
        for hour, records in sorted(by_hour.items()):
            name = LogObjectName(tier.distribution, hour, path.stem)
            key = name.key(self.prefix)
            self.s3.put_object(
                Bucket=self.settings.bucket_cdn_logs,
                Key=key,
                Body=gzip_file(records),
                ContentType="application/x-gzip",
            )
            report.objects.append(key)
            report.lines += len(records)
        if rejects:
            with (tier_dir(self.settings, tier) / "rejected.log").open(
                "a", encoding="utf-8", errors="surrogateescape"
            ) as out:
                out.write("\n".join(rejects) + "\n")
            report.rejected += len(rejects)
            log.warning("%s: %d raw lines rejected (see rejected.log)", tier.name, len(rejects))
        path.unlink()

    def flush(self) -> ShipReport:
        """One round: rotate every edge's log and ship every complete pending file."""
        report = ShipReport()
        with self._lock:
            rotated = {tier.name: self.rotate(tier) for tier in self.tiers}
            for tier in self.tiers:
                fresh = rotated[tier.name]
                deadline = time.monotonic() + RELEASE_TIMEOUT_SECONDS
                while fresh is not None and not self._released(tier, fresh):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                for path in sorted(pending_dir(self.settings, tier).glob("*.log")):
                    if not self._released(tier, path):
                        report.deferred += 1  # a worker still writes to it: next round
                        continue
                    try:
                        self.ship_file(tier, path, report)
                    except Exception as exc:  # keep the file, retry next round
                        report.deferred += 1
                        self.last_error = f"{tier.name}: {exc}"
                        log.warning("shipping %s failed, will retry: %s", path, exc)
            self.totals.objects = self.totals.objects[-20:] + report.objects
            self.totals.lines += report.lines
            self.totals.rejected += report.rejected
            self.totals.deferred = report.deferred
            self.last_round = datetime.now(UTC)
        return report

    def status(self) -> dict[str, Any]:
        return {
            "edges": [t.name for t in self.tiers],
            "lines_shipped": self.totals.lines,
            "lines_rejected": self.totals.rejected,
            "pending_files": self.totals.deferred,
            "recent_objects": self.totals.objects[-20:],
            "last_round": self.last_round.isoformat() if self.last_round else None,
            "last_error": self.last_error,
        }


# --- the supervised service ----------------------------------------------------------------


def _handler(shipper: Shipper) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # http.server naming
            if self.path == "/healthz":
                self._send(200, shipper.status())
            else:
                self._send(404, {"detail": "GET /healthz or POST /v1/flush"})

        def do_POST(self) -> None:
            if self.path == "/v1/flush":
                self._send(200, asdict(shipper.flush()))
            else:
                self._send(404, {"detail": "GET /healthz or POST /v1/flush"})

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler


def serve(settings: Settings) -> None:
    """Run the shipper until SIGTERM/SIGINT: a round every ``cdn_log_ship_seconds``, a
    final round on the way out, and the health/flush endpoint on ``cdn_shipper_port``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    shipper = Shipper(settings)
    server = ThreadingHTTPServer((settings.bind_host, settings.cdn_shipper_port), _handler(shipper))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("shipping %d edges every %.1fs", len(shipper.tiers), settings.cdn_log_ship_seconds)
    while True:
        report = shipper.flush()
        if report.objects or report.rejected:
            log.info(
                "shipped %d lines in %d objects (%d rejected, %d deferred)",
                report.lines,
                len(report.objects),
                report.rejected,
                report.deferred,
            )
        if stop.wait(settings.cdn_log_ship_seconds):
            break
    shipper.flush()
    server.shutdown()
