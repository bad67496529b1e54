"""Session searches on a Milvus server wait for this process' writes in their namespace only."""

from __future__ import annotations

from somamemory.stores.milvus_sessions import NamespaceSessions, last_write_timestamp


def test_a_search_waits_for_the_last_write_in_its_own_namespace_only() -> None:
    sessions = NamespaceSessions()
    sessions.record(["a"], 100)
    sessions.record(["b", "a"], 250)
    sessions.record(["b"], 300)
    assert sessions.search_arguments("a") == {
        "consistency_level": "Customized",
        "guarantee_timestamp": 250,
    }
    assert sessions.search_arguments("b")["guarantee_timestamp"] == 300
    # a namespace this process never wrote has nothing to wait for
    assert sessions.search_arguments("c") == {"consistency_level": "Eventually"}


def test_a_timestamp_never_goes_back() -> None:
    sessions = NamespaceSessions()
    sessions.record(["a"], 500)
    sessions.record(["a"], 400)  # an earlier write answered later
    assert sessions.search_arguments("a")["guarantee_timestamp"] == 500


def test_a_forgotten_namespace_waits_for_the_latest_write_forgotten() -> None:
    sessions = NamespaceSessions(max_namespaces=2)
    sessions.record(["a"], 10)
    sessions.record(["b"], 20)
    sessions.record(["c"], 30)  # "a" is dropped
    sessions.record(["b"], 40)
    sessions.record(["d"], 50)  # "c" is dropped: the least recently written
    assert sessions.search_arguments("a")["guarantee_timestamp"] == 30
    assert sessions.search_arguments("c")["guarantee_timestamp"] == 30
    assert sessions.search_arguments("b")["guarantee_timestamp"] == 40
    assert sessions.search_arguments("never")["guarantee_timestamp"] == 30


def test_without_write_timestamps_every_search_waits_for_the_whole_collection() -> None:
    """A driver that stops reporting write timestamps must not turn session into eventually."""
    sessions = NamespaceSessions()
    sessions.record(["a"], 100)
    sessions.record(["a"], 0)
    assert sessions.search_arguments("a") == {"consistency_level": "Session"}
    assert sessions.search_arguments("z") == {"consistency_level": "Session"}


def test_a_client_that_keeps_no_write_timestamp_where_expected_reads_as_none() -> None:
    """The timestamp comes from pymilvus' internals: a release that moves them must fall back
    to whole-collection sessions (above), never fail a write that succeeded."""

    class Elsewhere:
        def _get_connection(self) -> object:
            return object()  # no server_address

    assert last_write_timestamp(Elsewhere(), "c") == 0  # type: ignore[arg-type]
