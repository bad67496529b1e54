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


class BackendUnavailable(SomaError):
    """A backend the request needs cannot be reached (503)."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} is unavailable: {reason}")
        self.backend = backend


class StartupError(SomaError):
    """The service cannot start as configured; the message says what to do."""


class EmbeddingUnavailable(BackendUnavailable):
    """The embedder could not embed (endpoint down, timed out, wrong answer) (503)."""

    def __init__(self, reason: str) -> None:
        super().__init__("embeddings", reason)


class ShutdownIncomplete(SomaError):
    """A backend failed to close (an embedded PostgreSQL may still be running)."""
