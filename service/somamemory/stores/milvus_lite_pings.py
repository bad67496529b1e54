"""milvus-lite's gRPC server lets its one client keep an idle connection alive.

pymilvus pings every 10 s even with no call in flight; gRPC's server defaults take that for
abuse and close the connection after about 30 s of idleness ("too_many_pings"), failing any call
in flight then and logging an error. Lite's server is reached only by the process that serves
it, in a thread or as its parent over a socket in an owner-only directory, so its pings are
welcome at any rate. The mend replaces the builder that lite's thread server and the service's
child process both make their server with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .milvus_lite_patch import patch

KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 0),
    ("grpc.http2.max_ping_strikes", 0),  # no limit
]


def _welcoming_pings(_original: Callable[..., Any]) -> Callable[..., Any]:
    """Lite's ``_build_server(db, max_workers)``, with the keepalive options added."""
    from concurrent import futures

    import grpc
    from milvus_lite.adapter.grpc import server as lite_server
    from milvus_lite.adapter.grpc.servicer import MilvusServicer
    from pymilvus.grpc_gen import milvus_pb2_grpc

    def build_server(db: Any, max_workers: int) -> Any:
        limit = lite_server._MAX_MESSAGE_SIZE
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                *KEEPALIVE_OPTIONS,
            ],
        )
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
        return server

    return build_server


def install_welcome_pings() -> None:
    """Build lite's gRPC servers from now on with the keepalive options above."""
    from milvus_lite.adapter.grpc import server as lite_server

    patch(
        lite_server,
        "_build_server",
        _welcoming_pings,
        otherwise="its gRPC server may close an idle client's connection (too_many_pings)",
    )
