"""uvicorn's supervisor of several workers, told at once when a worker has died.

uvicorn checks each worker by sending a ping down a pipe and waiting up to
``timeout_worker_healthcheck`` for the answer (60 s here: less killed workers still importing on
a busy machine). The parent holds both ends of that pipe, so a worker that dies after the ping
never closes it: a worker that failed at startup was noticed a minute later, and the service
stopped that much later. ``WatchedWorker`` waits for the answer in short slices and stops waiting
as soon as the process has exited.
"""

from __future__ import annotations

import time
from socket import socket

from uvicorn import Config
from uvicorn.supervisors import multiprocess

SLICE_SECONDS = 0.2


class WatchedWorker(multiprocess.Process):
    """A worker whose health check ends when the worker's process has."""

    def ping(self, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        try:
            self.parent_conn.send(b"ping")
            while not self.parent_conn.poll(SLICE_SECONDS):
                if not self.process.is_alive() or time.monotonic() >= deadline:
                    return False
            self.parent_conn.recv()
        except (OSError, EOFError):
            return False
        return True


def supervisor(config: Config, sockets: list[socket]) -> multiprocess.Multiprocess:
    """uvicorn's supervisor for ``config.workers`` workers on ``sockets``, with watched workers.
    It makes its workers from its module's ``Process``, which is replaced for that."""
    multiprocess.Process = WatchedWorker  # type: ignore[misc]
    return multiprocess.Multiprocess(config, sockets=sockets)
