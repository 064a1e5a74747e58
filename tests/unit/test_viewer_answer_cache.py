"""The serving answer cache, its invalidation rules, the token cache and the fast path's
request checks: pure logic with a hand-driven clock (the cross-process behaviour against
the real catalog is in tests/integration/test_viewer_serving_cache.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vidflow.accounts.deps import TokenCache
from vidflow.accounts.security import InvalidToken, create_access_token
from vidflow.config import Settings
from vidflow.viewer.answers import AnswerCache
from vidflow.viewer.fastpath import bearer_token, plain_query
from vidflow.viewer.invalidation import apply

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(clock: Clock, **changes: float) -> AnswerCache:
    made = AnswerCache(
        entries=int(changes.pop("entries", 100)),
        ttl=changes.pop("ttl", 30.0),
        unsynced_ttl=changes.pop("unsynced_ttl", 1.0),
        clock=clock,
        rng=lambda: changes.get("jitter", 0.0),
    )
    made.listener_connected()
    return made


def fill(answers: AnswerCache, key: str, body: bytes, viewer: uuid.UUID | None = None) -> None:
    answers.put(answers.begin(key, viewer=viewer), body)


def test_a_fresh_answer_is_served_until_the_ttl() -> None:
    clock = Clock()
    answers = cache(clock, ttl=30.0)
    assert answers.fresh("a") is None
    fill(answers, "a", b"A", ALICE)
    assert answers.fresh("a") == (b"A", "hit")
    clock.now += 30.0
    assert answers.fresh("a") == (b"A", "hit")
    clock.now += 0.01
    assert answers.fresh("a") is None


def test_answers_made_together_expire_spread_over_the_second_half_of_the_ttl() -> None:
    clock = Clock()
    shortest = cache(clock, ttl=100.0, jitter=0.999999)
    fill(shortest, "a", b"A", ALICE)
    clock.now += 50.0
    assert shortest.fresh("a") == (b"A", "hit")
    clock.now += 0.01
    assert shortest.fresh("a") is None
    halfway = cache(clock, ttl=100.0, jitter=0.5)
    fill(halfway, "a", b"A", ALICE)
    clock.now += 74.9
    assert halfway.fresh("a") is not None
    clock.now += 0.2
    assert halfway.fresh("a") is None


def test_invalidating_a_viewer_leaves_other_viewers_fresh() -> None:
    answers = cache(Clock())
    fill(answers, "alice-20", b"A20", ALICE)
    fill(answers, "alice-5", b"A5", ALICE)
    fill(answers, "bob-20", b"B20", BOB)
    fill(answers, "trending", b"T", None)
    answers.invalidate_viewer(ALICE)
    assert answers.fresh("alice-20") is None
    assert answers.fresh("alice-5") is None
    assert answers.fresh("bob-20") == (b"B20", "hit")
    assert answers.fresh("trending") == (b"T", "hit")
    answers.invalidate_all()
    assert answers.fresh("bob-20") is None
    assert answers.fresh("trending") is None


def test_invalidated_answers_remain_for_degraded_mode() -> None:
    clock = Clock()
    answers = cache(clock)
    fill(answers, "a", b"A", ALICE)
    answers.invalidate_viewer(ALICE)
    clock.now += 10
    assert answers.recent("a", max_age=30) == b"A"
    assert answers.recent("a", max_age=9.9) is None
    assert answers.recent("never", max_age=30) is None


def test_a_read_overtaken_by_an_invalidation_is_not_served_from_memory() -> None:
    """The read started before the session write committed: its answer may predate it."""
    answers = cache(Clock())
    ticket = answers.begin("a", viewer=ALICE)
    other = answers.begin("b", viewer=BOB)
    answers.invalidate_viewer(ALICE)  # arrives while both reads are in flight
    answers.put(ticket, b"A-old")
    answers.put(other, b"B")
    assert answers.fresh("a") is None
    assert answers.recent("a", max_age=60) == b"A-old"  # still good for degraded mode
    assert answers.fresh("b") == (b"B", "hit")
    # The next read of Alice starts after the invalidation: it is served.
    fill(answers, "a", b"A-new", ALICE)
    assert answers.fresh("a") == (b"A-new", "hit")


def test_a_full_invalidation_overtakes_every_read_in_flight() -> None:
    answers = cache(Clock())
    tickets = [answers.begin(k, viewer=v) for k, v in (("a", ALICE), ("t", None))]
    answers.invalidate_all()
    for ticket in tickets:
        answers.put(ticket, b"x")
    assert answers.fresh("a") is None and answers.fresh("t") is None


def test_without_the_listener_answers_live_the_unsynced_ttl_only() -> None:
    clock = Clock()
    answers = cache(clock, ttl=30.0, unsynced_ttl=1.0)
    fill(answers, "a", b"A", ALICE)
    answers.listener_lost()
    # Made while listening, but invalidations may be missed from now on.
    assert answers.fresh("a") == (b"A", "ttl")
    clock.now += 1.01
    assert answers.fresh("a") is None
    fill(answers, "a", b"A2", ALICE)  # made while not listening
    assert answers.fresh("a") == (b"A2", "ttl")
    clock.now += 0.5
    assert answers.fresh("a") == (b"A2", "ttl")
    assert answers.stats.listener_losses == 1
    # Back: whatever was missed meanwhile is unknown, so nothing is fresh.
    answers.listener_connected()
    assert answers.fresh("a") is None
    fill(answers, "a", b"A3", ALICE)
    clock.now += 10
    assert answers.fresh("a") == (b"A3", "hit")


def test_a_read_during_which_the_listener_was_lost_counts_as_unsynced() -> None:
    clock = Clock()
    answers = cache(clock, unsynced_ttl=1.0)
    ticket = answers.begin("a", viewer=ALICE)
    answers.listener_lost()
    answers.put(ticket, b"A")
    answers.synced = True  # even if the flag came back without a reconnect
    clock.now += 2
    assert answers.fresh("a") is None


def test_the_cache_holds_at_most_its_entries_oldest_out() -> None:
    answers = cache(Clock(), entries=2)
    fill(answers, "a", b"A", ALICE)
    fill(answers, "b", b"B", ALICE)
    fill(answers, "c", b"C", BOB)
    assert len(answers) == 2
    assert answers.fresh("a") is None
    assert answers.fresh("b") == (b"B", "hit")
    answers.invalidate_viewer(ALICE)  # the evicted key left the viewer index cleanly
    assert answers.fresh("b") is None and answers.fresh("c") == (b"C", "hit")


def test_a_session_write_on_the_video_leading_the_session_keeps_the_answer() -> None:
    """A heartbeat on the video being watched cannot change the answer; any other
    session video, or a write that names no video, can."""
    watching, other = uuid.uuid4(), uuid.uuid4()
    answers = cache(Clock())
    answers.put(answers.begin("led", viewer=ALICE), b"L", session_head=watching)
    fill(answers, "no-session", b"N", ALICE)
    fill(answers, "bob", b"B", BOB)
    answers.invalidate_viewer(ALICE, session_video=watching)
    assert answers.fresh("led") == (b"L", "hit")
    assert answers.fresh("no-session") is None  # the video joins an empty session
    answers.invalidate_viewer(ALICE, session_video=other)
    assert answers.fresh("led") is None
    assert answers.fresh("bob") == (b"B", "hit")
    answers.put(answers.begin("led", viewer=ALICE), b"L2", session_head=other)
    answers.invalidate_viewer(ALICE)  # e.g. a new precomputed list
    assert answers.fresh("led") is None


def test_a_read_in_flight_is_stale_after_any_session_write() -> None:
    """Its answer's session head is not known until it ends: never kept as fresh."""
    watching = uuid.uuid4()
    answers = cache(Clock())
    ticket = answers.begin("a", viewer=ALICE)
    answers.invalidate_viewer(ALICE, session_video=watching)
    answers.put(ticket, b"A", session_head=watching)
    assert answers.fresh("a") is None


