"""Account operations on the catalog: register, authenticate, look up.

``users`` is hash-partitioned by ``user_id``, so the global uniqueness of usernames and
e-mail addresses lives in the lookup tables ``usernames`` and ``user_emails``. A
registration writes all three rows in one transaction; a duplicate in either lookup
table aborts it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidflow.accounts import ratelimit
from vidflow.accounts.errors import AccountExists, InvalidCredentials
from vidflow.accounts.schemas import UserCreate
from vidflow.accounts.security import (
    dummy_password_hash,
    hash_password,
    password_needs_rehash,
    verify_password,
)
from vidflow.catalog.models import User, UserEmail, Username
from vidflow.config import Settings


def register_user(
    *, session: Session, user_in: UserCreate, settings: Settings, client: str
) -> User:
    """Create an account; raises :class:`AccountExists` for a taken username or e-mail,
    :class:`~vidflow.accounts.ratelimit.RateLimited` when ``client`` registered too often
    (checked and counted before the password is hashed)."""
    limits = ratelimit.registration_limits(settings, client=client)
    ratelimit.check(session.connection(), limits)
    ratelimit.count(session.connection(), limits, window=_window(settings))
    session.commit()
    user_id = uuid.uuid4()
    # Hash before touching the database: no transaction stays open for argon2's runtime.
    password_hash = hash_password(user_in.password)
    try:
        session.add(Username(username=user_in.username, user_id=user_id))
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AccountExists(f"the username {user_in.username!r} is already taken") from None
    try:
        session.add(UserEmail(email=user_in.email, user_id=user_id))
        session.flush()
    except IntegrityError:
        session.rollback()
        raise AccountExists("an account with this e-mail address already exists") from None
    user = User(
        user_id=user_id,
        username=user_in.username,
        email=user_in.email,
        password_hash=password_hash,
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def get_user(*, session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def _user_id_for_login(session: Session, login: str) -> uuid.UUID | None:
    login = login.strip().lower()
    if "@" in login:
        return session.scalar(select(UserEmail.user_id).where(UserEmail.email == login))
    return session.scalar(select(Username.user_id).where(Username.username == login))


def _window(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.auth_window_seconds)


def authenticate(
    *, session: Session, login: str, password: str, settings: Settings, client: str
) -> User:
    """The user whose username (or e-mail) and password match; else InvalidCredentials.

    Failures count per account and per ``client`` address; a blocked key is refused with
    :class:`~vidflow.accounts.ratelimit.RateLimited` before any password is verified.
    A right password resets the account's count (not the address's).
    """
    user_id = _user_id_for_login(session, login)
    limits = ratelimit.login_limits(
        settings, account=str(user_id) if user_id else login, client=client
    )
    ratelimit.check(session.connection(), limits)
    password_hash = (
        session.scalar(select(User.password_hash).where(User.user_id == user_id))
        if user_id
        else None
    )
    session.rollback()  # no transaction stays open while argon2 runs
    if password_hash is None or user_id is None:
        verify_password(dummy_password_hash(), password)
        ok = False
    else:
        ok = verify_password(password_hash, password)
    if not ok:
        ratelimit.count(session.connection(), limits, window=_window(settings))
        session.commit()
        raise InvalidCredentials()
    ratelimit.reset(session.connection(), [limits[0].key])
    user = session.get(User, user_id)
    if user is None:  # deleted while we verified
        raise InvalidCredentials()
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.commit()
    return user
