"""Account input validation, argon2 hashing and JWT bearer tokens (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from vidflow.accounts.schemas import LoginRequest, UserCreate, password_problems
from vidflow.accounts.security import (
    InvalidToken,
    create_access_token,
    decode_access_token,
    hash_password,
    verify_password,
)
from vidflow.config import Settings

SECRET = "s" * 40


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret=SecretStr(SECRET), jwt_ttl_seconds=900)


# --- registration input -------------------------------------------------------------------


def test_valid_registration_is_normalised() -> None:
    user = UserCreate(username="  Ada.Lovelace ", email="Ada@Example.COM", password="Engine#1843!")
    assert user.username == "ada.lovelace"
    assert user.email == "ada@example.com"
    assert user.password == "Engine#1843!"  # never stripped or changed


@pytest.mark.parametrize("username", ["ab", "a" * 33, "has space", "-leading", "trailing_", "é"])
def test_malformed_usernames_are_rejected(username: str) -> None:
    with pytest.raises(ValidationError, match="username"):
        UserCreate(username=username, email="x@example.com", password="Engine#1843!")


def test_malformed_email_is_rejected() -> None:
    with pytest.raises(ValidationError, match="email"):
        UserCreate(username="ada", email="not-an-email", password="Engine#1843!")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt!", "at least 10 characters"),
        ("alllowercaseletters", "mix at least two"),
        ("aaaaaaaaaaaa1", "repeat the same few characters"),
        ("Password123", "well-known"),
        ("xx-babbage-2024", "must not contain the username"),
        ("Charles-1791xyz", "must not contain the e-mail"),
    ],
)
def test_weak_passwords_get_the_reason(password: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as exc:
        UserCreate(username="babbage", email="charles@example.com", password=password)
    assert exc.value.errors()[0]["loc"] == ("password",)


def test_password_problems_accepts_a_good_password() -> None:
    assert password_problems("correct-Horse-battery", username="ada", email="a@b.c") == []


# --- argon2 -----------------------------------------------------------------------------------


def test_passwords_are_argon2id_hashes() -> None:
    hashed = hash_password("Engine#1843!")
    assert hashed.startswith("$argon2id$")
    assert "Engine#1843!" not in hashed
    assert verify_password(hashed, "Engine#1843!")
    assert not verify_password(hashed, "engine#1843!")
    assert not verify_password("not-a-hash", "Engine#1843!")
    assert hash_password("Engine#1843!") != hashed  # salted


# --- JWT ----------------------------------------------------------------------------------------


def test_token_round_trip(settings: Settings) -> None:
    user_id = uuid.uuid4()
    token, ttl = create_access_token(settings=settings, user_id=user_id, username="ada")
    assert ttl == 900
    claims = decode_access_token(token, settings=settings)
    assert claims.user_id == user_id
    assert claims.username == "ada"
    assert claims.expires_at > datetime.now(UTC) + timedelta(seconds=800)


def test_expired_token_is_refused(settings: Settings) -> None:
    issued = datetime.now(UTC) - timedelta(hours=1)
    token, _ = create_access_token(
        settings=settings, user_id=uuid.uuid4(), username="ada", now=issued
    )
    with pytest.raises(InvalidToken, match="expired"):
        decode_access_token(token, settings=settings)


def test_token_signed_with_another_secret_is_refused(settings: Settings) -> None:
    other = Settings(jwt_secret=SecretStr("o" * 40))
    token, _ = create_access_token(settings=other, user_id=uuid.uuid4(), username="ada")
    with pytest.raises(InvalidToken, match="invalid"):
        decode_access_token(token, settings=settings)


def test_tampered_and_unsigned_tokens_are_refused(settings: Settings) -> None:
    token, _ = create_access_token(settings=settings, user_id=uuid.uuid4(), username="ada")
    header, payload, signature = token.split(".")
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "exp": 9999999999, "iat": 0, "iss": "vidflow"},
        SECRET,
        algorithm="HS256",
    )
    unsigned = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "exp": 9999999999,
            "iat": 0,
            "iss": "vidflow",
            "aud": "vidflow-upload",
        },
        None,
        algorithm="none",
    )
    for bad in (
        f"{header}.{payload}.{signature[:-2]}xx",
        forged,  # right secret, but no audience: not one of our upload tokens
        unsigned,
        "garbage",
    ):
        with pytest.raises(InvalidToken):
            decode_access_token(bad, settings=settings)


def test_a_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(RuntimeError, match="VIDFLOW_JWT_SECRET"):
        create_access_token(
            settings=Settings(jwt_secret=SecretStr("short")), user_id=uuid.uuid4(), username="a"
        )


def test_a_login_name_with_control_characters_is_refused_before_any_lookup() -> None:
    # schemathesis sent "\x9f\x00..." as a username: PostgreSQL text cannot hold NUL, and
    # the lookup failed with a 500; now the request itself is invalid (422).
    for name in ("al\x00ice", "bob\n", "\x7f"):
        with pytest.raises(ValidationError, match="control characters"):
            LoginRequest(username=name, password="Secret-pass-1")
    assert LoginRequest(username="alice@example.com", password="x").username == "alice@example.com"
