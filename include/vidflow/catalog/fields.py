"""The rules of a video's creator-written fields: title, description, tags.

One set of limits and one normalisation, shared by the upload service (tus
``Upload-Metadata``) and the viewer API (``PATCH /v1/videos/{id}``), so a tag or a title is
the same thing whichever way it reaches the catalog. Errors are :class:`InvalidField`
(a ``ValueError`` with a human reason); each HTTP layer maps it to its own status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

TITLE_MAX: Final = 200
DESCRIPTION_MAX: Final = 5000
TAGS_MAX: Final = 20
TAG_MAX: Final = 40

#: Control characters; a multi-line text may keep tab and newline.
_CONTROL_ANY = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TAG = re.compile(r"^[\w][\w .+#&'-]*$")


class InvalidField(ValueError):
    """A creator-written field breaks a rule; the message says which and why."""


def clean_text(name: str, value: str, limit: int, *, multiline: bool = False) -> str:
    """``value`` trimmed; InvalidField when longer than ``limit`` or with control
    characters (tab and newline are allowed in ``multiline`` text)."""
    value = value.strip()
    if len(value) > limit:
        raise InvalidField(f"{name!r} is {len(value)} characters long; the limit is {limit}")
    bad = _CONTROL_MULTILINE if multiline else _CONTROL_ANY
    if bad.search(value):
        raise InvalidField(f"{name!r} contains control characters")
    return value


def normalize_tags(values: Iterable[str]) -> tuple[str, ...]:
    """Tags trimmed and lower-cased, empty ones dropped, duplicates removed (first
    occurrence kept, in order). InvalidField for a tag longer than TAG_MAX, with characters
    a tag may not have (a comma among them), or more than TAGS_MAX distinct tags."""
    tags: dict[str, None] = {}
    for raw in values:
        tag = raw.strip().lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise InvalidField(f"tag {tag[:TAG_MAX]!r}... is longer than {TAG_MAX} characters")
        if not _TAG.fullmatch(tag):
            raise InvalidField(f"tag {tag!r} contains characters a tag may not have")
        tags[tag] = None
    if len(tags) > TAGS_MAX:
        raise InvalidField(f"{len(tags)} tags given; at most {TAGS_MAX} are allowed")
    return tuple(tags)
