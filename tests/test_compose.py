"""The Docker stack (stack/compose.yaml), checked without Docker.

Each rule is a function that returns the problems it finds, so the same function is run on the
real compose file (must find none) and on a deliberately broken one (must find each problem).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from course.pins import read_pins
from course.settings import PROJECT_ROOT, load_settings
from course.stack.airflow import airflow_environment
from course.stack.docker import COMPOSE_FILE, COMPOSE_SERVICES

STACK = PROJECT_ROOT / "stack"
SCHEMA = STACK / "compose-spec.schema.json"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
AIRFLOW_DOCKERFILE = STACK / "airflow" / "Dockerfile"
# What the Airflow image must install, each at the lock's version.
AIRFLOW_IMAGE_PACKAGES = {
    "apache-airflow",
    "astronomer-cosmos",
    "dbt-core",
    "dbt-clickhouse",
    "clickhouse-connect",
    "psycopg",
    "psycopg-binary",
    "lz4",
    "zstandard",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
ONE_SHOT_RESTARTS = {None, "no", "on-failure"}


# -- reading ---------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, str]:
    """The variables .env.example sets (NAME=value lines), with their example values."""
    names = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
        if match:
            names[match[1]] = match[2]
    return names


_REFERENCE = re.compile(
    r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def strings(node: Any):
    """Every string in a loaded YAML document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def variables(compose: dict[str, Any]) -> set[str]:
    """The ${VAR} names compose interpolates (`$$` is a literal dollar, not a variable)."""
    names = set()
    for text in strings(compose):
        for match in _REFERENCE.finditer(text.replace("$$", "")):
            names.add(match["name"] or match["bare"])
    return names


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation for the forms the file uses: $VAR, ${VAR}, ${VAR:-x}, ${VAR:?msg}."""

    def one(match: re.Match) -> str:
        name = match["name"] or match["bare"]
        value = env.get(name)
        if match["op"] in (":-", "-"):
            unset = value is None or (match["op"] == ":-" and value == "")
            return match["arg"] if unset else value
        if match["op"] in (":?", "?"):
            if value is None or (match["op"] == ":?" and value == ""):
                raise ValueError(f"required variable {name} is missing a value: {match['arg']}")
            return value
        return value or ""

    parts = text.split("$$")
    return "$".join(_REFERENCE.sub(one, part) for part in parts)


def bind_or_named(volume: Any) -> tuple[str, str | None, str]:
    """(kind, source, target) of a service volume: kind is bind, volume, anonymous or tmpfs."""
    if isinstance(volume, dict):
        kind, source, target = volume.get("type", "volume"), volume.get("source"), volume["target"]
        if kind == "volume" and not source:
            kind = "anonymous"
        return kind, source, target
    parts = volume.split(":")
    if len(parts) == 1:
        return "anonymous", None, parts[0]
    source, target = parts[0], parts[1]
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    return kind, source, target


def dockerfile_bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile builds FROM (not its own earlier stages)."""
    bases, stages = [], set()
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            words = [w for w in words[1:] if not w.startswith("--")]
            if words[0] not in stages and words[0] != "scratch":
                bases.append(words[0])
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2])
    return bases


def dockerfile_pins(text: str) -> dict[str, str]:
    """`name==version` pins in a Dockerfile's commands (comments skipped), names lower case."""
    pins = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for name, version in re.findall(
            r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\]+)", line
        ):
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def service_dockerfile(service: dict[str, Any], root: Path = PROJECT_ROOT) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return root / build / "Dockerfile"
    return root / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


# -- the rules ---------------------------------------------------------------------------------


def schema_errors(compose: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(compose)
    ]


def image_is_pinned(reference: str) -> bool:
    """True for name:VERSION (a tag that starts with major.minor) or name@sha256:..."""
    if "@sha256:" in reference:
        return True
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no tag at all (a colon, if any, was a registry port)
        return False
    return re.match(r"v?\d+\.\d+", tag) is not None


def unpinned_images(compose: dict[str, Any], root: Path = PROJECT_ROOT) -> list[str]:
    problems = []
    for name, service in compose.get("services", {}).items():
        if "build" in service:
            dockerfile = service_dockerfile(service, root)
            if not dockerfile.exists():
                problems.append(f"{name}: {dockerfile} does not exist")
                continue
            problems += [
                f"{name}: {dockerfile.name} is FROM {base}, not a pinned version"
                for base in dockerfile_bases(dockerfile)
                if not image_is_pinned(base)
            ]
            image = service.get("image", "")
            if image and (":" not in image or image.endswith(":latest")):
                problems.append(f"{name}: the built image {image!r} needs a tag other than latest")
        elif not image_is_pinned(service.get("image", "")):
            problems.append(f"{name}: image {service.get('image')!r} is not pinned to a version")
    return problems


