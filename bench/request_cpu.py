"""CPU time per request: how much of a core one write or one search costs each process.

Latency on a shared 2-core machine moves with everything else running; the CPU time a request
costs moves much less, and under load it is what requests queue for. This starts ``somamemory
serve`` on the embedded default (its own PostgreSQL, the in-process cache, milvus-lite in its own
process, batching on, hash embeddings, client vectors), preloads ``--preload`` memories, then
alternates phases of ``--writes`` single ``POST /memories`` (``--concurrency`` at a time) and
``--searches`` ``POST /memories/search`` (one at a time), and prints, per phase, the CPU
milliseconds per request of the serve process and of milvus-lite's (user + system, from
``/proc`` through psutil) and the requests per second. It also times parsing one write's JSON
body with the standard library and with the service's parser.

``--paced RATE`` adds a phase of single writes sent at RATE a second for ``--paced-seconds``
(open loop, as the search bench's writer sends them): group commits then hold one write each,
so every write pays the whole commit. It reports the CPU per write of the serve process, of
milvus-lite's and of the whole machine (PostgreSQL and this load generator included).

    python bench/request_cpu.py [--preload 3000] [--writes 4000] [--searches 1500] [--rounds 2]
    python bench/request_cpu.py --writes 0 --searches 0 --paced 200 [--paced-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import timeit
from pathlib import Path

import aiohttp
import numpy as np
import psutil
from harness import TOKEN, serving

from somamemory.api.json_body import parse_json

DIM = 384
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-Soma-Namespace": "cpu",
    "Content-Type": "application/json",
}


def _processes(url: str) -> tuple[psutil.Process, psutil.Process]:
    """The serve process listening at ``url`` and its milvus-lite child."""
    port = url.rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "serve" in command and port in command:
            (lite,) = [
                child
                for child in process.children()
                if "milvus_lite_process" in " ".join(child.cmdline())
            ]
            return process, lite
    raise SystemExit(f"no somamemory serve process on port {port}")


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _body(kind: str, i: int, rng: np.random.Generator) -> bytes:
    vector = rng.normal(size=DIM).tolist()
    if kind == "write":
        body = {"coord": f"{i},1", "payload": {"text": f"m {i}"}, "vector": vector}
        return json.dumps(body).encode()
    return json.dumps({"vector": vector, "top_k": 10}).encode()


async def _send(url: str, kind: str, first: int, count: int, concurrency: int) -> None:
    rng = np.random.default_rng(first)
    numbers = iter(range(first, first + count))
    path = "/memories" if kind == "write" else "/memories/search"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:

        async def worker() -> None:
            for i in numbers:
                async with session.post(path, data=_body(kind, i, rng)) as response:
                    if response.status >= 300:
                        raise SystemExit(f"{path}: {response.status} {await response.text()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _send_paced(url: str, first: int, rate: float, seconds: float) -> int:
    """Single writes at ``rate`` a second for ``seconds``, open loop; how many were sent."""
    rng = np.random.default_rng(first)
    count = int(rate * seconds)
    async with aiohttp.ClientSession(url, headers=HEADERS) as session:

        async def one(i: int) -> None:
            async with session.post("/memories", data=_body("write", i, rng)) as response:
                if response.status >= 300:
                    raise SystemExit(f"/memories: {response.status} {await response.text()}")

        started = time.perf_counter()
        sent = []
        for k in range(count):
            delay = started + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(asyncio.create_task(one(first + k)))
        await asyncio.gather(*sent)
    return count


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _parse_times() -> str:
    body = _body("write", 1, np.random.default_rng(1))
    number = 2000
    standard = timeit.timeit(lambda: json.loads(body), number=number) / number * 1e6
    ours = timeit.timeit(lambda: parse_json(body), number=number) / number * 1e6
    return (
        f"parsing a write's body ({len(body):,} bytes): json.loads {standard:.0f} us,"
        f" the service's parser {ours:.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preload", type=int, default=3000)
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--searches", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paced", type=float, default=0.0, help="single writes a second")
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(_parse_times(), flush=True)
    env = {"SOMA_ENABLE_BATCH_UPSERT": "1"}
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp), env) as url:
        serve, lite = _processes(url)
        asyncio.run(_send(url, "write", 0, args.preload, args.concurrency))
        first = args.preload
        phases = [("write", args.writes, args.concurrency), ("search", args.searches, 1)]
        for round_ in range(1, args.rounds + 1):
            if args.paced:
                serve_before, lite_before = _cpu_seconds(serve), _cpu_seconds(lite)
                machine_before = _machine_busy_seconds()
                count = asyncio.run(_send_paced(url, first, args.paced, args.paced_seconds))
                serve_ms = (_cpu_seconds(serve) - serve_before) / count * 1000
                lite_ms = (_cpu_seconds(lite) - lite_before) / count * 1000
                machine_ms = (_machine_busy_seconds() - machine_before) / count * 1000
                print(
                    f"round {round_} paced  ({first:,} memories before, {args.paced:g}/s):"
                    f" serve {serve_ms:.2f} ms of CPU a write, milvus-lite {lite_ms:.2f},"
                    f" the machine {machine_ms:.2f}",
                    flush=True,
                )
                first += count
            for kind, count, concurrency in phases:
                if not count:
                    continue
                serve_before, lite_before = _cpu_seconds(serve), _cpu_seconds(lite)
                started = time.perf_counter()
                asyncio.run(_send(url, kind, first, count, concurrency))
                elapsed = time.perf_counter() - started
                serve_ms = (_cpu_seconds(serve) - serve_before) / count * 1000
                lite_ms = (_cpu_seconds(lite) - lite_before) / count * 1000
                print(
                    f"round {round_} {kind:6} ({first:,} memories before): serve {serve_ms:.2f}"
                    f" ms of CPU a request, milvus-lite {lite_ms:.2f}; {count / elapsed:.0f}/s",
                    flush=True,
                )
                if kind == "write":
                    first += count


if __name__ == "__main__":
    main()
