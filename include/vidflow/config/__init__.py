"""One typed settings object for the whole platform.

Every component (DAG tasks, Spark jobs, services, the local stack) reads its
configuration from :func:`get_settings`. Values come from ``VIDFLOW_*`` environment
variables; for local development, ``.env`` in the repository root and the generated
``.local/secrets.env`` are read too. Pointing the platform at AWS, MinIO, a remote
PostgreSQL or a Spark cluster changes environment variables only.

``.env.example`` documents every field; a test keeps the two in step. The fields live in
one module per area (``stack``, ``media``, ``viewing``, ``cdn``); :class:`Settings` is
all of them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr

from vidflow.config.cdn import CdnSettings
from vidflow.config.media import MediaSettings
from vidflow.config.stack import DEFAULT_STATE_DIR, REPO_ROOT, StackSettings
from vidflow.config.viewing import ViewerSettings

__all__ = [
    "DEFAULT_STATE_DIR",
    "REPO_ROOT",
    "CdnSettings",
    "MediaSettings",
    "Settings",
    "StackSettings",
    "ViewerSettings",
    "env_example",
    "get_settings",
]


class Settings(CdnSettings, ViewerSettings, MediaSettings):
    """Platform configuration. Field ``foo_bar`` is read from ``VIDFLOW_FOO_BAR``."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def env_example() -> str:
    """The text of ``.env.example``: every variable, its default and what it is for.

    ``python -m vidflow.config > .env.example`` regenerates the file; a test checks that
    the committed file is current.
    """
    lines = [
        "# vidflow configuration. Every variable is optional: the defaults run the local",
        "# stack. Copy to .env to override locally; in deployments set real environment",
        "# variables. Secrets left empty are generated into .local/secrets.env by `make up`.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, Path):
            default = (
                default.relative_to(REPO_ROOT) if default.is_relative_to(REPO_ROOT) else default
            )
        if name == "lake_uri":
            default = ".local/lake"
        lines.append(f"# {field.description}")
        # A None default means "derived" (see the description): leave it unset.
        prefix = "# " if default is None else ""
        lines.append(f"{prefix}VIDFLOW_{name.upper()}={'' if default is None else default}")
        lines.append("")
    return "\n".join(lines)
