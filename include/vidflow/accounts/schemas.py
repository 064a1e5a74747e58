"""Request and response models of the account endpoints.

Create, login and public shapes are separate so internal columns (the password hash)
never reach a response.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

USERNAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,30}[a-z0-9]$")
PASSWORD_MIN: Final = 10
#: argon2 hashes any length, but an unbounded input is a cheap way to burn CPU.
PASSWORD_MAX: Final = 256
#: A few of the passwords every breach list starts with; length rules catch the rest.
COMMON_PASSWORDS: Final = frozenset(
    {"password123", "1234567890", "qwertyuiop", "password1!", "iloveyou12", "letmein123"}
)


def password_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """Why ``password`` is too weak (empty when it is acceptable)."""
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"must be at least {PASSWORD_MIN} characters long")
    if len(password) > PASSWORD_MAX:
        problems.append(f"must be at most {PASSWORD_MAX} characters long")
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 2:
        problems.append("must mix at least two of: lower case, upper case, digits, symbols")
    if len(set(password)) < 4:
        problems.append("must not repeat the same few characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        problems.append("is a well-known password")
    if username and len(username) >= 3 and username.lower() in lowered:
        problems.append("must not contain the username")
    local = email.partition("@")[0].lower()
    if len(local) >= 3 and local in lowered:
        problems.append("must not contain the e-mail address")
    return problems


class UserCreate(BaseModel):
    """Registration request. Passwords are taken verbatim (never stripped)."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[
        str,
        Field(
            min_length=3,
            max_length=32,
            description="3-32 characters: a-z, 0-9, '.', '_' or '-'; stored in lower case.",
        ),
    ]
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX, repr=False)]

    @field_validator("username")
    @classmethod
    def _username_shape(cls, value: str) -> str:
        value = value.strip().lower()
        if not USERNAME_RE.fullmatch(value):
            raise ValueError(
                "must be 3-32 characters of a-z, 0-9, '.', '_' or '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("email")
    @classmethod
    def _email_lower(cls, value: str) -> str:
        # One mailbox, one account: uniqueness is case-insensitive.
        return value.strip().lower()

    @field_validator("password")
    @classmethod
    def _password_strength(cls, value: str, info: ValidationInfo) -> str:
        problems = password_problems(
            value, username=info.data.get("username", ""), email=info.data.get("email", "")
        )
        if problems:
            raise ValueError("; ".join(problems))
        return value


class UserPublic(BaseModel):
    """What the API shows of an account."""

    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    username: str
    email: str
    created_at: datetime


class LoginRequest(BaseModel):
    """Login with a username (or the e-mail address) and password."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX, repr=False)]

    @field_validator("username")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        # No username or e-mail address holds one, and PostgreSQL text cannot hold NUL:
        # refused here instead of failing the lookup (found by schemathesis).
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        return value


class Token(BaseModel):
    """A bearer token for the upload API."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the scheme, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")
