"""The README's first command, run literally in a fresh virtualenv on a copy of the repository.

No extras, no SOMA_* variables but the port, no torch: the service starts on its embedded
default and recalls by meaning (a paraphrase sharing no word with the stored text comes first).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import free_port
from ..serve import postmasters

ROOT = Path(__file__).resolve().parents[2]

MEMORIES = {
    "1": "The user prefers green tea in the morning.",
    "2": "The quarterly tax filing is due in April.",
    "3": "Our dog Biscuit loves running on the beach.",
    "4": "The deployment pipeline broke on the staging cluster.",
}
PARAPHRASE = ("what hot drink does she like at breakfast", "1.0")


def readme_command(number: int) -> str:
    """The README's n-th command: the n-th ```bash block under '## Two commands'."""
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return blocks[number - 1].strip()


README = (ROOT / "README.md").read_text()


def _copy_of_the_checkout(target: Path) -> None:
    """The files a fresh clone would have, as they are in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())


@pytest.fixture(scope="module")
def first_contact(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """README command 1 running: (base URL, the checkout copy, the virtualenv)."""
    base = tmp_path_factory.mktemp("newcomer")
    checkout, venv = base / "somamemory", base / "venv"
    _copy_of_the_checkout(checkout)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOMA_", "POSTGRES_", "REDIS_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        SOMA_PORT=str(port),  # the command as written, on a port of the test's own
    )
    log = (base / "first-contact.log").open("w")
    process = subprocess.Popen(
        ["bash", "-c", readme_command(1)],
        cwd=checkout,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # a cold pip cache downloads every wheel
        while True:
            output = Path(log.name).read_text()
            assert process.poll() is None, output[-5000:]
            assert time.monotonic() < deadline, output[-5000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url, checkout, venv
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
        for proc in postmasters(checkout / ".somamemory" / "postgres"):
            proc.terminate()


def test_readme_command_one_starts_without_alarming_output(
    first_contact: tuple[str, Path, Path],
) -> None:
    """A newcomer reads what the command prints: the token, the service's own lines. The
    embedded default is the intended way to run, so nothing there warns, and no dependency
    prints exception text or a warning that looks like a failure (faiss's search for
    CPU-specific builds it lacks, platformdirs' missing runtime directory)."""
    _, checkout, _ = first_contact
    output = (checkout.parent / "first-contact.log").read_text()
    started = output[output.index("Waiting for application startup") :]
    for alarming in ("Traceback", "Error(", "Warning:", "WARNING", "ERROR"):
        assert alarming not in started, started


def _auth(checkout: Path) -> dict[str, str]:
    token = (checkout / ".somamemory" / "api_token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def test_readme_command_one_installs_no_torch(first_contact: tuple[str, Path, Path]) -> None:
    _, _, venv = first_contact
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True
    )
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr


def test_readme_command_one_serves_the_local_model(first_contact: tuple[str, Path, Path]) -> None:
    url, checkout, _ = first_contact
    health = httpx.get(f"{url}/health", headers=_auth(checkout)).json()
    assert health["embedder"]["kind"] == "onnx", health["embedder"]
    assert health["embedder"]["model"] == "all-MiniLM-L6-v2"
    assert health["backends"]["postgres"]["kind"] == "embedded"


def test_readme_command_one_recalls_by_meaning(first_contact: tuple[str, Path, Path]) -> None:
    url, checkout, _ = first_contact
    headers = _auth(checkout)
    for coord, text in MEMORIES.items():
        body = {"coord": coord, "payload": {"text": text}}
        assert httpx.post(f"{url}/memories", json=body, headers=headers).status_code == 200
    query, expected = PARAPHRASE
    shared = set(query.lower().split()) & set(MEMORIES["1"].lower().rstrip(".").split())
    assert shared == set(), f"the paraphrase must share no word with the memory: {shared}"
    hits = httpx.post(
        f"{url}/memories/search", json={"query": query, "top_k": 4}, headers=headers
    ).json()["memories"]
    assert hits[0]["coord"] == expected, hits
