"""Fixtures for the packaging tests: the Compose specification's schema, a Docker engine, images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from typing import Any

import pytest

from tests.packaging import engine

COMPOSE_WHEEL = "docker-compose==1.29.2"
COMPOSE_SCHEMA = "compose/config/compose_spec.json"


@pytest.fixture(scope="session")
def compose_spec_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Compose spec JSON schema, read from the docker-compose wheel (never installed)."""
    target = tmp_path_factory.mktemp("compose-wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            COMPOSE_WHEEL,
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    (wheel,) = target.glob("docker_compose-1.29.2-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        schema: dict[str, Any] = json.loads(archive.read(COMPOSE_SCHEMA))
    return schema


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine and docker-compose: started by scripts/docker-engine.sh when we are root.

    Without one, the tests that need it fail in CI and are skipped elsewhere, saying why.
    """
    reason = engine.ensure_engine()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI needs a Docker engine: {reason}")
    pytest.skip(f"{reason}; run scripts/docker-engine.sh as root")


@pytest.fixture(scope="session")
def service_image(docker_engine: None) -> str:
    """The service image, built once per session (`docker build .`, layer cache reused)."""
    engine.ensure_base_image()
    engine.build(engine.SERVICE_IMAGE)
    return engine.SERVICE_IMAGE


@pytest.fixture(scope="session")
def operator_image(docker_engine: None) -> str:
    """The operator image (`docker build --target operator .`)."""
    engine.ensure_base_image()
    engine.build(engine.OPERATOR_IMAGE, target="operator")
    return engine.OPERATOR_IMAGE
