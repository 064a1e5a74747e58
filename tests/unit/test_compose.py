"""Consistency checks of docker-compose.yaml, the multi-machine deployment.

Docker cannot run where the tests run, so the file is checked as data: every service can
start and report its health, every ``VIDFLOW_*`` variable is a real setting, ports stay on
loopback, secrets are never literal, and the Celery wiring is the one the DAGs rely on.
Each checker is a plain function returning the problems it found; besides running on the
real file, each one runs on a small broken compose document, so a checker that could never
fail would be caught.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from vidflow.config import Settings
from vidflow.stack.services import airflow_connections

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE_CONFIG_DIR = REPO_ROOT / "infra" / "compose"
#: Where the Dockerfile copies the repository inside the platform image.
IMAGE_SRC = "/opt/vidflow/src/"

EXECUTOR = "AIRFLOW__CORE__EXECUTOR"
LOOPBACK = "127.0.0.1"
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` (``$$`` is compose's escape).
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)
ENV_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")
VIDFLOW_NAME = re.compile(r"\bVIDFLOW_[A-Z0-9_]+")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY|TOKEN")
URL_PASSWORD = re.compile(r"://[^/@\s:]*:([^/@\s]+)@")
JSON_PASSWORD = re.compile(r'"password"\s*:\s*"([^"]*)"')

Compose = dict[str, Any]


# --- reading the document -------------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> Compose:
    """The compose file with YAML anchors and merge keys resolved."""
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def services(compose: Compose) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every node of the document with its path, top-level ``x-`` anchors included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))


def env_map(environment: Any) -> dict[str, str | None]:
    """An ``environment`` block, written as a mapping or as a ``KEY=value`` list."""
    if isinstance(environment, dict):
        return {str(k): None if v is None else str(v) for k, v in environment.items()}
    result: dict[str, str | None] = {}
    for item in environment or []:
        key, sep, value = str(item).partition("=")
        result[key] = value if sep else None
    return result


def environment_of(node: dict[str, Any]) -> dict[str, str | None]:
    return env_map(node.get("environment"))


def assignments(compose: Compose) -> Iterator[tuple[str, str, str | None]]:
    """Every environment variable set anywhere in the document: ``KEY: value`` in a
    mapping or ``KEY=value`` in a list, in services and in ``x-`` anchors alike (compose's
    own keys are lower case, so upper-case keys are variables)."""
    for path, node in walk(compose):
        where = ".".join(path)
        if isinstance(node, dict):
            for key, value in node.items():
                if ENV_KEY.fullmatch(str(key)) and not isinstance(value, dict | list):
                    yield where, str(key), None if value is None else str(value)
        elif isinstance(node, list):
            for item in node:
                key, sep, value = str(item).partition("=")
                if sep and isinstance(item, str) and ENV_KEY.fullmatch(key):
                    yield where, key, value


def strings(compose: Compose) -> Iterator[tuple[str, str]]:
    for path, node in walk(compose):
        if isinstance(node, str):
            yield ".".join(path), node


def command_args(service: dict[str, Any], key: str = "command") -> list[str]:
    command = service.get(key)
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(arg) for arg in command]


def render(text: str, env: dict[str, str] | None = None) -> str:
    """What compose makes of ``text``: interpolations replaced (``<NAME>`` for required
    variables that are not in ``env``), ``$$`` unescaped."""
    env = env or {}

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if name in env:
            return env[name]
        return arg if op in {"-", ":-"} else f"<{name}>"

    return INTERPOLATION.sub(value, text).replace("$$", "$")


# --- checkers: each returns the problems it found -----------------------------------------


def missing_image_or_build(compose: Compose) -> list[str]:
    return sorted(n for n, s in services(compose).items() if not (s.get("image") or s.get("build")))


def missing_healthcheck(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test"):
            problems.append(name)
    return sorted(problems)


def vidflow_variables(compose: Compose) -> dict[str, str]:
    """``VIDFLOW_*`` variables set anywhere (services and anchors) or interpolated
    anywhere, each with the first place it appears."""
    found: dict[str, str] = {}
    for where, key, _ in assignments(compose):
        if key.startswith("VIDFLOW_"):
            found.setdefault(key, where)
    for where, text in strings(compose):
        for match in INTERPOLATION.finditer(text):
            if match["name"].startswith("VIDFLOW_"):
                found.setdefault(match["name"], where)
    return found


def settings_variables() -> set[str]:
    return {f"VIDFLOW_{name.upper()}" for name in Settings.model_fields}


def unknown_vidflow_variables(compose: Compose, known: set[str]) -> list[str]:
    return sorted(name for name in vidflow_variables(compose) if name not in known)


def ports_not_on_loopback(compose: Compose) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host = port.get("host_ip")
            else:
                parts = str(port).rsplit(":", 2)
                host = parts[0] if len(parts) == 3 else None
            if host != LOOPBACK:
                problems.append(f"{name}: {port!r}")
    return problems


def dangling_depends_on(compose: Compose) -> list[str]:
    known = set(services(compose))
    return [
        f"{name} -> {target}"
        for name, service in services(compose).items()
        for target in service.get("depends_on") or []
        if target not in known
    ]


def executor_problems(compose: Compose) -> list[str]:
    problems = []
    common = compose.get("x-airflow-common")
    if not isinstance(common, dict):
        problems.append("no x-airflow-common anchor")
    elif environment_of(common).get(EXECUTOR) != "CeleryExecutor":
        problems.append(f"x-airflow-common: {EXECUTOR}={environment_of(common).get(EXECUTOR)}")
    airflow = {n: environment_of(s) for n, s in services(compose).items()}
    airflow = {n: env for n, env in airflow.items() if EXECUTOR in env}
    if not airflow:
        problems.append("no service runs Airflow")
    problems += [
        f"{name}: {EXECUTOR}={env[EXECUTOR]}"
        for name, env in airflow.items()
        if env[EXECUTOR] != "CeleryExecutor"
    ]
    return problems


def celery_worker_queues(service: dict[str, Any]) -> list[str] | None:
    """The queues a service's Celery worker consumes, or None if it runs no worker."""
    args = command_args(service)
    if not any(args[i : i + 2] == ["celery", "worker"] for i in range(len(args))):
        return None
    queues: list[str] = []
    for i, arg in enumerate(args):
        if arg in {"--queues", "-q"} and i + 1 < len(args):
            queues += args[i + 1].split(",")
        elif arg.startswith("--queues="):
            queues += arg.partition("=")[2].split(",")
    default = environment_of(service).get("AIRFLOW__OPERATORS__DEFAULT_QUEUE") or "default"
    return queues or [default]


