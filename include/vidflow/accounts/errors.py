"""Domain errors of accounts and sign-in; the upload service maps them to HTTP
(:mod:`vidflow.uploads.problems`)."""

from __future__ import annotations


class AccountError(Exception):
    """Base of the account domain's errors; ``detail`` is the message for the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AccountExists(AccountError):
    pass


class InvalidCredentials(AccountError):
    def __init__(self) -> None:
        super().__init__("unknown username or wrong password")


class RateLimited(AccountError):
    """Too many attempts for a key; refused for ``retry_after`` more seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many attempts from this account or address; retry in {retry_after} s"
        )
        self.retry_after = retry_after