def test_a_zero_ttl_turns_the_cache_off() -> None:
    answers = cache(Clock(), ttl=0.0)
    fill(answers, "a", b"A", ALICE)
    assert answers.fresh("a") is None
    assert len(answers) == 0


@pytest.mark.parametrize(
    ("payload", "alice_fresh", "bob_fresh"),
    [
        (f"v:{ALICE}", False, True),
        ("*:related_videos", False, False),
        ("*", False, False),
        (f"v:{ALICE}:{uuid.UUID(int=1)}", False, True),  # a session video Alice's answer lacks
        (f"v:{ALICE}:{uuid.UUID(int=7)}", True, True),  # the video leading Alice's session
        ("v:not-a-uuid", False, False),  # unexpected: everything goes
        (f"v:{ALICE}:not-a-uuid", False, False),
        ("something else", False, False),
    ],
)
def test_notifications_invalidate_what_they_name(
    payload: str, alice_fresh: bool, bob_fresh: bool
) -> None:
    answers = cache(Clock())
    answers.put(answers.begin("a", viewer=ALICE), b"A", session_head=uuid.UUID(int=7))
    fill(answers, "b", b"B", BOB)
    apply(answers, payload)
    assert (answers.fresh("a") is not None, answers.fresh("b") is not None) == (
        alice_fresh,
        bob_fresh,
    )


# --- the token cache ---------------------------------------------------------------------


class WallClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def token(settings: Settings, user: uuid.UUID, *, issued: datetime | None = None) -> str:
    made, _ = create_access_token(settings=settings, user_id=user, username="t", now=issued)
    return made


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret="s" * 40, jwt_ttl_seconds=600)


