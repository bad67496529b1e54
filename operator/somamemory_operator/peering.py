"""High availability through kopf's peering: replicas meet in a ClusterKopfPeering (or, for an
operator limited to namespaces, a KopfPeering in each) and only the highest priority one works;
the others stay paused, their daemons stopped, until it is gone.

kopf pauses *every* operator that sees a peer of the same priority, so replicas of one
Deployment (one command line) must not share one. The priority is the operator's seniority:
the replica started first outranks later ones, so a rolling update's new pod waits until the old
one has left (it removes itself from the peering as it exits; a crashed one expires after
``settings.peering.lifetime`` seconds). A random last digit separates replicas started within
the same millisecond.

Peering is not a lock: replicas that start in the same instant may both act until each has
seen the other's first keep-alive (a fraction of a second). Reconciles are idempotent and
level-based, so such an overlap costs a repeated write at worst; in steady state, and whenever
a replica joins or leaves a running one, exactly one reconciles.
"""

from __future__ import annotations

import random
import time

_END_OF_TIME = 4_102_444_800  # 2100-01-01 (s): priorities stay positive, below 2**53, until then


def seniority_priority(started: float | None = None, tie_breaker: int | None = None) -> int:
    """Higher for an operator started earlier; three random digits break exact ties."""
    started = time.time() if started is None else started
    tie_breaker = random.randrange(1000) if tie_breaker is None else tie_breaker
    return int((_END_OF_TIME - started) * 1000) * 1000 + tie_breaker
