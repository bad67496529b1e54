"""The operator watches itself: Prometheus metrics, kopf's liveness endpoint, one log line per
action. Same in-process operator as the lifecycle tests (see conftest.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.operator.test_operator_lifecycle import (
    NAME,
    _create,
    _finish_job,
    _job,
    _ns,
    _phase_is,
    _roll_out,
    _spec,
)

if TYPE_CHECKING:
    from conftest import Operator

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECONCILES = "somamemory_operator_reconciles"
RECONCILE_SECONDS = "somamemory_operator_reconcile_seconds"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(url: str) -> tuple[int, str] | None:
    """Status and body of a GET, or None while nothing answers on the port yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()
    except (ConnectionError, urllib.error.URLError):
        return None


async def _scrape(operator: Operator) -> tuple[set[str], Samples]:
    answer = await operator.eventually(
        lambda: asyncio.to_thread(_get, operator.metrics_url), "the metrics endpoint"
    )
    status, text = answer
    assert status == 200, text
    families = list(text_string_to_metric_families(text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return {f.name for f in families}, samples


async def test_metrics_endpoint_names_the_metrics_and_counts_reconciles(
    operator: Operator,
) -> None:
    names, before = await _scrape(operator)
    assert {RECONCILES, RECONCILE_SECONDS} <= names
    migrating = (f"{RECONCILES}_total", (("phase", "Migrating"),))
    timed = (f"{RECONCILE_SECONDS}_count", ())

    ns = _ns()
    await _create(operator, ns, _spec())
    await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "Migrating")

    async def counted() -> Samples | None:
        _, after = await _scrape(operator)
        moved = after.get(migrating, 0) > before.get(migrating, 0)
        return after if moved and after[timed] > before.get(timed, 0) else None

    after = await operator.eventually(counted, "the reconcile counters to move")
    assert after[(f"{RECONCILE_SECONDS}_sum", ())] > before.get((f"{RECONCILE_SECONDS}_sum", ()), 0)


async def test_liveness_endpoint_answers_while_the_operator_runs(operator: Operator) -> None:
    answer = await operator.eventually(
        lambda: asyncio.to_thread(_get, operator.liveness_url), "kopf's liveness endpoint"
    )
    status, body = answer
    assert status == 200, body
    probes = json.loads(body)
    assert isinstance(probes["somamemories"], int)  # our probe: running reconcile loops


def _lines(caplog: pytest.LogCaptureFixture, ns: str) -> list[str]:
    return [
        record.getMessage()
        for record in list(caplog.records)  # the operator thread appends meanwhile
        if record.name.startswith("somamemory_operator") and f" {ns}/" in record.getMessage()
    ]


async def test_each_action_is_logged_once_on_one_line(
    operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="somamemory_operator")
    ns = _ns()
    await _create(operator, ns, _spec())
    job_name = (await _job(operator, ns))["metadata"]["name"]
    await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "Migrating")
    await _finish_job(operator, ns, job_name)
    await operator.eventually(lambda: _phase_is(operator, ns, "Deploying"), "Deploying")
    await _roll_out(operator, ns)
    await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready")
    # Drift that the next reconcile repairs; the phase (read from the Deployment) stays Ready.
    await operator.patch("ConfigMap", ns, NAME, {"data": {"SOMA_BATCH_SIZE": "1"}})
    expected = [
        f"ConfigMap {ns}/{NAME} created",
        f"Job {ns}/{job_name} created",
        f"Deployment {ns}/{NAME} created",
        f"Service {ns}/{NAME} created",
        f"ConfigMap {ns}/{NAME} updated",
    ]
    phases = [f"SomaMemory {ns}/{NAME} is {phase}: " for phase in ("Migrating", "Deploying")]
    phases.append(f"SomaMemory {ns}/{NAME} is Ready: 2 replicas of ")

    def all_logged() -> list[str] | None:
        lines = _lines(caplog, ns)
        found = set(expected) <= set(lines)
        return lines if found and all(any(s.startswith(p) for s in lines) for p in phases) else None

    # Reconciles after Ready (woken by the status writes and the drift) walked every step again
    # and took no action there, so they must have logged nothing but the repair.
    lines = await operator.eventually(all_logged, "a log line for every action")
    assert all("\n" not in line for line in lines), lines
    for line in expected:
        assert lines.count(line) == 1, (line, lines)
    for prefix in phases:
        assert sum(line.startswith(prefix) for line in lines) == 1, (prefix, lines)
    assert len(lines) == len(expected) + len(phases), lines