def test_a_verified_token_is_reused_until_the_cache_ttl(settings: Settings) -> None:
    clock, wall = Clock(), WallClock()
    tokens = TokenCache(ttl_seconds=60, clock=clock, wallclock=wall)
    alice = token(settings, ALICE)
    assert tokens.get(alice) is None
    assert tokens.verify(alice, settings=settings).user_id == ALICE
    assert tokens.get(alice) is not None and tokens.get(alice).user_id == ALICE  # type: ignore[union-attr]
    clock.now += 60.5
    assert tokens.get(alice) is None  # verified again on the next request
    assert len(tokens) == 0


def test_token_verifications_made_together_expire_spread_out(settings: Settings) -> None:
    clock, wall = Clock(), WallClock()
    tokens = TokenCache(ttl_seconds=60, clock=clock, wallclock=wall, rng=lambda: 0.5)
    alice = token(settings, ALICE)
    tokens.verify(alice, settings=settings)
    clock.now += 53.9  # 60 s less 20 % x 0.5 of it
    assert tokens.get(alice) is not None
    clock.now += 0.2
    assert tokens.get(alice) is None


def test_an_expired_token_is_refused_even_when_cached(settings: Settings) -> None:
    """Expiry is checked on every hit, with decode_access_token's leeway of 5 s."""
    clock, wall = Clock(), WallClock()
    tokens = TokenCache(ttl_seconds=3600, clock=clock, wallclock=wall)
    alice = token(settings, ALICE)
    expires_at = tokens.verify(alice, settings=settings).expires_at.timestamp()
    wall.now = expires_at + 4.9
    assert tokens.get(alice) is not None
    wall.now = expires_at + 5.0
    assert tokens.get(alice) is None


def test_an_expired_token_is_not_verified_nor_kept(settings: Settings) -> None:
    tokens = TokenCache(ttl_seconds=3600)
    long_ago = datetime.now(UTC) - timedelta(seconds=settings.jwt_ttl_seconds + 10)
    expired = token(settings, ALICE, issued=long_ago)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(expired, settings=settings)
    assert len(tokens) == 0


def test_a_forged_token_is_refused_every_time(settings: Settings) -> None:
    tokens = TokenCache(ttl_seconds=3600)
    other = Settings(jwt_secret="o" * 40)
    forged = token(other, ALICE)
    for _ in range(2):
        with pytest.raises(InvalidToken, match="invalid"):
            tokens.verify(forged, settings=settings)
    assert tokens.get(forged) is None


def test_a_zero_token_ttl_verifies_every_request(settings: Settings) -> None:
    tokens = TokenCache(ttl_seconds=0)
    alice = token(settings, ALICE)
    assert tokens.verify(alice, settings=settings).user_id == ALICE
    assert len(tokens) == 0


def test_the_token_cache_holds_at_most_its_entries(settings: Settings) -> None:
    tokens = TokenCache(ttl_seconds=60, entries=2)
    made = [token(settings, uuid.uuid4()) for _ in range(3)]
    for t in made:
        tokens.verify(t, settings=settings)
    assert len(tokens) == 2
    assert tokens.get(made[0]) is None and tokens.get(made[2]) is not None


# --- what the fast path answers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (20, None, None)),
        (b"limit=5", (5, None, None)),
        (b"region=eu-west&limit=100&device=tv", (100, "eu-west", "tv")),
        (b"limit=007", (7, None, None)),
    ],
)
def test_plain_queries_are_parsed(
    query: bytes, expected: tuple[int, str | None, str | None]
) -> None:
    assert plain_query(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"limit=0",
        b"limit=101",
        b"limit=-1",
        b"limit=+5",
        b"limit=5.0",
        b"limit=",
        b"limit=1234",
        b"region=mars",
        b"region=",
        b"device=fridge",
        b"limit=5&limit=6",
        b"region=us-east&cursor=x",
        b"limit",
        b"\xff=1",
    ],
)
def test_anything_else_goes_to_the_route(query: bytes) -> None:
    assert plain_query(query) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer abc.def")], "abc.def"),
        ([(b"authorization", b"bearer abc")], "abc"),
        ([(b"host", b"x")], None),
        ([(b"authorization", b"Basic dXNlcjpwdw==")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")], None),
    ],
)
def test_bearer_tokens_are_read_from_one_authorization_header(
    headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    assert bearer_token({"headers": headers}) == expected


def test_an_answer_expires_when_its_session_would_change() -> None:
    """valid_for (the oldest session row leaving the window) shortens the TTL, counted from
    the start of the read; it never lengthens it."""
    clock = Clock()
    answers = cache(clock, ttl=300.0)
    ticket = answers.begin("a", viewer=ALICE)
    clock.now += 0.5  # the read takes half a second
    answers.put(ticket, b"A", valid_for=10.0)
    clock.now += 9.49
    assert answers.fresh("a") == (b"A", "hit")
    clock.now += 0.02
    assert answers.fresh("a") is None
    fill_long = answers.begin("b", viewer=BOB)
    answers.put(fill_long, b"B", valid_for=10_000.0)
    clock.now += 300.01
    assert answers.fresh("b") is None
