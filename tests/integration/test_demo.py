"""The upload half of ``make demo`` against the running stack: a tus upload by the demo
creator becomes a processed, playable stream."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from vidflow.config import Settings
from vidflow.stack import demo


def test_demo_upload_becomes_a_playable_stream(stack: Settings) -> None:
    said: list[str] = []
    video = demo.upload_and_watch(stack, said.append)
    assert video["status"] == "processed"
    assert {r["name"] for r in video["renditions"]} == {"720p", "540p", "432p", "360p", "234p"}
    assert abs(video["duration_seconds"] - demo.CLIP_SECONDS) < 0.1
    assert any(line.endswith(": processed") for line in said), said
    # The demo creator logs in again on the next run (registration answers 409).
    base_url = f"http://{stack.bind_host}:{stack.upload_port}"
    assert demo.login(stack, base_url)
    assert httpx.get(video["thumbnail_urls"]["large"], timeout=10).status_code == 200


def test_a_wrong_demo_password_is_explained(stack: Settings) -> None:
    base_url = f"http://{stack.bind_host}:{stack.upload_port}"
    demo.login(stack, base_url)  # the account exists
    wrong = stack.model_copy(update={"demo_password": SecretStr("Another-password-123")})
    with pytest.raises(demo.DemoError, match="exists with another password"):
        demo.login(wrong, base_url)
