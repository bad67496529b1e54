"""Docker from the tests: the engine, the two images, and containers that are always removed.

Containers run on the host network only (the engine has no bridge), so every service in them is
told to listen on 127.0.0.1 and on a free port. Names start with ``somamemory-test-``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.packaging.repo import ROOT

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
SERVICE_IMAGE = f"ghcr.io/somamemory/somamemory:{VERSION}"
OPERATOR_IMAGE = f"ghcr.io/somamemory/somamemory-operator:{VERSION}"
BASE_IMAGE = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)[1]  # type: ignore[index]
NAME_PREFIX = "somamemory-test-"
BUILD_TIMEOUT = 1500.0  # a first build downloads every wheel


def docker(
    *args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; a failure shows its output."""
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args[:3])} ... exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return docker("info", timeout=30, check=False).returncode == 0


def run_script(name: str, timeout: float) -> str:
    """Run one of scripts/docker-*.sh; its output, for a failure message."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return f"scripts/{name} exited {result.returncode}: {result.stderr[-2000:]}"


def ensure_engine() -> str | None:
    """None once an engine and docker-compose answer, else why not (the script runs as root)."""
    if engine_answers() and shutil.which("docker-compose"):
        return None
    if os.geteuid() != 0:
        return "no Docker engine answers (`docker info`), and starting one needs root"
    outcome = run_script("docker-engine.sh", timeout=900)
    if engine_answers() and shutil.which("docker-compose"):
        return None
    return f"no Docker engine after {outcome}"


def ensure_base_image() -> None:
    """The Dockerfile's base image: present, else the local stand-in (as root), else pulled."""
    present = docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0
    if not present and os.geteuid() == 0:
        outcome = run_script("docker-base-image.sh", timeout=900)
        present = docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0
        assert present, outcome


def build(tag: str, target: str | None = None) -> None:
    """``docker build`` of the repository (classic builder, host network, layer cache)."""
    args = ["build", "--network", "host", "-t", tag]
    if target:
        args += ["--target", target]
    docker(*args, str(ROOT), timeout=BUILD_TIMEOUT, env={"DOCKER_BUILDKIT": "0"})


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)


@dataclass
class Container:
    """One running container, known by its name."""

    name: str

    def inspect(self) -> dict[str, Any]:
        loaded: list[dict[str, Any]] = json.loads(docker("inspect", self.name).stdout)
        return loaded[0]

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *command, check=check)

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def stop(self, grace: int = 30) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        docker("stop", "-t", str(grace), self.name, timeout=grace + 30)
        return int(self.inspect()["State"]["ExitCode"])

    def process_uid(self) -> int:
        """The real uid of the container's main process (PID 1 inside it)."""
        status = self.exec("cat", "/proc/1/status").stdout
        return int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])  # type: ignore[index]


def run_args(
    image: str,
    command: Sequence[str],
    env: dict[str, str],
    volumes: Sequence[str],
    read_only: bool,
    extra: Sequence[str],
) -> list[str]:
    args = ["--network", "host"]
    if read_only:
        args += ["--read-only", "--tmpfs", "/tmp"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for volume in volumes:
        args += ["-v", volume]
    return [*args, *extra, image, *command]


@contextlib.contextmanager
def container(
    image: str,
    *command: str,
    env: dict[str, str] | None = None,
    volumes: Sequence[str] = (),
    read_only: bool = True,
    extra: Sequence[str] = (),
) -> Iterator[Container]:
    """A detached container on the host network, removed (forcibly) when the block ends."""
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
    docker(
        "run", "-d", "--name", name, *run_args(image, command, env or {}, volumes, read_only, extra)
    )
    try:
        yield Container(name)
    finally:
        docker("rm", "-f", "-v", name, check=False)


def run_to_completion(
    image: str,
    *command: str,
    env: dict[str, str] | None = None,
    volumes: Sequence[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """A one-shot container (like a migration Job): its exit code and output; always removed."""
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
    args = run_args(image, command, env or {}, volumes, read_only=True, extra=())
    try:
        return docker("run", "--name", name, *args, timeout=timeout, check=False)
    finally:
        docker("rm", "-f", "-v", name, check=False)


@contextlib.contextmanager
def volume() -> Iterator[str]:
    """A named volume, removed when the block ends."""
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
    docker("volume", "create", name)
    try:
        yield name
    finally:
        docker("volume", "rm", "-f", name, check=False)


def wait_for(box: Container, url: str, timeout: float = 120) -> httpx.Response:
    """Poll ``url`` until it answers 200; fail with the logs if the container stops first."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = exc
        if not box.running():
            raise AssertionError(f"{box.name} exited before {url} answered:\n{box.logs()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s ({last}):\n{box.logs()[-4000:]}")


def wait_until(probe: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``probe()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
