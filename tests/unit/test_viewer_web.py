"""The web app's mount on the viewer API: static files at /app/, the browser's config,
the redirect from /, and a Content-Security-Policy that lets nothing in from elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from vidflow.config import Settings
from vidflow.viewer.web import (
    WEBAPP_DIR,
    content_security_policy,
    missing_vendor_files,
    mount_web_app,
    upload_url,
)


def _app(settings: Settings, directory: Path) -> TestClient:
    app = FastAPI()

    @app.get("/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    mount_web_app(app, settings, directory=directory)
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>vidflow</title>")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.js").write_text("export const x = 1;\n")
    return tmp_path


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (d.split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def test_serves_the_app_redirects_root_and_leaves_the_api_alone(site: Path) -> None:
    client = _app(Settings(), site)
    root = client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/app/"
    page = client.get("/app/")
    assert page.status_code == 200 and "<title>vidflow</title>" in page.text
    script = client.get("/app/src/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/app/nope.js").status_code == 404
    api = client.get("/v1/ping")
    assert api.json() == {"pong": "yes"}
    assert "content-security-policy" not in api.headers
    for response in (page, script):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"
        assert "content-security-policy" in response.headers


def test_the_browser_config_names_the_upload_api_regions_and_devices(site: Path) -> None:
    config = _app(Settings(upload_port=9990), site).get("/app/config.json").json()
    assert config == {
        "upload_url": "http://127.0.0.1:9990",
        "regions": ["us-east", "eu-west", "ap-south", "sa-east"],
        "devices": ["phone", "desktop", "tv"],
        "default_region": "us-east",
    }
    public = Settings(webapp_upload_url="https://upload.example.com/")
    assert upload_url(public) == "https://upload.example.com"


def test_csp_allows_only_self_the_upload_api_the_edges_and_the_media_base() -> None:
    settings = Settings(
        cdn_edge_urls="us-east=https://edge-us.example.com,eu-west=https://edge-eu.example.com/x",
        cdn_base_url="https://media.example.com/videos",
        webapp_upload_url="https://upload.example.com",
    )
    csp = _directives(content_security_policy(settings))
    media = [
        "https://edge-eu.example.com",
        "https://edge-us.example.com",
        "https://media.example.com",
    ]
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no CDN
    assert csp["connect-src"] == ["'self'", "https://upload.example.com", *media]
    assert csp["img-src"] == ["'self'", "data:", *media]
    assert csp["media-src"] == ["'self'", "blob:", *media]
    assert csp["worker-src"] == ["'self'", "blob:"]
    assert csp["object-src"] == ["'none'"]


def test_local_edges_are_in_the_policy_by_default() -> None:
    csp = _directives(content_security_policy(Settings()))
    assert "http://127.0.0.1:8101" in csp["connect-src"]
    assert "http://127.0.0.1:8104" in csp["img-src"]
    assert "http://127.0.0.1:8090" in csp["connect-src"]


def test_without_index_nothing_is_mounted_and_missing_players_are_named(tmp_path: Path) -> None:
    client = _app(Settings(), tmp_path)
    assert client.get("/app/").status_code == 404
    assert missing_vendor_files(tmp_path) == ["vendor/hls.mjs", "vendor/tus.min.js"]


def test_the_repository_app_loads_nothing_from_elsewhere() -> None:
    """No http(s) URL in the app's own files: the players come from vendor/."""
    for path in [
        *WEBAPP_DIR.glob("*.html"),
        *WEBAPP_DIR.glob("*.css"),
        *WEBAPP_DIR.glob("src/*.js"),
    ]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    index = (WEBAPP_DIR / "index.html").read_text()
    assert 'src="vendor/tus.min.js"' in index
    assert 'import("../vendor/hls.mjs")' in (WEBAPP_DIR / "src" / "watch.js").read_text()
