"""Changing the embedding model: a new collection built from PostgreSQL, then one switch.

``plan`` finds the collections and what filled each, ``previous`` serves search from the old
one meanwhile, ``rebuild`` drives the outbox into the new one and switches when it is complete.
"""
