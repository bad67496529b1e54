"""Session consistency per namespace on a Milvus server.

pymilvus' ``Session`` level makes a search wait until the server has applied this client's last
write anywhere in the collection. A service is one client for every tenant, so under steady
writes every search waited for the server's next time tick (~200 ms with Milvus 2.3's
defaults), whatever namespace it read. The store records, per namespace, a timestamp at or
after its last write there, and asks the server to be consistent up to that one only
(``Customized`` with that ``guarantee_timestamp``): a search still sees every write this process
acknowledged in its namespace, and waits only when its own namespace was just written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pymilvus import MilvusClient
from pymilvus.client import ts_utils

# namespaces remembered one by one; an older one falls back to the latest timestamp forgotten
MAX_NAMESPACES = 100_000


def last_write_timestamp(client: MilvusClient, collection: str) -> int:
    """The largest server timestamp of this process' writes to ``collection`` through
    ``client``'s server (0: none known). pymilvus keeps it per server and collection for its own
    session level, updating it after each write with the maximum. A pymilvus that keeps it
    elsewhere gives 0, and searches wait for the whole collection again."""
    try:
        address = client._get_connection().server_address  # the key pymilvus files it under
        return int(ts_utils.get_collection_ts(collection, address, "") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0


class NamespaceSessions:
    """The last write's timestamp per namespace, and the search arguments it implies."""

    def __init__(self, max_namespaces: int = MAX_NAMESPACES) -> None:
        self._last: OrderedDict[str, int] = OrderedDict()
        self._max = max_namespaces
        self._forgotten = 0  # the latest timestamp dropped from _last
        self._known = True  # False once a write reported no timestamp: whole-collection sessions

    def record(self, namespaces: Iterable[str], timestamp: int) -> None:
        """``timestamp``, at or after the writes just made in ``namespaces``."""
        if timestamp <= 0:
            self._known = False
            return
        for namespace in namespaces:
            self._last[namespace] = max(self._last.pop(namespace, 0), timestamp)
        while len(self._last) > self._max:
            _, dropped = self._last.popitem(last=False)
            self._forgotten = max(self._forgotten, dropped)

    def search_arguments(self, namespace: str) -> dict[str, Any]:
        """pymilvus arguments of a session-level search of ``namespace``."""
        if not self._known:
            return {"consistency_level": "Session"}
        timestamp = self._last.get(namespace, self._forgotten)
        if timestamp == 0:  # nothing written there by this process: nothing to wait for
            return {"consistency_level": "Eventually"}
        return {"consistency_level": "Customized", "guarantee_timestamp": timestamp}
