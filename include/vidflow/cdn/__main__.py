"""``python -m vidflow.cdn nginx TIER | ship | conf TIER`` (see the package docstring)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys

from vidflow.cdn.config import (
    Tier,
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
    conf_path(settings, tier).write_text(render_conf(settings, tier))
    if os.geteuid() == 0:
        for parent in [tier_dir(settings, tier), *tier_dir(settings, tier).parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        for path in (cache_dir(settings, tier), temp_dir(settings, tier)):
            shutil.chown(path, "nobody", "nogroup")


def run_nginx(settings: Settings, tier: Tier) -> None:
    """Replace this process with the tier's nginx master (supervised in the foreground)."""
    prepare(settings, tier)
    binary = settings.cdn_nginx_binary
    argv = [binary, "-p", str(tier_dir(settings, tier)), "-e", "stderr"]
    argv += ["-c", str(conf_path(settings, tier))]
    os.execv(binary, argv)  # noqa: S606 - argument list, no shell


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
    run_nginx(settings, tier)
    return 0


if __name__ == "__main__":
    sys.exit(main())
