"""Which URL a viewer in a region is handed for a manifest or a thumbnail.

Published URLs are stored under the media base URL (the configured CDN base, or the
media bucket itself: :func:`vidflow.processing.objects.media_base_url`). A region with an
edge of its own (``VIDFLOW_CDN_EDGE_URLS``) gets the same path on that edge; any other
region, and any URL that is not under the media base, keeps the stored URL.
"""

from __future__ import annotations

from vidflow.config import Settings
from vidflow.processing.objects import media_base_url


def region_url(url: str, *, region: str | None, settings: Settings) -> str:
    """``url`` as a viewer in ``region`` should fetch it."""
    if region is None:
        return url
    edge = settings.edge_urls().get(region)
    base = media_base_url(settings).rstrip("/") + "/"
    if edge is None or not url.startswith(base):
        return url
    return f"{edge.rstrip('/')}/{url[len(base) :]}"


class RegionUrls:
    """:func:`region_url` with the settings read once (the serving hot path calls it for
    every item of every answer)."""

    def __init__(self, settings: Settings) -> None:
        self._edges = {r: e.rstrip("/") for r, e in settings.edge_urls().items()}
        self._base = media_base_url(settings).rstrip("/") + "/"

    def __call__(self, url: str, *, region: str | None) -> str:
        edge = self._edges.get(region) if region is not None else None
        if edge is None or not url.startswith(self._base):
            return url
        return f"{edge}/{url[len(self._base) :]}"
