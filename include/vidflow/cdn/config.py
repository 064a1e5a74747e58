"""nginx configuration of the CDN tiers, generated from settings (pure: no I/O).

One **shield** caches the media bucket; one **edge** per region caches the shield. Each
tier is one nginx (master + one worker) with its own ``proxy_cache`` zone and size limit.
Objects are fetched and cached in slices (``slice``: ``$uri$slice_range`` is the cache
key, ``Range: $slice_range`` goes upstream), so byte ranges — the I-frame playlists' — and
whole objects share cached slices, and a large object never has to be fetched whole.

Freshness is the CDN's policy, not the origin's: segments and init segments are
immutable (cached and served with a long max-age), playlists live
``cdn_playlist_max_age_seconds``, anything else (thumbnails, captions) an hour. Origin
``Cache-Control``/``Expires`` are ignored. When the upstream fails, a tier serves what it
has even if expired (``proxy_cache_use_stale``); ``proxy_cache_lock`` turns a burst of
misses for one slice into one upstream request. Every response says per tier what
happened: ``X-Cache-Edge`` / ``X-Cache-Shield`` carry ``$upstream_cache_status``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from vidflow.cdn.logformat import RAW_LOG_FORMAT_NAME, distribution_name, nginx_log_format
from vidflow.config import Settings
from vidflow.regions import REGION_NAMES

SHIELD: Final = "shield"
IMMUTABLE_SUFFIXES: Final = ("m4s", "mp4", "m4a", "m4v", "ts", "aac", "vtt")
PLAYLIST_SUFFIXES: Final = ("m3u8", "mpd")
OTHER_MAX_AGE_SECONDS: Final = 3600


@dataclass(frozen=True)
class Tier:
    """One nginx of the CDN: the shield or the edge of a region."""

    kind: Literal["edge", "shield"]
    port: int
    #: Where this tier's misses go: the shield (for an edge) or the origin URL.
    upstream: str
    cache_max_size: str
    region: str | None = None

    @property
    def name(self) -> str:
        """Tier and supervised-service name suffix: ``shield``, ``edge-us-east``."""
        return SHIELD if self.region is None else f"edge-{self.region}"

    @property
    def service(self) -> str:
        return f"cdn-{self.name}"

    @property
    def header(self) -> str:
        """The response header carrying this tier's cache status."""
        return "X-Cache-Shield" if self.kind == "shield" else "X-Cache-Edge"

    @property
    def distribution(self) -> str:
        if self.region is None:
            raise ValueError("the shield is not a distribution and writes no access log")
        return distribution_name(self.region)


def parse_nginx_size(text: str) -> int:
    """nginx's size syntax (``256m``, ``1g``, ``512k``, bytes) in bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = text.strip().lower()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def origin_url(settings: Settings) -> str:
    """What the shield fetches from: ``cdn_origin_url`` or the media bucket's URL."""
    if settings.cdn_origin_url:
        return settings.cdn_origin_url.rstrip("/")
    if not settings.endpoint_url:
        return f"https://{settings.bucket_media}.s3.{settings.aws_region}.amazonaws.com"
    return f"{settings.endpoint_url.rstrip('/')}/{settings.bucket_media}"


def shield(settings: Settings) -> Tier:
    return Tier(
        "shield", settings.cdn_shield_port, origin_url(settings), settings.cdn_shield_cache_max_size
    )


def edges(settings: Settings) -> list[Tier]:
    upstream = f"http://{settings.bind_host}:{settings.cdn_shield_port}"
    return [
        Tier(
            "edge",
            settings.cdn_edge_port(region),
            upstream,
            settings.cdn_edge_cache_max_size,
            region,
        )
        for region in REGION_NAMES
    ]


def tiers(settings: Settings) -> list[Tier]:
    """The shield, then the edges in region order."""
    return [shield(settings), *edges(settings)]


def find_tier(settings: Settings, name: str) -> Tier:
    for tier in tiers(settings):
        if name in {tier.name, tier.service}:
            return tier
    known = ", ".join(t.name for t in tiers(settings))
    raise KeyError(f"no CDN tier {name!r}; known: {known}")


# --- where each tier keeps its files (all under state_dir/cdn/<tier>) ----------------------


def tier_dir(settings: Settings, tier: Tier) -> Path:
    return settings.state_dir / "cdn" / tier.name


def conf_path(settings: Settings, tier: Tier) -> Path:
    return tier_dir(settings, tier) / "nginx.conf"


def pid_path(settings: Settings, tier: Tier) -> Path:
    return tier_dir(settings, tier) / "nginx.pid"


