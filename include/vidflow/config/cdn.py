"""Settings of the tiered CDN: the nginx edges and shield, their logs, and warming."""

from __future__ import annotations

from pydantic import Field

from vidflow.config.stack import StackSettings
from vidflow.regions import REGION_NAMES


class CdnSettings(StackSettings):
    """The CDN tiers and the viewer API's edge hand-out."""

    # --- CDN -----------------------------------------------------------------------------------
    # The nginx tiers (include/vidflow/cdn): one edge per region in front of one shield in
    # front of the media bucket, and the shipper of the edges' CloudFront-format logs.
    cdn_edge_urls: str = Field(
        "",
        description="Per-region CDN edges as region=url pairs, comma-separated (e.g. "
        "us-east=http://127.0.0.1:8101). The viewer API hands each viewer the manifest URLs "
        "of their region's edge; a region without one gets cdn_base_url.",
    )
    cdn_local_edges: bool = Field(
        True,
        description="Run the nginx shield and one edge per region with the local stack. With "
        "cdn_edge_urls empty, viewers are then handed their region's local edge.",
    )
    cdn_shield_port: int = Field(8100, description="Port of the local shield (regional cache).")
    cdn_edge_base_port: int = Field(
        8101,
        description="Port of the first region's edge; the others follow in region order "
        "(us-east 8101, eu-west 8102, ap-south 8103, sa-east 8104).",
    )
    cdn_origin_url: str = Field(
        "",
        description="What the shield fetches from. Empty means the media bucket on the S3 "
        "endpoint: {aws_endpoint_url}/{bucket_media} (the bucket is public-read).",
    )
    cdn_edge_cache_max_size: str = Field(
        "256m", description="proxy_cache max_size of each edge (nginx size: 256m, 2g)."
    )
    cdn_shield_cache_max_size: str = Field("1g", description="proxy_cache max_size of the shield.")
    cdn_slice_size: str = Field(
        "1m", description="Slice (nginx slice module) in which ranges are fetched and cached."
    )
    cdn_playlist_max_age_seconds: int = Field(
        2, ge=1, description="How long a tier caches a playlist (.m3u8/.mpd) and tells players to."
    )
    cdn_segment_max_age_seconds: int = Field(
        365 * 24 * 3600,
        ge=1,
        description="How long a tier caches a segment (.m4s) or init segment (.mp4); they are "
        "immutable (a new version of a video gets new keys).",
    )
    cdn_nginx_binary: str = Field("/usr/sbin/nginx", description="The nginx executable.")
    cdn_log_prefix: str = Field(
        "cdn-logs/", description="Key prefix of the edges' access-log objects in bucket_cdn_logs."
    )
    cdn_log_ship_seconds: float = Field(
        10.0,
        gt=0,
        description="The log shipper rotates each edge's log and uploads it this often.",
    )
    cdn_shipper_port: int = Field(
        8109,
        description="Port of the log shipper's health and flush endpoint (GET /healthz, "
        "POST /v1/flush ships every edge's log now).",
    )
    cdn_max_bad_ratio: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Share of an hour's CDN log lines that may be quarantined before the "
        "cdn_analytics gate fails the run.",
    )
    cdn_warm_byte_budget: str = Field(
        "64m",
        description="Default warming budget per edge and hour (nginx size; the DAG's "
        "byte_budget Param overrides it).",
    )
    cdn_edge_admit_threshold: float = Field(
        0.0,
        ge=0,
        description="Admission list of each edge: after the plan of the current hour, an edge "
        "stores only the media segments expected at least this many requests next hour (and "
        "the plan's); others are served through uncached. 0 (the default) stores everything "
        "(plain LRU). 2 is the value fitted for the 256m edge cache (benchmarks/cdn.py).",
    )

    def cdn_edge_port(self, region: str) -> int:
        """Port of the local edge of ``region`` (regions in their fixed order)."""
        return self.cdn_edge_base_port + REGION_NAMES.index(region)

    def edge_urls(self) -> dict[str, str]:
        """``cdn_edge_urls`` as region -> base URL (no trailing slash); when it is empty and
        the local stack runs the CDN (``cdn_local_edges``), every region's local edge."""
        pairs = [p.strip() for p in self.cdn_edge_urls.split(",") if p.strip()]
        if not pairs and self.cdn_local_edges:
            return {r: f"http://{self.bind_host}:{self.cdn_edge_port(r)}" for r in REGION_NAMES}
        edges: dict[str, str] = {}
        for pair in pairs:
            name, sep, url = pair.partition("=")
            if not sep or not name.strip() or not url.strip():
                raise ValueError(f"VIDFLOW_CDN_EDGE_URLS: {pair!r} is not region=url")
            edges[name.strip()] = url.strip().rstrip("/")
        return edges
