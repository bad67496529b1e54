"""Domain errors. They are mapped to HTTP statuses in one place (``api/errors.py``)."""


class SomaError(Exception):
    """Base class for every error the service raises on purpose."""


class InvalidCoordinate(SomaError):
    """A coordinate that cannot name a memory (400)."""


class InvalidInput(SomaError):
    """A request value that is well-formed JSON but not acceptable (400)."""


class PayloadTooLarge(SomaError):
    """A payload over ``SOMA_MAX_PAYLOAD_BYTES`` (413)."""


class MemoryNotFound(SomaError):
    """No live memory at that coordinate in that namespace (404)."""


class NotPermitted(SomaError):
    """A valid token used beyond its namespaces or its role (403)."""


class TokenNotFound(SomaError):
    """No live API token with that id among the caller's (404)."""


class BackendUnavailable(SomaError):
    """A backend the request needs cannot be reached (503).

    Each store raises it for its own driver's connection failures, so nothing above ``stores/``
    needs to know which driver failed or how.
    """

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} is unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class LockTimeout(BackendUnavailable):
    """Locks others hold were not released in time (503): the lock service answers, so falling
    back to other locks would break mutual exclusion."""


class BackendRefused(SomaError):
    """A backend answered but refused what it was given (a row or a query it cannot take).

    Not an outage: the same input fails the same way again. The vector store raises it, so the
    write path and the reconciler set the refused entry aside instead of waiting for a recovery.
    """

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} refused the request: {reason}")
        self.backend = backend
        self.reason = reason


def cause_text(exc: BaseException) -> str:
    """``"Type: message"`` of the driver error behind a domain error (or of ``exc`` itself), for
    logs, ``/health`` and the outbox's ``last_error``."""
    cause = exc.__cause__ if isinstance(exc, BackendUnavailable | BackendRefused) else None
    shown = cause or exc
    return f"{type(shown).__name__}: {shown}"


class StartupError(SomaError):
    """The service cannot start as configured; the message says what to do."""


class EmbeddingUnavailable(BackendUnavailable):
    """The embedder could not embed (endpoint down, timed out, wrong answer) (503)."""

    def __init__(self, reason: str) -> None:
        super().__init__("embeddings", reason)


class ReembeddingInProgress(BackendUnavailable):
    """Search cannot answer from the previous collection while the embedding model changes
    (503); the reason names both embedders and the progress."""

    def __init__(self, reason: str) -> None:
        super().__init__("vectors", reason)
        self.args = (reason,)  # the reason alone: it says what is unavailable and why


class ShutdownIncomplete(SomaError):
    """A backend failed to close (an embedded PostgreSQL may still be running)."""