def cache_dir(settings: Settings, tier: Tier) -> Path:
    return tier_dir(settings, tier) / "cache"


def temp_dir(settings: Settings, tier: Tier) -> Path:
    return tier_dir(settings, tier) / "temp"


def access_log_path(settings: Settings, tier: Tier) -> Path:
    """The edge's raw log, which the shipper rotates (JSON lines, see logformat)."""
    return tier_dir(settings, tier) / "access.log"


def admission_map_path(settings: Settings, tier: Tier) -> Path:
    """The edge's admission list, an nginx ``map`` body (see :func:`admission_map`)."""
    return tier_dir(settings, tier) / "admit.map"


#: What an nginx map key may hold unquoted-safe (object paths of the media layout).
_MAP_KEY: Final = re.compile(r"/[A-Za-z0-9/._~-]+")


def admission_map(keys: Iterable[str] | None) -> str:
    """The body of ``map $uri $vidflow_not_admitted`` for an admission list.

    None (no list yet, or admission off): every response may be stored. A list: a media
    segment (``.m4s``) is stored only if its path is listed (exact keys win over the
    regex in an nginx map); anything else may always be stored. Paths nginx could not read
    back as one map key are left out (they are then not admitted)."""
    if keys is None:
        return "default 0;\n"
    lines = ["default 0;", "~\\.m4s$ 1;"]
    lines += [f"{key} 0;" for key in sorted(set(keys)) if _MAP_KEY.fullmatch(key)]
    return "\n".join(lines) + "\n"


def pending_dir(settings: Settings, tier: Tier) -> Path:
    """Rotated logs waiting to be shipped."""
    return tier_dir(settings, tier) / "pending"


def worker_user() -> str | None:
    """nginx refuses nothing as root, but its workers should not be root: as root, the
    workers run as ``nobody`` (the master, which opens logs and ports, stays root)."""
    return "nobody nogroup" if os.geteuid() == 0 else None


# --- rendering ------------------------------------------------------------------------------


