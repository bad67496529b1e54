"""Fixtures for the packaging tests: the repository root and the Compose specification's schema."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from typing import Any

import pytest

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
