"""Soak and load curve: mixed requests at rising concurrency against ``somamemory serve``.

Starts the service on the embedded default (embedded PostgreSQL, milvus-lite, in-process cache;
hash embeddings, as every bench here) with its default admission limits, preloads memories,
warms up, then sends ``--requests`` requests split evenly over the concurrency steps: 70%
``POST /memories/search``, 25% ``POST /memories`` (each a new memory; with ``--working-set N``
an overwrite of one of N, so the data stops growing), 5% ``GET`` of an acknowledged memory or
``DELETE`` of a preloaded one. The last step goes beyond ``SOMA_MAX_INFLIGHT + SOMA_MAX_QUEUED``
to show saturation: 503 with ``Retry-After``, which the load generator honours, as a
well-behaved client does.

The service's resident memory (RSS) is sampled through the run. At the end every acknowledged
store is read back: a write answered 200 and not readable would be a lost write.

Prints the table, writes ``soak.json``, ``soak-rss.csv`` and ``soak.png`` (throughput, p50/p99,
RSS) to ``--out``; exits 1 on a lost write, an answer other than 200 or 503-with-Retry-After,
or a dropped connection.

    python bench/soak.py [--requests 100000] [--steps 1 4 16 64 256 384] [--warmup N]
                         [--preload 2000] [--working-set N] [--seed 7] [--out bench/results]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from harness import TOKEN, percentiles, serving

from somamemory.settings import Settings

HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "soak"}
# 25 words for payloads and queries, so searches find something
WORDS = tuple(
    colour + thing
    for colour in ("red", "blue", "green", "grey", "gold")
    for thing in ("fox", "oak", "sea", "hill", "lamp")
)
MIX = (("search", 0.70), ("store", 0.25), ("get", 0.025), ("delete", 0.025))
DEFAULTS = Settings.model_fields
MAX_INFLIGHT = int(DEFAULTS["max_inflight"].default)
MAX_QUEUED = int(DEFAULTS["max_queued"].default)
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class State:
    """What the load knows: acknowledged stores (to read and to verify), preloads to delete."""

    rng: random.Random
    working_set: int = 0  # > 0: stores overwrite this many memories instead of adding new ones
    stored: dict[str, tuple[int, str]] = field(default_factory=dict)  # coord: version, text
    stored_keys: list[str] = field(default_factory=list)
    deletable: list[str] = field(default_factory=list)
    next_coord: int = 0

    def text(self) -> str:
        return " ".join(self.rng.choices(WORDS, k=8))

    def kind(self) -> str:
        draw, total = self.rng.random(), 0.0
        for name, share in MIX:
            total += share
            if draw < total:
                return name
        return MIX[0][0]


@dataclass
class Sample:
    kind: str
    status: int  # 0: no answer (the connection dropped or timed out)
    seconds: float
    retry_after: bool = False
    error: str = ""


@dataclass
class Load:
    samples: list[Sample]
    seconds: float
    probes: list[tuple[int, float]]


async def _one(session: aiohttp.ClientSession, state: State, kind: str) -> Sample:
    """One request of ``kind``; bookkeeping of acknowledged writes happens here."""
    target = text = ""
    if (kind == "delete" and not state.deletable) or (kind == "get" and not state.stored_keys):
        kind = "search"
    started = time.perf_counter()
    try:
        if kind == "search":
            body = {"query": " ".join(state.rng.choices(WORDS, k=3)), "top_k": 10}
            response = await session.post("/memories/search", json=body)
        elif kind == "store":
            target, text = f"{state.next_coord},2", state.text()
            if state.working_set:
                target = f"{state.rng.randrange(state.working_set)},3"
            state.next_coord += 1
            body = {"coord": target, "payload": {"text": text, "n": state.next_coord}}
            response = await session.post("/memories", json=body)
        elif kind == "get":
            target = state.rng.choice(state.stored_keys)
            response = await session.get(f"/memories/{target}")
        else:
            target = state.deletable.pop(state.rng.randrange(len(state.deletable)))
            response = await session.delete(f"/memories/{target}")
        async with response:
            answer = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Sample(kind, 0, time.perf_counter() - started, error=type(exc).__name__)
    seconds = time.perf_counter() - started
    if response.status == 200 and kind == "store":
        version = int(json.loads(answer)["version"])
        if target not in state.stored:
            state.stored_keys.append(target)
        if version > state.stored.get(target, (0, ""))[0]:  # the latest commit acknowledged
            state.stored[target] = (version, text)
    if response.status == 200 and kind == "get":
        assert json.loads(answer)["memory"]["coord"], answer[:200]
    retry_after = response.headers.get("Retry-After")
    if response.status == 503 and retry_after is not None:
        await asyncio.sleep(float(retry_after))  # honour it, as a well-behaved client does
    return Sample(kind, response.status, seconds, retry_after is not None)


async def _probe(url: str, done: asyncio.Event) -> list[tuple[int, float]]:
    """``/healthz`` and ``/readyz`` twice a second while ``done`` is unset: status, seconds."""
    answers: list[tuple[int, float]] = []
    async with aiohttp.ClientSession(url) as session:
        while not done.is_set():
            for path in ("/healthz", "/readyz"):
                started = time.perf_counter()
                try:
                    async with session.get(path) as response:
                        await response.read()
                        answers.append((response.status, time.perf_counter() - started))
                except (aiohttp.ClientError, TimeoutError):
                    answers.append((0, time.perf_counter() - started))
            await asyncio.sleep(0.5)
    return answers


async def _load(url: str, state: State, concurrency: int, total: int) -> Load:
    """``total`` requests from ``concurrency`` clients, with the probes asked meanwhile."""
    remaining = total
    samples: list[Sample] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    done = asyncio.Event()
    probes = asyncio.create_task(_probe(url, done))
    async with aiohttp.ClientSession(
        url, headers=HEADERS, connector=connector, timeout=timeout
    ) as session:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                samples.append(await _one(session, state, state.kind()))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    done.set()
    return Load(samples, seconds, await probes)


async def _preload(url: str, state: State, count: int) -> None:
    """Memories for searches to find and deletes to remove (POST /memories/batch); with a
    working set, its memories too, so that the stores measured overwrite and the data stops
    growing (else the first write of each key adds a memory during the measurement)."""
    async with aiohttp.ClientSession(url, headers=HEADERS) as session:

        async def store(coords: list[str]) -> None:
            items = [{"coord": coord, "payload": {"text": state.text()}} for coord in coords]
            async with session.post("/memories/batch", json={"items": items}) as response:
                response.raise_for_status()

        for start in range(0, count, 500):
            coords = [f"{i},1" for i in range(start, min(start + 500, count))]
            await store(coords)
            state.deletable += coords
        for start in range(0, state.working_set, 500):
            await store([f"{i},3" for i in range(start, min(start + 500, state.working_set))])


async def _verify(url: str, stored: dict[str, tuple[int, str]]) -> list[str]:
    """Read every acknowledged store back; the coordinates missing or older than acknowledged.

    A memory stored more than once must read as its latest acknowledged version (or a later
    one: a store whose answer never arrived may still have been committed)."""
    lost: list[str] = []
    pending = iter(stored.items())
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:

        async def reader() -> None:
            for coord, (version, text) in pending:
                body: dict[str, Any] = {}
                for _ in range(10):  # a 503 (a backend busy) is asked again, never counted lost
                    async with session.get(f"/memories/{coord}") as response:
                        if response.status != 503:
                            body = await response.json() if response.status == 200 else {}
                            break
                    await asyncio.sleep(1)
                memory = body.get("memory", {})
                read = (memory.get("version", 0), memory.get("payload", {}).get("text"))
                if read[0] < version or (read[0] == version and read[1] != text):
                    lost.append(coord)

        await asyncio.gather(*(reader() for _ in range(16)))
    return lost


async def _refused(url: str) -> dict[str, float]:
    """The service's own count of admission refusals, by reason."""
    async with aiohttp.ClientSession(url) as session, session.get("/metrics") as response:
        text = await response.text()
    counts = {}
    for line in text.splitlines():
        if line.startswith("somamemory_http_refused_requests_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = float(line.rsplit(" ", 1)[1])
    return counts


class RssSampler(threading.Thread):
    """Memory of the service every ``interval`` seconds: the RSS of the serve process and of its
    milvus-lite process (its child), and a total.

    The total adds the embedded PostgreSQL: the postmaster (its command line names the data
    directory) and its backends, by PSS, so the shared buffers every backend maps are counted
    once.
    """

    def __init__(self, pid: int, data_dir: Path, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.data_dir = str(data_dir)
        self.interval = interval
        self.phase = "start"
        self.samples: list[tuple[float, str, int, int]] = []
        self.stopped = threading.Event()
        self.started_at = time.monotonic()

    def _postgres(self) -> list[psutil.Process]:
        found = []
        lite = {child.pid for child in _lite_children(self.process)}
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if process.pid in lite or process.pid == self.process.pid:
                continue
            if any(self.data_dir in part for part in cmdline):
                with contextlib.suppress(psutil.Error):
                    found += [process, *process.children(recursive=True)]
        return found

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                own = self.process.memory_info().rss
            except psutil.Error:
                return
            for lite in _lite_children(self.process):
                with contextlib.suppress(psutil.Error):
                    own += lite.memory_info().rss
            total = own
            for helper in self._postgres():
                with contextlib.suppress(psutil.Error):
                    total += helper.memory_full_info().pss
            self.samples.append((time.monotonic() - self.started_at, self.phase, own, total))

    def after(self, phases: set[str]) -> list[int]:
        return [own for _, phase, own, _ in self.samples if phase in phases]


def _lite_children(service: psutil.Process) -> list[psutil.Process]:
    """The service's milvus-lite process (none when lite runs in the serve process)."""
    found = []
    with contextlib.suppress(psutil.Error):
        for child in service.children():
            with contextlib.suppress(psutil.Error):
                if any("milvus_lite_process" in part for part in child.cmdline()):
                    found.append(child)
    return found


def _service_pid(url: str) -> int:
    """The ``somamemory serve`` child this process started for ``url``."""
    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children():
        if port in child.cmdline():
            return child.pid
    raise SystemExit(f"no serve process on port {port}")


def _cpu(service: psutil.Process) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the service and by this load generator."""
    own, theirs = psutil.Process().cpu_times(), service.cpu_times()
    used = theirs.user + theirs.system
    for lite in _lite_children(service):
        with contextlib.suppress(psutil.Error):
            times = lite.cpu_times()
            used += times.user + times.system
    return {"service": used, "load generator": own.user + own.system}


def _summary(concurrency: int, load: Load) -> dict[str, Any]:
    samples, seconds = load.samples, load.seconds
    ok = [s.seconds for s in samples if s.status == 200]
    statuses = collections.Counter(
        str(s.status) if s.status != 503 or s.retry_after else "503-without-Retry-After"
        for s in samples
    )
    p50, p99 = percentiles(ok) if ok else (float("nan"), float("nan"))
    kinds = {}
    for kind, _ in MIX:
        times = [s.seconds for s in samples if s.kind == kind and s.status == 200]
        if times:
            kind_p50, kind_p99 = percentiles(times)
            kinds[kind] = {"ok": len(times), "p50_ms": kind_p50, "p99_ms": kind_p99}
    return {
        "concurrency": concurrency,
        "requests": len(samples),
        "seconds": seconds,
        "ok": len(ok),
        "throughput": len(ok) / seconds,
        "answered_per_second": len(samples) / seconds,
        "p50_ms": p50,
        "p99_ms": p99,
        "statuses": dict(sorted(statuses.items())),
        "dropped": collections.Counter(s.error for s in samples if s.status == 0),
        "by_kind": kinds,
        "probes": {
            "answers": len(load.probes),
            "statuses": dict(collections.Counter(str(status) for status, _ in load.probes)),
            "worst_ms": max((t for _, t in load.probes), default=0.0) * 1000,
        },
    }


def _errors(row: dict[str, Any]) -> str:
    errors = {status: n for status, n in row["statuses"].items() if status != "200"}
    return ", ".join(f"{status}: {n:,}" for status, n in errors.items()) or "none"


def _probes(probes: dict[str, Any]) -> str:
    statuses = ", ".join(f"{n}x {status}" for status, n in probes["statuses"].items())
    return f"{statuses}, worst {probes['worst_ms']:.0f} ms"


def _print_table(rows: list[dict[str, Any]]) -> str:
    """Print the table (rich on a terminal); return it as Markdown for the README."""
    head = ("concurrency", "requests", "ok/s", "p50 ms", "p99 ms", "errors by status", "probes")
    cells = [
        (
            str(row["concurrency"]),
            f"{row['requests']:,}",
            f"{row['throughput']:,.0f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            _errors(row),
            _probes(row["probes"]),
        )
        for row in rows
    ]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="soak: mixed load at rising concurrency")
        for name in head:
            table.add_column(name, justify="left" if name in head[-2:] else "right")
        for line in cells:
            table.add_row(*line)
        Console().print(table)
    except ImportError:
        pass
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(line) + " |" for line in cells]
    return "\n".join(lines)


def _plot(rows: list[dict[str, Any]], rss: RssSampler, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [row["concurrency"] for row in rows]
    at = list(range(len(levels)))  # evenly spaced: the steps are roughly geometric
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    left.plot(at, [row["throughput"] for row in rows], "o-", label="200 answers/s")
    refused = [row["statuses"].get("503", 0) / row["seconds"] for row in rows]
    left.plot(at, refused, "s--", color="tab:red", label="503 (Retry-After)/s")
    left.set(xlabel="concurrent clients", ylabel="requests/s", title="throughput")
    middle.plot(at, [row["p50_ms"] for row in rows], "o-", label="p50")
    middle.plot(at, [row["p99_ms"] for row in rows], "o-", label="p99")
    middle.set(yscale="log", xlabel="concurrent clients", ylabel="ms")
    middle.set_title("latency of 200 answers")
    for axis in (left, middle):
        axis.set_xticks(at, [str(level) for level in levels])
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    times = [t for t, *_ in rss.samples]
    right.plot(
        times, [own / 2**20 for *_, own, _ in rss.samples], label="serve + milvus-lite processes"
    )
    right.plot(
        times, [tree / 2**20 for *_, tree in rss.samples], label="+ embedded PostgreSQL (PSS)"
    )
    for phase in dict.fromkeys(phase for _, phase, *_ in rss.samples):
        start = next(t for t, p, *_ in rss.samples if p == phase)
        right.axvline(start, color="grey", alpha=0.3)
        right.text(start, right.get_ylim()[0], f" {phase}", rotation=90, va="bottom", fontsize=7)
    right.set(xlabel="seconds", ylabel="RSS MiB", title="resident memory")
    right.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


async def run(args: argparse.Namespace) -> int:
    state = State(random.Random(args.seed), working_set=args.working_set)
    steps: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    per_step, extra = divmod(args.requests, len(args.steps))
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp) / "data", {}) as url:
        rss = RssSampler(_service_pid(url), Path(tmp) / "data")
        rss.start()
        rss.phase = "preload"
        await _preload(url, state, args.preload)
        rss.phase = "warm-up"
        # at the in-flight limit: every buffer a request may need gets allocated now
        warm = await _load(url, state, MAX_INFLIGHT, args.warmup)
        warm_bad = [s for s in warm.samples if s.status != 200]
        cpu_before, stored_before = _cpu(rss.process), len(state.stored)
        for i, concurrency in enumerate(args.steps):
            rss.phase = f"c={concurrency}"
            total = per_step + (extra if i == len(args.steps) - 1 else 0)
            steps.append(_summary(concurrency, await _load(url, state, concurrency, total)))
            row = steps[-1]
            print(
                f"c={concurrency}: {row['requests']:,} requests, {row['throughput']:,.0f} ok/s, "
                f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, {_errors(row)}",
                flush=True,
            )
        cpu = {name: after - cpu_before[name] for name, after in _cpu(rss.process).items()}
        stored_during = len(state.stored) - stored_before
        refused = await _refused(url)
        rss.phase = "verify"
        lost = await _verify(url, state.stored)
        rss.stopped.set()
        rss.join()
    measured = rss.after({f"c={c}" for c in args.steps})
    rss_min, rss_max = min(measured), max(measured)
    flat = (rss_max - rss_min) / rss_min <= 0.10
    tenth = max(1, len(measured) // 10)  # growth: the last tenth's median against the first's
    first, last = statistics.median(measured[:tenth]), statistics.median(measured[-tenth:])
    drift = last / first - 1
    table = _print_table(steps)
    unexpected = sum(
        n for row in steps for status, n in row["statuses"].items() if status not in ("200", "503")
    ) + len(warm_bad)
    command = "python bench/soak.py " + " ".join(sys.argv[1:])
    report = {
        "command": command.strip(),
        "requests": args.requests,
        "warmup_requests": args.warmup,
        "preload": args.preload,
        "working_set": args.working_set,
        "mix": dict(MIX),
        "admission": {"max_inflight": MAX_INFLIGHT, "max_queued": MAX_QUEUED},
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "python": platform.python_version(),
        "steps": steps,
        "refused_by_service": refused,
        "rss_after_warmup_mib": {
            "min": rss_min / 2**20,
            "max": rss_max / 2**20,
            "flat_within_10_percent": flat,
            "drift_first_to_last_tenth": drift,
        },
        "acknowledged_stores": len(state.stored),
        "rss_growth_bytes_per_store_measured": (last - first) / max(1, stored_during),
        "cpu_seconds_measured": cpu,
        "lost_writes": lost,
        "unexpected_answers": unexpected,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["seconds,phase,serve_rss_mib,with_postgres_mib"]
    lines += [
        f"{t:.1f},{phase},{own / 2**20:.1f},{total / 2**20:.1f}"
        for t, phase, own, total in rss.samples
    ]
    (args.out / "soak-rss.csv").write_text("\n".join(lines) + "\n")
    title = (
        f"somamemory serve, embedded default, hash embeddings: {args.requests:,} requests, "
        f"70% search / 25% store / 5% get+delete; {os.cpu_count()} cores shared with the load"
    )
    _plot(steps, rss, args.out / "soak.png", title)
    print(f"\n{table}\n")
    print(
        "RSS of the serve and milvus-lite processes after warm-up: "
        f"{rss_min / 2**20:.0f}-{rss_max / 2**20:.0f} MiB "
        f"({(rss_max - rss_min) / rss_min:.1%} spread: {'flat' if flat else 'NOT flat'} "
        f"within 10%); median of the last tenth vs the first: {drift:+.1%}"
    )
    growth = (last - first) / max(1, stored_during)
    print(
        f"RSS growth per new memory stored while measured: {growth:,.0f} bytes "
        f"({stored_during:,} new memories); CPU seconds, service / load generator: "
        f"{cpu['service']:.0f} / {cpu['load generator']:.0f}"
    )
    print(f"service refusals by reason: {refused}")
    print(
        f"memories acknowledged: {len(state.stored):,}; lost: {len(lost)}; unexpected: {unexpected}"
    )
    print(f"wrote soak.json, soak-rss.csv and soak.png to {args.out}")
    return 1 if lost or unexpected else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="measured, over all steps")
    beyond = MAX_INFLIGHT + MAX_QUEUED + MAX_INFLIGHT  # past the admission queue: 503s
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4, 16, 64, 256, beyond])
    parser.add_argument(
        "--warmup", type=int, help="requests at the in-flight limit before measuring"
    )
    parser.add_argument("--preload", type=int, default=2000, help="memories stored in bulk first")
    parser.add_argument(
        "--working-set",
        type=int,
        default=0,
        help="stores overwrite this many memories (data stops growing); 0: every store is new",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = max(500, args.requests // 20)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
