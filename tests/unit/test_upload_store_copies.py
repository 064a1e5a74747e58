"""ListParts of a store that keeps every copy of a re-uploaded part (SeaweedFS) read as S3
would hold the part: the newest copy, or any copy of the newest second."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vidflow.uploads.store import MultipartStore, SameSecondCopies, StoredPart

T0 = datetime(2026, 12, 1, 0, 30, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 1, 0, 30, 1, tzinfo=UTC)


class ListingOnly:
    """An S3 client whose ListParts answers one fixed page (what the server listed)."""

    def __init__(self, parts: list[dict[str, Any]]) -> None:
        self.parts = parts

    def list_parts(self, **_: Any) -> dict[str, Any]:
        return {"Parts": self.parts, "IsTruncated": False}


def part(number: int, etag: str, when: datetime, size: int = 5) -> dict[str, Any]:
    return {"PartNumber": number, "ETag": etag, "Size": size, "LastModified": when}


def listed(*parts: dict[str, Any]) -> dict[int, StoredPart]:
    store = MultipartStore(ListingOnly(list(parts)), "bucket")  # type: ignore[arg-type]
    return store.list_parts("key", "upload")


def test_one_copy_per_part_is_read_as_listed() -> None:
    assert listed(part(1, "a", T0), part(2, "b", T0)) == {
        1: StoredPart(1, 5, "a"),
        2: StoredPart(2, 5, "b"),
    }


def test_the_newest_copy_wins_whatever_the_listing_order() -> None:
    for order in (
        [part(2, "old", T0), part(2, "new", T1)],
        [part(2, "new", T1), part(2, "old", T0)],
    ):
        held = listed(part(1, "a", T0), *order)[2]
        assert held == StoredPart(2, 5, "new")
        assert held != StoredPart(2, 5, "old")  # a part changed behind the service


def test_copies_of_the_same_second_match_any_of_them_and_nothing_else() -> None:
    held = listed(part(2, "old", T0), part(2, "x", T1), part(2, "y", T1, size=7))[2]
    assert isinstance(held, SameSecondCopies)
    assert held == StoredPart(2, 5, "x") and StoredPart(2, 7, "y") == held
    assert held != StoredPart(2, 5, "old")  # an older second does not count
    assert held != StoredPart(2, 5, "y")  # size and ETag together
    assert held != StoredPart(3, 5, "x")