def unsafe_ports(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in compose.get("services", {}).items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:  # "[HOST_IP:]PUBLISHED:TARGET[/PROTOCOL]", with variables at their defaults
                fields = interpolate(str(port), {}).split("/")[0].split(":")
                host_ip = fields[0] if len(fields) == 3 else None
            if host_ip != "127.0.0.1":
                problems.append(f"{name}: port {port!r} does not bind 127.0.0.1")
    return problems


def one_shot_jobs(compose: dict[str, Any]) -> set[str]:
    """Services that others wait for with service_completed_successfully."""
    return {
        dependency
        for service in compose.get("services", {}).values()
        if isinstance(service.get("depends_on"), dict)
        for dependency, spec in service["depends_on"].items()
        if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully"
    }


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and test not in (["NONE"], "NONE")


def services_without_health(compose: dict[str, Any]) -> list[str]:
    jobs = one_shot_jobs(compose)
    problems = []
    for name, service in compose.get("services", {}).items():
        if name in jobs:
            if service.get("restart") not in ONE_SHOT_RESTARTS:
                problems.append(
                    f"{name}: a one-shot job must not restart ({service.get('restart')!r})"
                )
        elif not has_healthcheck(service):
            problems.append(f"{name}: no healthcheck, and no service waits for it to complete")
    return problems


def unconditional_dependencies(compose: dict[str, Any]) -> list[str]:
    services = compose.get("services", {})
    problems = []
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        if not isinstance(depends_on, dict):
            problems.append(f"{name}: depends_on is a list; give each dependency a condition")
            continue
        for dependency, spec in depends_on.items():
            condition = spec.get("condition") if isinstance(spec, dict) else None
            if condition not in CONDITIONS:
                problems.append(f"{name}: depends_on {dependency} has no condition")
            elif dependency not in services:
                problems.append(f"{name}: depends_on {dependency}, which is not a service")
            elif condition == "service_healthy" and not has_healthcheck(services[dependency]):
                problems.append(
                    f"{name}: waits for {dependency} to be healthy, which has no healthcheck"
                )
    return problems


def undocumented_variables(compose: dict[str, Any], documented: set[str]) -> list[str]:
    return [
        f"${{{name}}} is used by the compose file but not set in .env.example"
        for name in sorted(variables(compose) - documented)
    ]


def unnamed_volumes(compose: dict[str, Any]) -> list[str]:
    """Data lives in named volumes; host paths only for the repository's own folders."""
    declared = set(compose.get("volumes") or {})
    problems = []
    for name, service in compose.get("services", {}).items():
        for volume in service.get("volumes", []):
            kind, source, target = bind_or_named(volume)
            if kind == "anonymous":
                problems.append(f"{name}: {target} is an anonymous volume; name it")
            elif kind == "volume" and source not in declared:
                problems.append(f"{name}: volume {source} is not declared under volumes:")
            elif kind == "bind":
                inside_repo = source == "." or (source.startswith("./") and ".." not in source)
                if not inside_repo:
                    problems.append(f"{name}: {source} is a host path; use a named volume")
                elif target.startswith("/var/lib/"):
                    problems.append(
                        f"{name}: data folder {target} is a bind mount; use a named volume"
                    )
    return problems


def dockerfile_pin_mismatches(text: str, lock: dict[str, str]) -> list[str]:
    problems = []
    for name, version in sorted(dockerfile_pins(text).items()):
        if lock.get(name) != version:
            problems.append(
                f"{name}=={version} in the Dockerfile, "
                f"{lock.get(name, 'nothing')} in requirements.lock"
            )
    return problems


# -- the real compose file -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_compose_file_is_valid_against_the_compose_specification(compose):
    assert schema_errors(compose) == []


def test_every_image_is_pinned_to_a_version(compose):
    assert unpinned_images(compose) == []


def test_every_published_port_binds_loopback_only(compose):
    assert unsafe_ports(compose) == []
    assert any(service.get("ports") for service in compose["services"].values())


def test_every_service_has_a_healthcheck_or_is_a_one_shot_job(compose):
    assert services_without_health(compose) == []
    assert one_shot_jobs(compose) == {"airflow-init"}


def test_every_dependency_has_a_condition(compose):
    assert unconditional_dependencies(compose) == []


def test_every_variable_is_in_env_example(compose):
    assert undocumented_variables(compose, set(env_example())) == []
    assert "AIRFLOW_ADMIN_PASSWORD" in variables(compose)


def test_volumes_are_named_and_binds_stay_in_the_repository(compose):
    assert unnamed_volumes(compose) == []


def test_airflow_image_installs_the_lock_versions():
    text = AIRFLOW_DOCKERFILE.read_text()
    lock = read_pins()
    assert dockerfile_pin_mismatches(text, lock) == []
    assert set(dockerfile_pins(text)) >= AIRFLOW_IMAGE_PACKAGES, "a package is not pinned"
    (base,) = dockerfile_bases(AIRFLOW_DOCKERFILE)
    assert base == f"apache/airflow:{lock['apache-airflow']}-python3.11"


def test_jupyter_image_installs_the_lock():
    text = (STACK / "jupyter" / "Dockerfile").read_text()
    assert "-r /tmp/requirements.lock" in text
    assert dockerfile_bases(STACK / "jupyter" / "Dockerfile")[0].startswith("python:3.11.")


def test_the_cli_finds_every_compose_service_it_names(compose):
    services = compose["services"]
    for names in COMPOSE_SERVICES.values():
        for name in names:
            assert name in services, f"course/stack/docker.py names {name}"
    for name, service in services.items():
        expected = ["jupyter"] if name == "jupyter" else None
        assert service.get("profiles") == expected, name


def test_files_the_stack_mounts_or_copies_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            kind, source, _ = bind_or_named(volume)
            if kind == "bind" and source.startswith("./stack"):
                assert (PROJECT_ROOT / source).exists(), f"{name}: {source}"
        if "build" in service:
            dockerfile = service_dockerfile(service)
            context = PROJECT_ROOT / service["build"]["context"]
            ignore = Path(f"{dockerfile}.dockerignore")
            assert ignore.exists(), "the context is the repository: keep .venv etc. out"
            let_in = [
                line[1:].rstrip("/")
                for line in ignore.read_text().splitlines()
                if line.startswith("!")
            ]
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY "):
                    source = line.split()[-2]
                    assert (context / source).exists(), f"{dockerfile}: {line}"
                    assert any(source == p or source.startswith(p + "/") for p in let_in), (
                        f"{ignore.name} keeps {source} out of the build"
                    )
    for folder in ("clickhouse/init", "postgres/init"):
        assert (STACK / folder).is_dir(), folder


def test_clickhouse_config_is_xml_and_keeps_the_password_out_of_files():
    files = sorted((STACK / "clickhouse").glob("*.d/*.xml"))
    assert files
    for path in files:
        ElementTree.parse(path)  # well-formed
    user = ElementTree.parse(STACK / "clickhouse" / "users.d" / "course-user.xml").getroot()
    (password,) = user.iter("password")
    assert password.get("from_env") == "CLICKHOUSE_PASSWORD" and not (password.text or "").strip()
    assert "__CLICKHOUSE_USER__" in (STACK / "clickhouse" / "entrypoint.sh").read_text()


def test_airflow_gets_the_embedded_config_names_with_container_hosts(compose):
    env = env_example()
    settings = load_settings(env=env, env_file=ENV_EXAMPLE)
    embedded = airflow_environment(settings)
    common = compose["x-airflow-common"]["environment"]
    assert set(embedded) <= set(common), set(embedded) - set(common)
    for service in (
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        assert set(common) <= set(compose["services"][service]["environment"]), service

    hosts = {
        "AIRFLOW_CONN_CLICKHOUSE_DEFAULT": ("clickhouse", 8123),
        "AIRFLOW_CONN_POSTGRES_SOURCE": ("postgres", 5432),
    }
    for variable, (host, port) in hosts.items():
        theirs = json.loads(embedded[variable])
        ours = json.loads(interpolate(common[variable], env))
        assert set(ours) == set(theirs), variable
        assert (ours["host"], ours["port"]) == (host, port)
        assert {k: v for k, v in ours.items() if k not in ("host", "port")} == {
            k: v for k, v in theirs.items() if k not in ("host", "port")
        }, variable
    assert common["CLICKHOUSE_HOST"] == "clickhouse" and common["POSTGRES_HOST"] == "postgres"
    binds = [v for v in compose["x-airflow-common"]["volumes"] if v.startswith("./")]
    assert binds and all(v.endswith(":ro") for v in binds), "repository folders read-only"


def test_admin_password_is_required_not_defaulted(compose):
    value = compose["services"]["airflow-init"]["environment"]["AIRFLOW_ADMIN_PASSWORD"]
    with pytest.raises(ValueError, match="AIRFLOW_ADMIN_PASSWORD"):
        interpolate(value, {"AIRFLOW_ADMIN_PASSWORD": ""})
    assert interpolate(value, {"AIRFLOW_ADMIN_PASSWORD": "s3cret"}) == "s3cret"


def test_docker_compose_accepts_the_file_when_installed():
    """The real parser, where this machine has it (no engine is needed for `config`)."""
    docker = shutil.which("docker")
    if (
        not docker
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0
    ):
        pytest.skip("docker compose is not installed here")
    # The settings from .env.example alone: none of this shell's own, nor a COMPOSE_* override.
    example = env_example()
    env = {k: v for k, v in os.environ.items() if k not in example and not k.startswith("COMPOSE_")}
    env["AIRFLOW_ADMIN_PASSWORD"] = "check"
    result = subprocess.run(
        [
            docker,
            "compose",
            "-f",
            str(COMPOSE_FILE),
            "--project-directory",
            str(PROJECT_ROOT),
            "--env-file",
            str(ENV_EXAMPLE),
            "--profile",
            "jupyter",
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr


# -- the rules can fail ---------------------------------------------------------------------

BROKEN = {
    "services": {
        "web": {
            "image": "nginx",
            "ports": ["8080:80", {"target": 443, "published": "8443", "host_ip": "0.0.0.0"}],
            "depends_on": ["db"],
            "volumes": ["/srv/web:/usr/share/nginx/html", "/cache"],
            "environment": {"TOKEN": "${UNDOCUMENTED_TOKEN:-x}"},
        },
        "db": {
            "image": "postgres:latest",
            "ports": ["127.0.0.1:5432:5432"],
            "volumes": ["undeclared:/var/lib/postgresql", "./pgdata:/var/lib/postgresql/x"],
            "healthcheck": {"test": ["CMD", "pg_isready"]},
        },
        "migrate": {
            "image": "postgres:18.6",
            "restart": "always",
        },
        "app": {
            "image": "example/app:1.0",
            "healthcheck": {"disable": True},
            "depends_on": {
                "db": {"condition": "service_healthy"},
                "web": {},
                "migrate": {"condition": "service_completed_successfully"},
                "ghost": {"condition": "service_started"},
            },
        },
    },
    "volumes": {},
}


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (unpinned_images, ["web: image 'nginx'", "db: image 'postgres:latest'"]),
        (unsafe_ports, ["web: port '8080:80'", "web: port {'target': 443"]),
        (
            services_without_health,
            [
                "web: no healthcheck",
                "app: no healthcheck",
                "migrate: a one-shot job must not restart",
            ],
        ),
        (
            unconditional_dependencies,
            ["web: depends_on is a list", "app: depends_on web", "app: depends_on ghost"],
        ),
        (
            unnamed_volumes,
            [
                "web: /srv/web is a host path",
                "web: /cache is an anonymous volume",
                "db: volume undeclared",
                "db: data folder /var/lib/postgresql/x",
            ],
        ),
    ],
)
def test_each_rule_reports_a_broken_compose_file(check, expected):
    problems = check(BROKEN)
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert not any(p.startswith("db: port") for p in problems)


def test_variable_rule_reports_an_undocumented_variable():
    problems = undocumented_variables(BROKEN, set(env_example()))
    assert problems == [
        "${UNDOCUMENTED_TOKEN} is used by the compose file but not set in .env.example"
    ]
    assert variables({"x": "$${NOT_A_VARIABLE} $$(hostname) $BARE"}) == {"BARE"}


def test_schema_rule_reports_an_invalid_compose_file():
    problems = schema_errors({"services": {"web": {"image": 5, "portz": ["80"]}}})
    assert any("services/web/image" in p for p in problems), problems
    assert any("portz" in p for p in problems), problems


def test_pinned_image_rule_reports_a_built_image_from_an_unpinned_base(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11.15-slim AS base\nFROM base\nFROM python:3-slim\nFROM debian\n"
    )
    compose = {"services": {"x": {"build": {"context": "."}, "image": "x"}}}
    problems = unpinned_images(compose, root=tmp_path)
    assert problems == [
        "x: Dockerfile is FROM python:3-slim, not a pinned version",
        "x: Dockerfile is FROM debian, not a pinned version",
        "x: the built image 'x' needs a tag other than latest",
    ]
    assert image_is_pinned("postgres:18.6") and image_is_pinned("a/b@sha256:0123")
    assert not image_is_pinned("localhost:5000/app") and not image_is_pinned("app:latest")


def test_pin_rule_reports_a_version_that_is_not_the_locks():
    lock = read_pins()
    text = (
        "# pip install dbt-core==0.0.1 (a comment)\n"
        "RUN pip install dbt-core==1.0.0 \\\n    psycopg[binary]==3.3.9 not-in-lock==1\n"
    )
    assert dockerfile_pin_mismatches(text, lock) == [
        f"dbt-core==1.0.0 in the Dockerfile, {lock['dbt-core']} in requirements.lock",
        "not-in-lock==1 in the Dockerfile, nothing in requirements.lock",
    ]