def workers_by_queue(compose: Compose) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, service in services(compose).items():
        for queue in celery_worker_queues(service) or []:
            result.setdefault(queue, []).append(name)
    return result


def secret_like(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not name.endswith("_FILE")


def _required(text: str) -> bool:
    """Is ``text`` exactly one interpolation that fails when the variable is unset?"""
    match = INTERPOLATION.fullmatch(text.strip())
    return bool(match) and (match["op"] or "") in {"?", ":?"}


def literal_secrets(compose: Compose) -> list[str]:
    """Secrets written into the file, or given a default, instead of a required variable."""
    problems = []
    for where, key, value in assignments(compose):
        if secret_like(key) and not _required(value or ""):
            problems.append(f"{where}.{key} is not a required ${{VAR:?...}}")
    for where, text in strings(compose):
        for match in INTERPOLATION.finditer(text):
            if secret_like(match["name"]) and (match["op"] or "") not in {"?", ":?"}:
                problems.append(f"{where}: {match['name']} may fall back to a literal")
        # Mask interpolations so the user part of a URL holds no ':' of its own.
        masked = INTERPOLATION.sub(lambda m: f"~{m.start()}~", text)
        originals = {f"~{m.start()}~": m[0] for m in INTERPOLATION.finditer(text)}
        for pattern in (URL_PASSWORD, JSON_PASSWORD):
            for found in pattern.finditer(masked):
                password = originals.get(found[1], found[1])
                if not _required(password):
                    problems.append(f"{where}: literal password {found[1]!r}")
    return problems


def missing_bind_sources(compose: Compose, root: Path) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                source = volume.get("source", "") if volume.get("type") == "bind" else ""
            else:
                source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")) and not (root / source).exists():
                problems.append(f"{name}: {source}")
    return problems


def missing_image_files(compose: Compose, root: Path) -> list[str]:
    """Paths under the image's copy of the repository that the repository lacks."""
    problems = []
    for name, service in services(compose).items():
        check = (service.get("healthcheck") or {}).get("test") or []
        args = command_args(service) + command_args(service, "entrypoint") + [str(a) for a in check]
        for arg in args:
            if arg.startswith(IMAGE_SRC) and not (root / arg.removeprefix(IMAGE_SRC)).exists():
                problems.append(f"{name}: {arg}")
    return problems


def connections(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``AIRFLOW_CONN_*`` connections of a service, parsed from their JSON form."""
    return {
        key: json.loads(render(value or ""))
        for key, value in environment_of(service).items()
        if key.startswith("AIRFLOW_CONN_")
    }


# --- a broken document: every checker must find its problem in it -------------------------


def broken_compose() -> Compose:
    return {
        "x-airflow-common": {
            "environment": {EXECUTOR: "LocalExecutor", "VIDFLOW_NOT_A_SETTING": "1"},
        },
        "services": {
            "no-image": {"healthcheck": {"test": ["CMD", "true"]}, "depends_on": ["ghost"]},
            "no-test": {
                "image": "busybox",
                "healthcheck": {"interval": "5s"},
                "ports": ["8080:8080", "0.0.0.0:9000:9000", {"target": 80, "published": 81}],
                "environment": ["VIDFLOW_PG_HOST=db", "VIDFLOW_PG_HOTS=db"],
                "command": ["bash", "/opt/vidflow/src/infra/compose/no-such-script.sh"],
            },
            "disabled": {
                "image": "busybox",
                "healthcheck": {"test": ["CMD", "true"], "disable": True},
            },
            "worker": {
                "image": "busybox",
                "command": "airflow celery worker --queues default",
                "depends_on": {"phantom": {"condition": "service_healthy"}},
                "environment": {
                    EXECUTOR: "LocalExecutor",
                    "REDIS_PASSWORD": "hunter2",
                    "DB_URL": "postgresql://vidflow:hunter2@db/vidflow",
                    "PG": "${VIDFLOW_PG_PASSWORD:-changeme}",
                    "CONN": '{"conn_type": "postgres", "password": "hunter2"}',
                    "TYPO": "${VIDFLOW_PG_PASWORD:?required}",
                },
                "volumes": ["./no/such/file.conf:/etc/x.conf:ro", "named:/data"],
            },
        },
    }


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


# --- the real file ---------------------------------------------------------------------------


def test_the_file_parses_as_a_compose_document(compose: Compose) -> None:
    assert services(compose), "no services"
    assert "x-airflow-common" in compose, "the Airflow services share an x-airflow-common anchor"


def test_every_service_has_an_image_or_a_build(compose: Compose) -> None:
    assert missing_image_or_build(compose) == []
    assert missing_image_or_build(broken_compose()) == ["no-image"]


def test_every_service_has_a_healthcheck_with_a_test(compose: Compose) -> None:
    assert missing_healthcheck(compose) == []
    assert missing_healthcheck(broken_compose()) == ["disabled", "no-test", "worker"]


def test_every_vidflow_variable_is_a_setting(compose: Compose) -> None:
    known = settings_variables()
    assert unknown_vidflow_variables(compose, known) == []
    assert unknown_vidflow_variables(broken_compose(), known) == [
        "VIDFLOW_NOT_A_SETTING",
        "VIDFLOW_PG_HOTS",
        "VIDFLOW_PG_PASWORD",
    ]


def test_the_check_sees_variables_in_anchors_lists_and_interpolations(compose: Compose) -> None:
    found = vidflow_variables(compose)
    # Set in the x-vidflow-env anchor, merged into every vidflow container.
    assert found["VIDFLOW_PG_HOST"].startswith("x-vidflow-env")
    assert {"VIDFLOW_SPARK_MASTER", "VIDFLOW_LAKE_URI", "VIDFLOW_MLFLOW_TRACKING_URI"} <= set(found)
    # Only interpolated (MinIO's root password), never set.
    assert "VIDFLOW_AWS_SECRET_ACCESS_KEY" in found
    assert {"VIDFLOW_PG_HOTS", "VIDFLOW_PG_PASWORD"} <= set(vidflow_variables(broken_compose()))


def test_deployment_files_name_only_real_settings() -> None:
    """Comments, the Dockerfile and the config files under infra/compose/ included."""
    known = settings_variables()
    files = [
        COMPOSE_FILE,
        DOCKERFILE,
        *sorted(p for p in COMPOSE_CONFIG_DIR.rglob("*") if p.is_file()),
    ]
    unknown = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in files
        for name in VIDFLOW_NAME.findall(path.read_text())
        if name not in known
    }
    assert sorted(unknown) == []
    assert VIDFLOW_NAME.findall("ENV VIDFLOW_SPARK_JARZ_FILE=/x") == ["VIDFLOW_SPARK_JARZ_FILE"]


def test_published_ports_bind_to_loopback(compose: Compose) -> None:
    assert ports_not_on_loopback(compose) == []
    assert len(ports_not_on_loopback(broken_compose())) == 3


def test_depends_on_targets_exist(compose: Compose) -> None:
    assert dangling_depends_on(compose) == []
    assert dangling_depends_on(broken_compose()) == ["no-image -> ghost", "worker -> phantom"]


def test_airflow_runs_the_celery_executor_with_redis(compose: Compose) -> None:
    assert executor_problems(compose) == []
    assert len(executor_problems(broken_compose())) == 2
    broker = environment_of(compose["x-airflow-common"])["AIRFLOW__CELERY__BROKER_URL"] or ""
    assert broker.startswith("redis://") and "@redis:" in broker
    assert "redis" in services(compose)


def test_a_worker_consumes_only_the_transcode_queue(compose: Compose) -> None:
    transcode = [
        name for name, s in services(compose).items() if celery_worker_queues(s) == ["transcode"]
    ]
    assert transcode == ["airflow-worker-transcode"]
    assert "default" in workers_by_queue(compose), "tasks without a queue need a worker too"
    assert workers_by_queue(broken_compose()) == {"default": ["worker"]}
    assert celery_worker_queues({"command": ["airflow", "scheduler"]}) is None


def test_every_airflow_component_is_deployed(compose: Compose) -> None:
    def runs(service: dict[str, Any]) -> str:
        # A `bash <script>` command runs a script of this repository (copied into the image).
        args = command_args(service)
        scripts = [REPO_ROOT / a.removeprefix(IMAGE_SRC) for a in args if a.startswith(IMAGE_SRC)]
        text = " ".join([*args, *(p.read_text() for p in scripts if p.exists())])
        # The launcher is `airflow` with the task modules imported first.
        return text.replace("python -m vidflow.orchestration.launcher", "airflow")

    commands = " ".join(runs(s) for s in services(compose).values())
    for component in ("api-server", "scheduler", "dag-processor", "triggerer", "db migrate"):
        assert f"airflow {component}" in commands, component
    assert services(compose)["airflow-init"].get("restart") == "no", "airflow-init runs once"


def test_secrets_are_never_literal(compose: Compose) -> None:
    assert literal_secrets(compose) == []
    problems = literal_secrets(broken_compose())
    assert len(problems) == 4, problems
    assert any("REDIS_PASSWORD" in p for p in problems)
    assert any("'hunter2'" in p and "DB_URL" in p for p in problems)
    assert any("VIDFLOW_PG_PASSWORD may fall back" in p for p in problems)
    assert any("CONN" in p for p in problems)


def test_every_secret_setting_is_recognised_as_a_secret(compose: Compose) -> None:
    secret_settings = {
        f"VIDFLOW_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr
    }
    used = secret_settings & set(vidflow_variables(compose))
    assert used, "the deployment passes no secret setting at all"
    assert all(secret_like(name) for name in used), "SECRET_NAME must recognise every secret"


def test_airflow_connections_match_the_local_stack(compose: Compose) -> None:
    conns = connections(compose["x-airflow-common"])
    local = {
        key: json.loads(value)
        for key, value in airflow_connections(Settings(_env_file=None)).items()
    }
    assert set(local) <= set(conns)
    for key, conn in local.items():
        assert conns[key]["conn_type"] == conn["conn_type"], key
    aws = conns["AIRFLOW_CONN_AWS_DEFAULT"]["extra"]
    assert aws["endpoint_url"] == "http://minio:9000"
    assert aws["service_config"]["sqs"]["endpoint_url"].startswith("http://elasticmq:")
    spark = conns["AIRFLOW_CONN_SPARK_DEFAULT"]
    assert f"{spark['host']}:{spark['port']}" == render(
        environment_of(compose["x-airflow-common"])["VIDFLOW_SPARK_MASTER"] or ""
    )
    with pytest.raises(json.JSONDecodeError):
        connections({"environment": {"AIRFLOW_CONN_BROKEN": '{"conn_type": aws}'}})


def test_config_files_mounted_from_the_repository_exist(compose: Compose) -> None:
    assert missing_bind_sources(compose, REPO_ROOT) == []
    assert missing_image_files(compose, REPO_ROOT) == []
    assert missing_bind_sources(broken_compose(), REPO_ROOT) == ["worker: ./no/such/file.conf"]
    assert missing_image_files(broken_compose(), REPO_ROOT) == [
        "no-test: /opt/vidflow/src/infra/compose/no-such-script.sh"
    ]


def test_databases_and_queue_match_the_settings(compose: Compose) -> None:
    fields = Settings.model_fields
    postgres = environment_of(services(compose)["postgres"])
    assert postgres["POSTGRES_DB"] == fields["pg_catalog_db"].default
    init_sql = (COMPOSE_CONFIG_DIR / "postgres" / "init-databases.sql").read_text()
    created = re.findall(r"^CREATE DATABASE (\w+);", init_sql, flags=re.MULTILINE)
    assert sorted(created) == sorted(
        [fields["pg_airflow_db"].default, fields["pg_mlflow_db"].default]
    )
    queue = env_map(compose["x-vidflow-env"])["VIDFLOW_PROCESSING_QUEUE"]
    assert queue == fields["processing_queue"].default
    elasticmq = (COMPOSE_CONFIG_DIR / "elasticmq" / "elasticmq.conf").read_text()
    assert re.search(rf"^\s*{re.escape(queue or '')}\s*\{{", elasticmq, flags=re.MULTILINE)


def test_images_match_the_pinned_versions(compose: Compose) -> None:
    pins = dict(
        line.split("==", 1)
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for name in ("spark-master", "spark-worker"):
        image = services(compose)[name]["image"]
        assert image.startswith(f"apache/spark:{pins['pyspark']}-"), (name, image)
    base = re.search(r"^FROM apache/airflow:(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert base and base[1] == f"{pins['apache-airflow']}-python3.11"
    postgres_major = services(compose)["postgres"]["image"].split(":")[1].split(".")[0]
    assert postgres_major == "15"


def test_the_dockerfile_builds_the_platform_image() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install .*-r \S*requirements\.txt", text)
    assert re.search(r"pip install .*--no-deps -e \S+", text)
    assert re.search(r"apt-get install .*\bffmpeg\b", text)
    assert "JAVA_HOME" in text and "17" in text
    assert f"COPY --chown=airflow:0 . {IMAGE_SRC.rstrip('/')}" in text
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".local", ".git"} <= set(ignored), "secrets and local state stay out"


def python_modules_run(compose: Compose) -> dict[str, str]:
    """Service -> the ``python -m MODULE`` its command runs (services that run one)."""
    found = {}
    for name, service in services(compose).items():
        command = service.get("command") or []
        if isinstance(command, list) and command[:2] == ["python", "-m"]:
            found[name] = str(command[2])
    return found


def test_http_services_run_modules_that_exist(compose: Compose) -> None:
    """The API services run the same entry points as the local stack; a renamed or
    never-built module (``vidflow.serving.app``) would only fail at deploy time."""
    import importlib.util

    modules = python_modules_run(compose)
    assert {"upload-api": "vidflow.uploads", "viewer-api": "vidflow.viewer"}.items() <= (
        modules.items()
    )
    for name, module in modules.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None, (name, module)
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, (name, module)
    broken = {"services": {"api": {"command": ["python", "-m", "vidflow.nothing_here"]}}}
    assert python_modules_run(broken) == {"api": "vidflow.nothing_here"}
    assert importlib.util.find_spec("vidflow.nothing_here") is None
