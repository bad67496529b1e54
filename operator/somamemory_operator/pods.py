"""What pods say when they cannot run, turned into messages a person can act on.

The kubelet reports a missing Secret or ConfigMap, an image it cannot pull and a crash loop
in each container's ``waiting`` state, and an unschedulable pod in its ``PodScheduled``
condition. The operator reads these instead of Secrets themselves: it needs no right to read
Secrets, and it reports exactly what the pods meet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Spec = dict[str, Any]

_IMAGE = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_MISSING = re.compile(r'^(secret|configmap) "([^"]+)" not found', re.IGNORECASE)
_MISSING_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) [^/\s]+/(\S+)")


@dataclass(frozen=True)
class PodProblem:
    """One reason pods do not run. ``stalled``: nothing changes until a person acts."""

    reason: str
    message: str
    stalled: bool = True


def named_refs(spec: Spec) -> dict[tuple[str, str], list[str]]:
    """(kind, name) of every Secret and ConfigMap the spec names -> the fields naming it."""
    refs: dict[tuple[str, str], list[str]] = {}

    def add(kind: str, ref: dict[str, Any] | None, where: str) -> None:
        if ref and ref.get("name"):
            refs.setdefault((kind, ref["name"]), []).append(where)

    for field, path in (
        ("apiTokenSecretRef", ()),
        ("urlSecretRef", ("postgres",)),
        ("passwordSecretRef", ("redis",)),
        ("tokenSecretRef", ("milvus",)),
    ):
        parent = spec
        for step in path:
            parent = parent.get(step) or {}
        add("Secret", parent.get(field), ".".join(("spec", *path, field)))
    for index, item in enumerate(spec.get("env") or []):
        source = item.get("valueFrom") or {}
        add("Secret", source.get("secretKeyRef"), f"spec.env[{index}]")
        add("ConfigMap", source.get("configMapKeyRef"), f"spec.env[{index}]")
    return refs


def _config_problem(message: str, namespace: str, spec: Spec) -> PodProblem:
    refs = named_refs(spec)
    if match := _MISSING.match(message):
        kind = "Secret" if match.group(1).lower() == "secret" else "ConfigMap"
        name = match.group(2)
        where = ", ".join(refs.get((kind, name), [])) or "the pod"
        return PodProblem(
            f"{kind}NotFound",
            f'{kind} "{name}" (named by {where}) does not exist in namespace {namespace}: '
            "create it",
        )
    if match := _MISSING_KEY.search(message):
        key, kind, name = match.groups()
        where = ", ".join(refs.get((kind, name), [])) or "the pod"
        return PodProblem(
            f"{kind}KeyNotFound",
            f'{kind} "{name}" (named by {where}) has no key "{key}": add it or change the key',
        )
    return PodProblem("ContainerConfigError", f"the container cannot be configured: {message}")


def _container_problem(status: dict[str, Any], namespace: str, spec: Spec) -> PodProblem | None:
    waiting = (status.get("state") or {}).get("waiting") or {}
    reason, message = waiting.get("reason") or "", waiting.get("message") or ""
    if reason == "CreateContainerConfigError":
        return _config_problem(message, namespace, spec)
    if reason in _IMAGE:
        return PodProblem(
            "ImagePullFailed",
            f"image {status.get('image') or spec.get('image')} cannot be pulled ({reason}: "
            f"{message or 'no detail'}): check spec.image and spec.imagePullSecrets",
        )
    if reason == "CrashLoopBackOff":
        last = (status.get("lastState") or {}).get("terminated") or {}
        said = (last.get("message") or "").strip().splitlines()
        detail = f"exit code {last.get('exitCode', '?')}"
        if said:
            detail += f": {said[-1][:300]}"
        return PodProblem(
            "CrashLoop",
            f"container {status.get('name')} keeps crashing ({status.get('restartCount', 0)} "
            f"restarts, {detail}): see kubectl logs --previous",
        )
    if reason in ("CreateContainerError", "RunContainerError"):
        return PodProblem("ContainerCannotStart", f"{reason}: {message}")
    return None


def diagnose(pods: list[dict[str, Any]], spec: Spec) -> list[PodProblem]:
    """Every distinct problem the pods report, stalled ones first."""
    found: dict[tuple[str, str], PodProblem] = {}
    for pod in pods:
        namespace = pod.get("metadata", {}).get("namespace", "")
        status = pod.get("status") or {}
        containers = (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        )
        for container in containers:
            problem = _container_problem(container, namespace, spec)
            if problem is not None:
                found.setdefault((problem.reason, problem.message), problem)
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                problem = PodProblem(
                    "Unschedulable",
                    f"pods cannot be scheduled yet: {cond.get('message') or 'no node fits'}",
                    stalled=False,
                )
                found.setdefault((problem.reason, problem.message), problem)
    return sorted(found.values(), key=lambda p: not p.stalled)


def summary(problems: list[PodProblem]) -> str:
    """One line for a condition message: the first problem, and how many more there are."""
    first = problems[0].message
    return first if len(problems) == 1 else f"{first} (and {len(problems) - 1} more)"


def matching(pods: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The pods carrying every one of ``labels`` (selectors are also checked here)."""
    return [
        pod
        for pod in pods
        if all((pod.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in labels.items())
    ]
