"""The supervisor of several workers notices a dead worker at once, and a live one as alive."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest

from somamemory.worker_supervisor import WatchedWorker

spawn = multiprocessing.get_context("spawn")


def _watching(process: Any) -> tuple[WatchedWorker, Any]:
    """A worker handle on ``process`` (uvicorn's own would also start it), and the worker's end
    of the health-check pipe."""
    worker = WatchedWorker.__new__(WatchedWorker)
    worker.parent_conn, worker.child_conn = multiprocessing.Pipe()
    worker.process = process
    return worker, worker.child_conn


@pytest.mark.timeout(60)
def test_a_worker_that_died_is_not_waited_for() -> None:
    """uvicorn's check waited out its whole timeout here: the parent holds the pipe's other end
    too, so no end-of-file comes (this test would hang for an hour, past pytest's timeout)."""
    process = spawn.Process(target=int)  # exits at once, answering nothing
    process.start()
    process.join()
    worker, _ = _watching(process)
    assert worker.ping(timeout=3600) is False


@pytest.mark.timeout(60)
def test_a_worker_that_answers_is_alive_and_a_silent_one_is_not() -> None:
    process = spawn.Process(target=time.sleep, args=(60,))
    process.start()
    try:
        worker, child_end = _watching(process)
        assert worker.ping(timeout=0.5) is False  # alive, but nobody answers: a hung worker

        def answer() -> None:
            child_end.recv()
            child_end.send(False)  # alive, not started yet, as uvicorn's worker answers

        child_end.recv()  # the unanswered ping above
        answering = threading.Thread(target=answer)
        answering.start()
        assert worker.ping(timeout=30) is True
        answering.join()
    finally:
        process.kill()
        process.join()
