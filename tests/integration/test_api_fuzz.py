"""schemathesis against the upload API and the viewer API, both running as real processes
on the real stack: generated requests for every documented operation must get no 5xx,
no status code the OpenAPI document does not list, and the documented content type.

Bounded: a few examples per operation, no shrinking, about a minute for both APIs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    status_code_conformance,
)

from tests.integration.tus_harness import (
    TestQueue,
    UploadService,
    cleanup_creators,
    register,
)
from tests.integration.viewer_harness import ViewerProcess, bearer, events_bucket
from vidflow.config import Settings

EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@dataclass
class Apis:
    settings: Settings
    upload: UploadService
    viewer: ViewerProcess
    headers: dict[str, str]
    users: list[uuid.UUID] = field(default_factory=list)


@pytest.fixture(scope="module")
def apis(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apis]:
    tmp = tmp_path_factory.mktemp("fuzz")
    token = os.urandom(4).hex()
    queue = TestQueue(stack, f"vidflow-test-fuzz-{token}")
    queue.create()
    upload = UploadService(stack, queue.name, tmp / "upload.log")
    with events_bucket(stack, token) as bucket:
        upload.start()  # then pick the viewer's port: two free ports picked at once may clash
        viewer = ViewerProcess(bucket, tmp / "viewer.log")
        viewer.start()
        creator = register(upload.base_url, f"fuzz_{token}")
        # A client address of this module's own, so what it counts against the sign-in
        # limits never blocks the loopback address other tests log in from.
        headers = {**creator.auth, "X-Forwarded-For": f"fuzz-{token}"}
        apis = Apis(stack, upload, viewer, headers, [creator.user_id])
        try:
            yield apis
        finally:
            viewer.stop()
            upload.stop()
            cleanup_creators(stack, apis.users)
            queue.delete()


def _property(operation: Any, base_url: str, apis: Apis, calls: list[int]) -> Callable[[], None]:
    """The hypothesis test of one operation."""
    registers = operation.path == "/v1/accounts"

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        calls.append(1)
        response = case.call(base_url=base_url, headers=apis.headers, timeout=30)
        if registers and response.status_code == 201:
            apis.users.append(uuid.UUID(response.json()["user_id"]))
        case.validate_response(response, checks=CHECKS, headers=apis.headers)

    return run  # type: ignore[no-any-return]


def _fuzz(base_url: str, apis: Apis) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _property(operation, base_url, apis, calls)()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, not the first
            failures.append(f"{operation.label}: {exc}"[:1500])
    return len(calls), failures


def test_upload_api_has_no_5xx_and_no_undocumented_status(apis: Apis) -> None:
    calls, failures = _fuzz(apis.upload.base_url, apis)
    assert failures == []
    assert calls >= 9 * 3  # every operation was exercised


def test_viewer_api_has_no_5xx_and_no_undocumented_status(apis: Apis) -> None:
    apis.headers = {
        **bearer(apis.settings, apis.users[0]),
        "X-Forwarded-For": apis.headers["X-Forwarded-For"],
    }
    calls, failures = _fuzz(apis.viewer.base_url, apis)
    assert failures == []
    assert calls >= 7 * 3
