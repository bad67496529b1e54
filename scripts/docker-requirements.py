"""Print requirements from pyproject.toml, one a line, for a `pip install -r` in the Dockerfile.

The image installs its dependencies before it copies the code, so that a code change rebuilds
only the last layer. By default every base dependency is printed; ``--extra NAME`` adds an
optional group; ``--only NAME`` keeps only the named base dependencies (the operator image needs
its extra plus the one base package it imports, not the service's storage stack); ``--skip NAME``
leaves a base dependency out.

    python docker-requirements.py pyproject.toml
    python docker-requirements.py pyproject.toml --extra operator --only prometheus-client
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path
from typing import Any


def distribution(requirement: str) -> str:
    """The canonical distribution name a requirement string starts with."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(
    project: dict[str, Any], extras: list[str], only: list[str], skip: list[str]
) -> list[str]:
    """Base dependencies (all, or those in ``only``, minus ``skip``), then each extra's."""
    name = distribution(project["name"])
    base: list[str] = project.get("dependencies", [])
    wanted, unwanted = {distribution(n) for n in only}, {distribution(n) for n in skip}
    missing = (wanted | unwanted) - {distribution(r) for r in base}
    if missing:  # a name that no longer matches should stop the build, not pass silently
        raise SystemExit(f"not base dependencies: {', '.join(sorted(missing))}")
    chosen = [
        r
        for r in base
        if (not wanted or distribution(r) in wanted) and distribution(r) not in unwanted
    ]
    groups: dict[str, list[str]] = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in groups:
            raise SystemExit(f"no extra named {extra!r}")
        chosen += [r for r in groups[extra] if distribution(r) != name]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=[], help="add this optional group")
    parser.add_argument("--only", action="append", default=[], help="keep this base dependency")
    parser.add_argument("--skip", action="append", default=[], help="leave out this one")
    args = parser.parse_args()
    project = tomllib.loads(args.pyproject.read_text())["project"]
    print("\n".join(requirements(project, args.extra, args.only, args.skip)))


if __name__ == "__main__":
    main()
