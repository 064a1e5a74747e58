"""Account endpoints: register, log in (get a bearer token), show the current account."""

from __future__ import annotations

from fastapi import APIRouter, status

from vidflow.accounts import service
from vidflow.accounts.deps import ClientAddress, CurrentUser, SessionDep, SettingsDep
from vidflow.accounts.schemas import LoginRequest, Token, UserCreate, UserPublic
from vidflow.accounts.security import create_access_token
from vidflow.problems import Problem, problem_responses

router = APIRouter(tags=["accounts"])


_REGISTER = problem_responses(
    {
        409: "The username or e-mail address is taken.",
        422: "Weak or malformed input; `errors` lists each field.",
        429: "Too many registrations from this address; retry after Retry-After.",
    }
)
_LOGIN = problem_responses(
    {
        401: "Unknown username or wrong password.",
        422: "Malformed input; `errors` lists each field.",
        429: "Too many failed logins for this account or address; retry after Retry-After.",
    }
)


class AccountGone(Problem):
    status = 401
    title = "Not authenticated"


@router.post(
    "/v1/accounts",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=_REGISTER,
)
def register(
    user_in: UserCreate, session: SessionDep, settings: SettingsDep, client: ClientAddress
) -> UserPublic:
    """Create an account. 409 when the username or e-mail is taken, 422 for weak input,
    429 (with Retry-After) after too many registrations from one address."""
    user = service.register_user(session=session, user_in=user_in, settings=settings, client=client)
    return UserPublic.model_validate(user)


@router.post("/v1/auth/token", response_model=Token, responses=_LOGIN)
def login(
    credentials: LoginRequest, session: SessionDep, settings: SettingsDep, client: ClientAddress
) -> Token:
    """Exchange a username (or e-mail) and password for a short-lived bearer token.
    429 (with Retry-After) after too many failures for the account or the address."""
    user = service.authenticate(
        session=session,
        login=credentials.username,
        password=credentials.password,
        settings=settings,
        client=client,
    )
    token, ttl = create_access_token(
        settings=settings, user_id=user.user_id, username=user.username
    )
    return Token(access_token=token, expires_in=ttl)


@router.get("/v1/accounts/me", response_model=UserPublic)
def me(user: CurrentUser, session: SessionDep) -> UserPublic:
    """The account the bearer token belongs to."""
    account = service.get_user(session=session, user_id=user.user_id)
    if account is None:
        raise AccountGone("the account of this token no longer exists")
    return UserPublic.model_validate(account)
