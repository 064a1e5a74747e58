"""The local secrets file is private from the first byte: at no moment while it is
written does a file readable by group or others exist, whatever the umask."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vidflow.stack import secrets as dev_secrets

_watch: dict[str, Any] = {"dir": None, "seen": []}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Before every file-system step of the code under test, note the mode of every file
    # in the watched directory (audit hooks cannot be removed, so this one is gated).
    directory = _watch["dir"]
    if directory is None or not event.startswith(("open", "os.")):
        return
    _watch["dir"] = None  # no recursion through our own listing
    try:
        for entry in os.scandir(directory):
            _watch["seen"].append((event, entry.name, stat.S_IMODE(entry.stat().st_mode)))
    finally:
        _watch["dir"] = directory


sys.addaudithook(_audit)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)  # the worst case: nothing masked
    try:
        yield
    finally:
        os.umask(previous)


def _watching(directory: Path) -> list[tuple[str, str, int]]:
    _watch["seen"] = []
    _watch["dir"] = str(directory)
    return _watch["seen"]  # type: ignore[no-any-return]


def test_new_secrets_file_is_never_readable_by_others(
    tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in dev_secrets.GENERATED:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "secrets.env"
    seen = _watching(tmp_path)
    try:
        created = dev_secrets.ensure_secrets(path)
        # A second run appends a new variable: the rewrite is private too.
        monkeypatch.setitem(dev_secrets.GENERATED, "VIDFLOW_TEST_EXTRA", lambda: "x")
        assert dev_secrets.ensure_secrets(path) == ["VIDFLOW_TEST_EXTRA"]
    finally:
        _watch["dir"] = None
    assert sorted(created) == sorted(dev_secrets.GENERATED.keys() - {"VIDFLOW_TEST_EXTRA"})
    assert seen, "the audit hook saw the file being written"
    leaks = [(event, name, oct(mode)) for event, name, mode in seen if mode & 0o077]
    assert leaks == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.env"]  # no temporary file left
    values = dev_secrets.read_env_file(path)
    assert values["VIDFLOW_TEST_EXTRA"] == "x" and len(values) == len(created) + 1


def test_write_private_replaces_a_world_readable_file(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("OLD=1\n")
    path.chmod(0o644)
    dev_secrets.write_private(path, "NEW=2\n")
    assert path.read_text() == "NEW=2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
