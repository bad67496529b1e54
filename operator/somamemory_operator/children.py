"""Apply rendered children idempotently, and record Kubernetes Events about the owner."""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from typing import Any

from .constants import ANNOTATION_LAST_APPLIED, API_VERSION, KIND, MANAGER
from .kube import ApiError, Kube

logger = logging.getLogger(__name__)


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` is present with the same value in ``live``.

    Fields the server adds (defaults, status, resourceVersion) are ignored; lists must have the
    same length and match item by item.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


# Never removed even when no longer rendered: with autoscaling on, the HPA owns the count, and
# removing it would reset the Deployment to one replica until the HPA scales it back.
_KEEP = {("spec", "replicas")}


def _removals(previous: Any, desired: Any, live: Any, path: tuple[str, ...] = ()) -> dict[str, Any]:
    """A merge patch (``null`` values) dropping what was applied before and is no longer wanted."""
    out: dict[str, Any] = {}
    if not (isinstance(previous, dict) and isinstance(desired, dict) and isinstance(live, dict)):
        return out
    for key, before in previous.items():
        where = (*path, key)
        if key not in live or where in _KEEP:
            continue
        if key not in desired:
            out[key] = None
        elif sub := _removals(before, desired[key], live[key], where):
            out[key] = sub
    return out


def _merge(patch: dict[str, Any], removals: dict[str, Any]) -> dict[str, Any]:
    out = dict(patch)
    for key, value in removals.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) else value
    return out


def _record(desired: dict[str, Any]) -> dict[str, Any]:
    """``desired`` with its own copy kept in an annotation, for the next three-way merge."""
    body = {k: v for k, v in desired.items() if k != "status"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    meta = dict(body["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION_LAST_APPLIED: text}
    return {**body, "metadata": meta}


def ensure(kube: Kube, desired: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """Create the child, or patch it back to ``desired``; return what was done and the object.

    A three-way merge, as ``kubectl apply`` does: fields the operator applied before and no
    longer renders are removed, fields that others (the API server, an HPA, ``kubectl rollout
    restart``) set are left alone. A ConfigMap's ``data`` is the operator's whole: any key not
    rendered goes, so a setting removed from the spec leaves the pods."""
    meta = desired["metadata"]
    kind, namespace, name = desired["kind"], meta["namespace"], meta["name"]
    body = _record(desired)
    live = kube.get(kind, namespace, name)
    if live is None:
        try:
            created = kube.create(body)
        except ApiError as exc:
            if exc.status != 409:  # 409: created meanwhile by another reconcile; patch next time
                raise
            created = None
        logger.info("%s %s/%s created", kind, namespace, name)
        return "created", created
    annotations = live.get("metadata", {}).get("annotations") or {}
    try:
        previous = json.loads(annotations.get(ANNOTATION_LAST_APPLIED) or "{}")
    except ValueError:
        previous = {}
    if kind == "ConfigMap":
        previous["data"] = live.get("data") or {}
    removals = _removals(previous, body, live)
    if contains(live, body) and not removals:
        return "unchanged", live
    patched = kube.patch(kind, namespace, name, _merge(body, removals))
    logger.info("%s %s/%s updated", kind, namespace, name)
    return "updated", patched


def _create_only(kube: Kube, desired: dict[str, Any]) -> str:
    """Create the child if it is missing; never patch it (a claim's spec is immutable)."""
    meta = desired["metadata"]
    if kube.get(desired["kind"], meta["namespace"], meta["name"]) is not None:
        return "unchanged"
    return ensure(kube, desired)[0]


def apply(
    kube: Kube, owner: dict[str, Any], manifest: dict[str, Any], create_only: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """Ensure one child and post an Event about the owner when anything was done."""
    if create_only:
        action, live = _create_only(kube, manifest), None
    else:
        action, live = ensure(kube, manifest)
    if action != "unchanged":
        kind = manifest["kind"]
        record_event(
            kube,
            owner,
            "Normal",
            f"{kind}{action.capitalize()}",
            f"{kind} {manifest['metadata']['name']} {action}",
        )
    return action, live


def remove(kube: Kube, kind: str, namespace: str, name: str) -> bool:
    """Delete a child that the spec no longer asks for (e.g. autoscaling turned off)."""
    live = kube.get(kind, namespace, name)
    if live is None or not _owned_by_us(live):
        return False
    kube.delete(kind, namespace, name)
    logger.info("%s %s/%s deleted", kind, namespace, name)
    return True


def _owned_by_us(obj: dict[str, Any]) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("kind") == KIND and ref.get("controller") for ref in refs)


def record_event(kube: Kube, owner: dict[str, Any], kind: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about the SomaMemory (``kubectl describe smem`` shows them)."""
    meta = owner["metadata"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": MANAGER},
        "reportingComponent": MANAGER,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        kube.create(event)
    except ApiError as exc:  # an event is best effort: never fail a reconcile for it
        logger.warning("could not post event %s for %s: %s", reason, meta["name"], exc)
