"""Pure parts of the viewer API's video endpoints: region edge URLs, tag and text rules
of an edit, paging cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from vidflow.catalog.fields import normalize_tags
from vidflow.config import Settings
from vidflow.problems import Problem
from vidflow.uploads.protocol import validate_metadata
from vidflow.viewer.edges import RegionUrls, region_url
from vidflow.viewer.schemas import VideoUpdate
from vidflow.viewer.service import decode_cursor, encode_cursor

CDN = Settings(
    cdn_base_url="https://cdn.example.com/",
    cdn_edge_urls="eu-west=http://127.0.0.1:8102/, us-east = http://edge-us.example:8101",
)
MASTER = "https://cdn.example.com/media/videos/abc/v1/master.m3u8"


@pytest.mark.parametrize(
    ("url", "region", "expected"),
    [
        (MASTER, "eu-west", "http://127.0.0.1:8102/media/videos/abc/v1/master.m3u8"),
        (MASTER, "us-east", "http://edge-us.example:8101/media/videos/abc/v1/master.m3u8"),
        (MASTER, "ap-south", MASTER),  # no edge in that region: the CDN base
        (MASTER, None, MASTER),  # no region asked
        # Not under the media base (an external thumbnail): never rewritten.
        ("https://img.example.org/x.jpg", "eu-west", "https://img.example.org/x.jpg"),
        # A look-alike prefix is not the media base.
        ("https://cdn.example.com.evil/x", "eu-west", "https://cdn.example.com.evil/x"),
    ],
)
def test_region_url_swaps_the_media_base_for_the_regions_edge(
    url: str, region: str | None, expected: str
) -> None:
    assert region_url(url, region=region, settings=CDN) == expected
    assert RegionUrls(CDN)(url, region=region) == expected  # the serving path's copy


def test_region_url_without_a_cdn_maps_the_bucket_url_on_the_endpoint() -> None:
    settings = Settings(cdn_edge_urls="sa-east=http://127.0.0.1:8104")
    stored = "http://127.0.0.1:8333/vidflow-media/media/videos/abc/v1/manifest.mpd"
    assert (
        region_url(stored, region="sa-east", settings=settings)
        == "http://127.0.0.1:8104/media/videos/abc/v1/manifest.mpd"
    )
    assert region_url(stored, region="eu-west", settings=settings) == stored


def test_tags_are_trimmed_lowercased_and_deduplicated_in_order() -> None:
    update = VideoUpdate.model_validate({"tags": [" Cats ", "DOGS", "cats", "", "c++", "dogs"]})
    assert update.tags == ["cats", "dogs", "c++"]
    assert update.changes() == {"tags": ["cats", "dogs", "c++"]}


def test_twenty_distinct_tags_pass_and_twenty_one_do_not() -> None:
    twenty = [f"t{i}" for i in range(20)]
    assert VideoUpdate(tags=[*twenty, "T0", "t1 "]).tags == twenty  # duplicates do not count
    with pytest.raises(ValidationError, match="21 tags given; at most 20"):
        VideoUpdate(tags=[*twenty, "t20"])


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["x" * 41], "longer than 40"),
        (["a,b"], "may not have"),  # a comma would split the tag at upload
        (["<script>"], "may not have"),
    ],
)
def test_bad_tags_are_refused(tags: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        VideoUpdate(tags=tags)


def test_tag_rules_are_the_upload_metadata_rules() -> None:
    # The tus metadata's comma-separated list and an edit's list normalise alike.
    assert validate_metadata({"tags": " Rock ,jazz,ROCK"}).tags == ("rock", "jazz")
    assert normalize_tags([" Rock ", "jazz", "ROCK"]) == ("rock", "jazz")
    assert VideoUpdate(tags=[" Rock ", "jazz", "ROCK"]).tags == ["rock", "jazz"]


def test_title_and_description_rules() -> None:
    assert VideoUpdate(title="  My trip  ").title == "My trip"
    assert VideoUpdate(description="line one\n\tline two").description == "line one\n\tline two"
    assert VideoUpdate(title="x" * 200).title == "x" * 200
    for bad, message in [
        ({"title": "x" * 201}, "201 characters long; the limit is 200"),
        ({"title": "   "}, "may not be empty"),
        ({"title": "two\nlines"}, "control characters"),
        ({"description": "bell\x07"}, "control characters"),
        ({"description": "d" * 5001}, "limit is 5000"),
        ({"title": None}, "may be omitted but not null"),
        ({}, "nothing to change"),
        ({"status": "processed"}, "Extra inputs are not permitted"),
    ]:
        with pytest.raises(ValidationError, match=message):
            VideoUpdate.model_validate(bad)


def test_only_the_fields_sent_are_changed() -> None:
    assert VideoUpdate.model_validate({"description": ""}).changes() == {"description": ""}


def test_cursor_round_trip_keeps_microseconds_and_zone() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    video_id = uuid.uuid4()
    decoded = decode_cursor(encode_cursor(moment, video_id))
    assert decoded == (datetime(2026, 1, 2, 1, 4, 5, 678901, tzinfo=UTC), video_id)


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "WyJ4IiwgInkiXQ", "WzFd"])
def test_forged_cursors_are_a_clear_422(cursor: str) -> None:
    with pytest.raises(Problem, match="not a cursor this API returned") as caught:
        decode_cursor(cursor)
    assert caught.value.status == 422
