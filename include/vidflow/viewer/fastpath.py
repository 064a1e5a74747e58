"""The hot path of ``GET /v1/me/recommendations``: a fresh answer sent from memory before
FastAPI sees the request.

Most requests of a signed-in viewer repeat one that was answered a moment ago, with the
same token. :class:`CachedRecommendations` answers those straight from the process's
:class:`~vidflow.viewer.answers.AnswerCache` and :class:`~vidflow.accounts.deps.TokenCache`:
no routing, no dependency resolution, no validation or serialisation. It only ever
*answers* a request when all of this holds, and otherwise passes it on untouched to the
FastAPI route, which remains the one implementation of the endpoint (validation, errors,
401s, degraded answers) and fills both caches:

* the token is valid (verified now, or recently, by either path) and has not expired;
* the query string is plain: ``limit`` digits within 1..100, ``region`` a known region,
  ``device`` a known device, nothing repeated (anything else, even what FastAPI would
  accept, goes to the route);
* the answer for exactly that (viewer, region, device, limit) is fresh.

Measured (benchmarks/serving.py): this is what makes 1,000 answers a second fit on two
cores.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from vidflow.accounts.security import InvalidToken
from vidflow.regions import DEVICES, REGION_NAMES
from vidflow.viewer.answers import CACHE_HEADER, SERVED_BY_HEADER, instance_id
from vidflow.viewer.deps import serving_of, tokens_of
from vidflow.viewer.recommendations import viewer_key
from vidflow.viewer.routes import PAGE_DEFAULT, PAGE_MAX

PATH: Final = "/v1/me/recommendations"
_REGIONS: Final = frozenset(REGION_NAMES)
_DEVICES: Final = frozenset(DEVICES)
_KNOWN: Final = frozenset({"limit", "region", "device"})
_CACHE_HEADER: Final = CACHE_HEADER.lower().encode()
_SERVED_BY_HEADER: Final = SERVED_BY_HEADER.lower().encode()


def plain_query(raw: bytes) -> tuple[int, str | None, str | None] | None:
    """(limit, region, device) of a query string the fast path may answer, else None."""
    limit, region, device = PAGE_DEFAULT, None, None
    seen: set[str] = set()
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return None
    for name, value in pairs:
        if name in seen:
            return None
        seen.add(name)
        if name == "limit":
            if not (value.isascii() and value.isdigit() and len(value) <= 3):
                return None
            limit = int(value)
            if not 1 <= limit <= PAGE_MAX:
                return None
        elif name == "region":
            if value not in _REGIONS:
                return None
            region = value
        elif name == "device":
            if value not in _DEVICES:
                return None
            device = value
    if not seen <= _KNOWN:
        return None
    return limit, region, device


def bearer_token(scope: Scope) -> str | None:
    """The token of a single ``Authorization: Bearer <token>`` header, else None."""
    found = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if found is not None:
                return None
            found = value
    if found is None or len(found) < 8 or found[:7].lower() != b"bearer ":
        return None
    token = found[7:].strip()
    return token.decode("latin-1") if token else None


class CachedRecommendations:
    """ASGI middleware answering fresh cached recommendations (see the module docstring).
    ``host`` is the FastAPI app whose state holds the caches."""

    def __init__(self, app: ASGIApp, *, host: FastAPI) -> None:
        self.app = app
        self.host = host
        # made in the process that serves (each worker creates its app)
        self._served_by = instance_id().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            body = self._cached(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body[0])).encode()),
                            (_CACHE_HEADER, body[1]),
                            (_SERVED_BY_HEADER, self._served_by),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body[0]})
                return
        await self.app(scope, receive, send)

    def _cached(self, scope: Scope) -> tuple[bytes, bytes] | None:
        token = bearer_token(scope)
        if token is None:
            return None
        query = plain_query(scope["query_string"])
        if query is None:
            return None
        serving = serving_of(self.host)
        try:  # a token verified recently, or verified now (its HS256 check, ~0.05 ms)
            claims = tokens_of(self.host).verify(token, settings=serving.settings)
        except InvalidToken:
            return None  # the route answers 401, with its problem document
        limit, region, device = query
        key = viewer_key(
            claims.user_id, region or serving.settings.viewer_default_region, device, limit
        )
        fresh = serving.answers.fresh(key)
        if fresh is None:
            return None
        return fresh[0], fresh[1].encode()
