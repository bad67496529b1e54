"""The README's Python client example, run as written against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ..serve import Serve
from .conftest import TOKEN

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_example() -> str:
    section = README.split("## Python client", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section shows one example"
    return blocks[0]


def test_the_readme_example_runs_as_written(live: Serve, namespace: str) -> None:
    env = {**os.environ, "SOMA_URL": live.url, "SOMA_API_TOKEN": TOKEN, "SOMA_NAMESPACE": namespace}
    run = subprocess.run(
        [sys.executable, "-c", readme_example()], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "1"  # the first version
    assert lines[1].startswith("1.0,2.0,3.0 ") and "the user prefers tea" in lines[1]
    assert lines[2:] == [
        "[1]",
        "True",
        f"404 no memory at coordinate 1.0,2.0,3.0 in namespace {namespace!r}",
    ]