def _netloc(url: str) -> tuple[str, str, str]:
    """(scheme, host:port, path) of an upstream URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"CDN upstream {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, f"{parts.hostname}:{port}", parts.path.rstrip("/")


def _location(
    settings: Settings,
    tier: Tier,
    pattern: str,
    max_age: int,
    cache_control: str,
    *,
    admission: bool = False,
) -> list[str]:
    scheme, _, path = _netloc(tier.upstream)
    # add_header in a location replaces the server's, so every location carries them all.
    headers = [
        f"add_header {tier.header} $upstream_cache_status always;",
        f'add_header Cache-Control "{cache_control}";',
    ]
    if tier.kind == "edge":
        headers += [
            # The shield's status of this fetch; absent on an edge hit, where nothing was
            # fetched (the cached response still carries the status of its own fetch).
            "add_header X-Cache-Shield $vidflow_shield_cache always;",
            # CloudFront sends its request id as X-Amz-Cf-Id; it is x-edge-request-id.
            "add_header X-Amz-Cf-Id $request_id always;",
            # Browser players (hls.js in the web app) fetch across origins. The cache key
            # ignores Origin, so the edge answers every viewer alike, never the origin's
            # per-request CORS headers (hidden below).
            'add_header Access-Control-Allow-Origin "*" always;',
        ]
    return [
        f"location ~* {pattern} {{",
        "    limit_except GET { deny all; }",
        f"    proxy_cache_valid 200 206 {max_age}s;",
        "    proxy_cache_valid 404 1s;",
        # Served, not stored, when the admission list leaves the object out.
        *(["    proxy_no_cache $vidflow_not_admitted;"] if admission else []),
        *(f"    {h}" for h in headers),
        # A changed URI is sent normalised and escaped; the trailing ? drops the query
        # string, which is not part of the cache key either.
        f"    rewrite ^(.*)$ {path}$1? break;",
        f"    proxy_pass {scheme}://vidflow_upstream;",
        "}",
    ]


def render_conf(settings: Settings, tier: Tier) -> str:
    """The complete nginx.conf of ``tier`` (foreground master, loopback only)."""
    scheme, upstream_host, _ = _netloc(tier.upstream)
    zone = f"vidflow_{tier.name.replace('-', '_')}"
    tmp = temp_dir(settings, tier)
    user = worker_user()
    playlists = settings.cdn_playlist_max_age_seconds
    segments = settings.cdn_segment_max_age_seconds
    lines = [
        f"# Generated by vidflow.cdn for the {tier.name} from settings; edits are overwritten.",
        "daemon off;",
        "master_process on;",
        "worker_processes 1;",
        f"pid {pid_path(settings, tier)};",
        "error_log stderr warn;",
        *([f"user {user};"] if user else []),
        "events { worker_connections 1024; }",
        "http {",
        "    server_tokens off;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    keepalive_timeout 30s;",
        "    access_log off;",
        f"    client_body_temp_path {tmp / 'client_body'};",
        f"    proxy_temp_path {tmp / 'proxy'};",
        f"    fastcgi_temp_path {tmp / 'fastcgi'};",
        f"    uwsgi_temp_path {tmp / 'uwsgi'};",
        f"    scgi_temp_path {tmp / 'scgi'};",
        f"    proxy_cache_path {cache_dir(settings, tier)} levels=1:2 keys_zone={zone}:16m"
        f" max_size={tier.cache_max_size} inactive=7d use_temp_path=off;",
        "    upstream vidflow_upstream {",
        f"        server {upstream_host};",
        "        keepalive 16;",
        "    }",
    ]
    if tier.kind == "edge":
        assert tier.region is not None
        dist_host = f"{settings.bind_host}:{tier.port}"
        lines.append("    " + nginx_log_format(edge_location=tier.region, dist_host=dist_host))
        if settings.cdn_edge_admit_threshold > 0:
            lines += [
                # Room for an admission list of a few hundred thousand paths.
                "    map_hash_max_size 1048576;",
                "    map_hash_bucket_size 256;",
                "    map $uri $vidflow_not_admitted {",
                f"        include {admission_map_path(settings, tier)};",
                "    }",
            ]
        lines += [
            "    map $upstream_cache_status $vidflow_shield_cache {",
            "        ~^(MISS|EXPIRED|BYPASS|REVALIDATED)$ $upstream_http_x_cache_shield;",
            '        default "";',
            "    }",
        ]
    lines += [
        "    server {",
        f"        listen {settings.bind_host}:{tier.port};",
        "        server_name _;",
    ]
    if tier.kind == "edge":
        lines.append(f"        access_log {access_log_path(settings, tier)} {RAW_LOG_FORMAT_NAME};")
    lines += [
        f"        proxy_cache {zone};",
        f"        slice {settings.cdn_slice_size};",
        "        proxy_cache_key $uri$slice_range;",
        "        proxy_set_header Range $slice_range;",
        f"        proxy_set_header Host {upstream_host};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_cache_lock on;",
        "        proxy_cache_lock_timeout 10s;",
        "        proxy_cache_lock_age 10s;",
        "        proxy_cache_revalidate on;",
        "        proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;",
        "        proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;",
        "        proxy_hide_header Cache-Control;",
        "        proxy_hide_header Expires;",
        "        proxy_hide_header Set-Cookie;",
        "        proxy_hide_header X-Cache-Shield;",
        "        proxy_hide_header x-amz-request-id;",
        "        proxy_hide_header x-amz-id-2;",
        "        proxy_hide_header x-amzn-requestid;",
        "        proxy_hide_header x-amz-content-sha256;",
        "        proxy_hide_header x-amz-sdk-checksum-algorithm;",
        "        proxy_hide_header x-amz-checksum-crc32;",
        "        proxy_hide_header Access-Control-Allow-Origin;",
        "        proxy_hide_header Access-Control-Allow-Credentials;",
        "        proxy_hide_header Access-Control-Expose-Headers;",
        "        proxy_connect_timeout 2s;",
        "        proxy_read_timeout 15s;",
        "        proxy_send_timeout 15s;",
    ]
    if scheme == "https":
        lines += ["        proxy_ssl_server_name on;", f"        proxy_ssl_name {upstream_host};"]
    lines += [
        "        location = /healthz {",
        "            access_log off;",
        "            default_type text/plain;",
        '            return 200 "ok\\n";',
        "        }",
    ]
    locations = [
        _location(
            settings,
            tier,
            rf"\.({'|'.join(IMMUTABLE_SUFFIXES)})$",
            segments,
            f"public, max-age={segments}, immutable",
            admission=tier.kind == "edge" and settings.cdn_edge_admit_threshold > 0,
        ),
        _location(
            settings,
            tier,
            rf"\.({'|'.join(PLAYLIST_SUFFIXES)})$",
            playlists,
            f"public, max-age={playlists}",
        ),
        _location(
            settings, tier, r"^/", OTHER_MAX_AGE_SECONDS, f"public, max-age={OTHER_MAX_AGE_SECONDS}"
        ),
    ]
    for block in locations:
        lines += [f"        {line}" for line in block]
    lines += ["    }", "}", ""]
    return "\n".join(lines)
