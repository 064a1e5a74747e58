"""nginx configuration of the CDN tiers, generated from settings; the services that run
them; the edges viewers are handed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vidflow.cdn.__main__ import prepare
from vidflow.cdn.config import (
    access_log_path,
    conf_path,
    edges,
    find_tier,
    render_conf,
    shield,
    tier_dir,
    tiers,
)
from vidflow.config import Settings
from vidflow.stack.services import services


def test_one_edge_per_region_in_front_of_one_shield_in_front_of_the_bucket() -> None:
    settings = Settings()
    assert [(t.name, t.port) for t in tiers(settings)] == [
        ("shield", 8100),
        ("edge-us-east", 8101),
        ("edge-eu-west", 8102),
        ("edge-ap-south", 8103),
        ("edge-sa-east", 8104),
    ]
    assert {t.upstream for t in edges(settings)} == {"http://127.0.0.1:8100"}
    assert shield(settings).upstream == "http://127.0.0.1:8333/vidflow-media"  # SeaweedFS
    assert edges(settings)[0].distribution == "vidflow-us-east"
    assert find_tier(settings, "cdn-edge-sa-east").region == "sa-east"
    with pytest.raises(KeyError, match="known: shield, edge-us-east"):
        find_tier(settings, "edge-mars")


def test_an_edge_caches_slices_locks_misses_serves_stale_and_logs() -> None:
    settings = Settings()
    conf = render_conf(settings, find_tier(settings, "edge-eu-west"))
    for directive in (
        "daemon off;",
        "master_process on;",
        "listen 127.0.0.1:8102;",
        "max_size=256m",
        "slice 1m;",
        "proxy_cache_key $uri$slice_range;",
        "proxy_set_header Range $slice_range;",
        "proxy_cache_lock on;",
        "proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;",
        "server 127.0.0.1:8100;",
        "add_header X-Cache-Edge $upstream_cache_status always;",
        "add_header X-Cache-Shield $vidflow_shield_cache always;",
        f"access_log {settings.state_dir}/cdn/edge-eu-west/access.log vidflow_cloudfront_raw;",
        '"loc":"eu-west","dist_host":"127.0.0.1:8102"',
        # Segments immutable for a year, playlists two seconds, in cache and in headers.
        "proxy_cache_valid 200 206 31536000s;",
        'add_header Cache-Control "public, max-age=31536000, immutable";',
        "proxy_cache_valid 200 206 2s;",
        'add_header Cache-Control "public, max-age=2";',
        "rewrite ^(.*)$ $1? break;",
    ):
        assert directive in conf, directive
    assert "0.0.0.0" not in conf


def test_the_shield_caches_more_fetches_the_bucket_and_writes_no_access_log() -> None:
    settings = Settings()
    conf = render_conf(settings, shield(settings))
    assert "listen 127.0.0.1:8100;" in conf
    assert "max_size=1g" in conf
    assert "server 127.0.0.1:8333;" in conf
    assert "proxy_set_header Host 127.0.0.1:8333;" in conf
    assert "rewrite ^(.*)$ /vidflow-media$1? break;" in conf
    assert "add_header X-Cache-Shield $upstream_cache_status always;" in conf
    assert "access_log off;" in conf and "vidflow_cloudfront_raw" not in conf


def test_settings_drive_sizes_ages_ports_and_origin() -> None:
    settings = Settings(
        cdn_edge_cache_max_size="64m",
        cdn_playlist_max_age_seconds=5,
        cdn_slice_size="512k",
        cdn_shield_port=9100,
        cdn_edge_base_port=9201,
        cdn_origin_url="https://media.example.com/pre/",
    )
    edge = find_tier(settings, "edge-ap-south")
    assert edge.port == 9203
    conf = render_conf(settings, edge)
    assert "max_size=64m" in conf and "slice 512k;" in conf
    assert 'add_header Cache-Control "public, max-age=5";' in conf
    assert "server 127.0.0.1:9100;" in conf
    shield_conf = render_conf(settings, shield(settings))
    assert "server media.example.com:443;" in shield_conf
    assert "proxy_pass https://vidflow_upstream;" in shield_conf
    assert "proxy_ssl_server_name on;" in shield_conf
    assert "rewrite ^(.*)$ /pre$1? break;" in shield_conf


def test_every_file_of_a_tier_is_under_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    for tier in tiers(settings):
        conf = render_conf(settings, tier)
        directives = ("pid", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path")
        directives += ("uwsgi_temp_path", "scgi_temp_path", "proxy_cache_path", "access_log")
        paths = [
            line.split()[1].rstrip(";")
            for line in conf.splitlines()
            if line.split()[:1] and line.split()[0] in directives and "/" in line
        ]
        assert len(paths) == (8 if tier.kind == "edge" else 7), tier.name
        assert all(p.startswith(f"{tmp_path}/cdn/{tier.name}/") for p in paths), paths


def test_nginx_accepts_every_generated_configuration(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    for tier in tiers(settings):
        prepare(settings, tier)
        where = ["-p", str(tier_dir(settings, tier)), "-c", str(conf_path(settings, tier))]
        result = subprocess.run(
            [settings.cdn_nginx_binary, "-t", "-q", "-e", "stderr", *where],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert not access_log_path(settings, tier).exists() or tier.kind == "edge"


def test_the_stack_runs_the_tiers_and_the_shipper_unless_told_not_to() -> None:
    names = [svc.name for svc in services(Settings())]
    cdn = [n for n in names if n.startswith("cdn-")]
    assert cdn == [
        "cdn-shield",
        "cdn-edge-us-east",
        "cdn-edge-eu-west",
        "cdn-edge-ap-south",
        "cdn-edge-sa-east",
        "cdn-log-shipper",
    ]
    by_name = {svc.name: svc for svc in services(Settings())}
    assert by_name["cdn-edge-us-east"].health_url == "http://127.0.0.1:8101/healthz"
    assert by_name["cdn-log-shipper"].health_url == "http://127.0.0.1:8109/healthz"
    off = Settings(cdn_local_edges=False)
    assert not [svc for svc in services(off) if svc.name.startswith("cdn-")]


def test_viewers_get_their_regions_local_edge_unless_edges_are_configured() -> None:
    assert Settings().edge_urls() == {
        "us-east": "http://127.0.0.1:8101",
        "eu-west": "http://127.0.0.1:8102",
        "ap-south": "http://127.0.0.1:8103",
        "sa-east": "http://127.0.0.1:8104",
    }
    assert Settings(cdn_edge_urls="eu-west=https://e.example/").edge_urls() == {
        "eu-west": "https://e.example"
    }
    assert Settings(cdn_local_edges=False).edge_urls() == {}
