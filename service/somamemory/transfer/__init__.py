"""Data that can move: ``somamemory export | import | reindex``.

Export streams every memory with all its versions as JSON Lines; import writes such a file into
another instance (idempotently: versions keep their numbers and timestamps); reindex rebuilds the
vector store from PostgreSQL through the vector outbox.
"""
