"""``python -m vidflow.cdn nginx TIER | ship | conf TIER`` (see the package docstring)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import sys
from typing import Final

from vidflow.cdn.config import (
    Tier,
    admission_map,
    admission_map_path,
    cache_dir,
    conf_path,
    find_tier,
    pending_dir,
    render_conf,
    temp_dir,
    tier_dir,
)
from vidflow.config import Settings, get_settings


def prepare(settings: Settings, tier: Tier) -> None:
    """Write the tier's nginx.conf and create its directories. As root, the cache and
    temp directories belong to the workers' user and the path to them is traversable."""
    for path in (cache_dir(settings, tier), temp_dir(settings, tier), pending_dir(settings, tier)):
        path.mkdir(parents=True, exist_ok=True)
    admit = admission_map_path(settings, tier)
    if tier.kind == "edge" and not admit.exists():
        admit.write_text(admission_map(None))
    conf_path(settings, tier).write_text(render_conf(settings, tier))
    if os.geteuid() == 0:
        for parent in [tier_dir(settings, tier), *tier_dir(settings, tier).parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        for path in (cache_dir(settings, tier), temp_dir(settings, tier)):
            shutil.chown(path, "nobody", "nogroup")


#: Signals a supervisor (stop), an operator (reload, reopen) or the shipper sends nginx.
FORWARDED_SIGNALS: Final = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
_PR_SET_PDEATHSIG: Final = 1


def run_nginx(settings: Settings, tier: Tier) -> int:
    """Run the tier's nginx master in the foreground, in a session of its own.

    A session leader (a terminal, a container's init) simply becomes nginx. Under a
    supervisor, which starts each program as a process-group leader in *its* session, nginx
    runs as a child that calls ``setsid``: Linux's scheduler (CONFIG_SCHED_AUTOGROUP, on by
    default) shares the CPU between sessions first, so an edge inside the supervisor's
    session competed with every Airflow task and Spark driver of the stack for that
    session's share; on a loaded machine a cache hit then waited tens of milliseconds for a
    CPU (benchmarks/cdn.py). This process stays as the supervised one: it forwards stop,
    reload and reopen signals to the master and exits with it, and nginx gets SIGTERM if it
    dies (``PR_SET_PDEATHSIG``), so stopping the stack leaves nothing behind."""
    prepare(settings, tier)
    binary = settings.cdn_nginx_binary
    argv = [binary, "-p", str(tier_dir(settings, tier)), "-e", "stderr"]
    argv += ["-c", str(conf_path(settings, tier))]
    if os.getsid(0) == os.getpid():
        os.execv(binary, argv)  # noqa: S606 - argument list, no shell
    return _run_in_own_session(argv)


def _run_in_own_session(argv: list[str]) -> int:
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # pragma: no cover - replaced by nginx
        try:
            os.setsid()
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            os.execv(argv[0], argv)  # noqa: S606 - argument list, no shell
        finally:
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidflow.cdn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listen = "HOST:PORT to listen on (default: bind_host and the tier's port from settings)"
    for name in ("nginx", "conf"):
        cmd = sub.add_parser(name)
        cmd.add_argument("tier", help="shield or edge-<region>")
        cmd.add_argument("--listen", help=listen)
    ship = sub.add_parser("ship", help="run the log shipper")
    ship.add_argument("--listen", help="HOST:PORT of the health/flush endpoint")
    args = parser.parse_args(argv)
    settings = get_settings()
    port: int | None = None
    if args.listen:
        host, _, port_text = args.listen.rpartition(":")
        settings = settings.model_copy(update={"bind_host": host})
        port = int(port_text)
    if args.command == "ship":
        from vidflow.cdn.shipper import serve

        if port is not None:
            settings = settings.model_copy(update={"cdn_shipper_port": port})
        serve(settings)
        return 0
    try:
        tier = find_tier(settings, args.tier)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    if port is not None:
        tier = dataclasses.replace(tier, port=port)
    if args.command == "conf":
        print(render_conf(settings, tier), end="")
        return 0
    return run_nginx(settings, tier)


if __name__ == "__main__":
    sys.exit(main())
