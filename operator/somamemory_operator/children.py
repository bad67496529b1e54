"""Apply rendered children idempotently, and record Kubernetes Events about the owner."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

from .constants import API_VERSION, KIND, MANAGER
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


def ensure(kube: Kube, desired: dict[str, Any]) -> str:
    """Create the child, or patch it back to ``desired``; return what was done."""
    meta = desired["metadata"]
    kind, namespace, name = desired["kind"], meta["namespace"], meta["name"]
    live = kube.get(kind, namespace, name)
    if live is None:
        try:
            kube.create(desired)
        except ApiError as exc:
            if exc.status != 409:  # 409: created meanwhile by another reconcile; patch next time
                raise
        action = "created"
    elif contains(live, desired):
        return "unchanged"
    else:
        kube.patch(kind, namespace, name, {k: v for k, v in desired.items() if k != "status"})
        action = "updated"
    logger.info("%s %s/%s %s", kind, namespace, name, action)
    return action


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
