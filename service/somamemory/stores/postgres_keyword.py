"""Keyword recall in PostgreSQL: full text over every string of a memory's payload.

The index (migration 0006, ``tables.py``) is a GIN index on
``jsonb_to_tsvector('english'::regconfig, payload, '["string"]')``: all string values of the
payload, at any depth, under an explicit configuration, so the expression is immutable and the
index serves every query written with the same expression (:data:`DOCUMENT`).

Why ``english`` and why terms are OR-ed and weighted by rarity:

- PostgreSQL's parser keeps ids and codes whole whatever the configuration: ``E4711`` is one
  ``numword`` token (lower-cased to ``e4711``, never stemmed: the ``english`` configuration maps
  words with digits to the ``simple`` dictionary), ``alice@example.com`` one email,
  ``v2.3.1`` one version, ``TICKET-8812`` the word ``ticket`` and the number ``-8812``. So an exact
  rare token matches exactly under ``english`` as it would under ``simple``.
- For words, ``english`` stems (``deployed``/``deployments`` -> ``deploy``) and drops stop words,
  which a query in natural language needs: without stemming "deploy" misses "deployments", and
  with stop words every memory matches "the". Names are stemmed the same way on both sides, so they
  still match each other exactly.
- Agents ask questions ("what does error E4711 mean?"), not boolean expressions. The AND of
  ``plainto_tsquery``/``websearch_to_tsquery`` would demand every word of the question, and miss
  the memory that holds the code but not "mean". Here each distinct query term (at most
  :data:`MAX_TERMS`) is looked up on its own through the index and a memory scores the sum of the
  BM25 inverse document frequencies of the terms it contains, counted over the memories the filter
  admits: the rare code outweighs every common word, and no query text is ever a syntax error.
  Term frequency and length normalisation are left out (payloads are short; the index stores
  neither, and reading them would mean recomputing every candidate's vector).

Each hit also carries ``coverage``: its score over the summed weight of every query term, 1.0
when it holds all of them (a term no memory holds weighs the most, as the rarest), and ``code``:
whether it holds a query term with a digit (an id, a code). Hybrid search uses both to tell a
memory that matches the query from one that shares a common word with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..filters import SearchFilter
from .postgres_filter import compile_where

# The text search configuration of the index and of every query (see the module docstring).
TEXT_SEARCH_CONFIG = "english"
# The indexed expression; a query must spell it the same way for the planner to use the index.
DOCUMENT = "jsonb_to_tsvector('english'::regconfig, memories.payload, '[\"string\"]'::jsonb)"
INDEX_NAME = "memories_payload_fts_idx"
# Distinct query terms looked up (in the order they appear): each is one index probe.
MAX_TERMS = 64


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """One memory the keyword search found: its summed term weight and the share of the query's."""

    coord: str
    score: float
    coverage: float
    code: bool = False  # it holds a query term with a digit: an id or a code


def keyword_where(search_filter: SearchFilter, first_param: int) -> tuple[str, list[Any]]:
    """A parameterised boolean expression over ``memories`` admitting what the filter admits:
    the typed filter language compiled as for every store (``postgres_filter.py``)."""
    return compile_where(search_filter, first_param)


# Which (term, coord) pairs match, two ways to the same pairs. Through the index: a term becomes
# a tsquery of that one lexeme (quoted, so nothing in it is tsquery syntax), and the join probes
# the GIN index once per term.
_INDEXED_MATCHES = """
    SELECT terms.term, memories.coord
    FROM terms JOIN memories ON {document} @@ terms.q
    WHERE {where}
"""
# By reading each admitted memory's document once: under a row-level security policy PostgreSQL
# will not use the index for ``@@`` (not leakproof), and the indexed form would then compute the
# document again for every term (``postgres_row_security.py``). A single-lexeme tsquery matches
# exactly the documents holding that lexeme, so both forms find the same pairs.
_SCANNED_MATCHES = """
    SELECT lexeme AS term, memories.coord
    FROM memories CROSS JOIN LATERAL unnest(tsvector_to_array({document})) AS lexeme
    WHERE {where} AND lexeme IN (SELECT term FROM terms)
"""

# $1 the query text, $2 how many hits; the filter's parameters follow from $3. ``matches`` is
# materialised: both the weights and the scores read it.
_SEARCH = """
WITH terms AS (
    SELECT t.lexeme AS term,
           ('''' || replace(replace(t.lexeme, '\\', '\\\\'), '''', '''''') || '''')::tsquery AS q
    FROM unnest(to_tsvector('{config}'::regconfig, $1::text)) AS t
    ORDER BY t.positions[1]
    LIMIT {max_terms}
), matches AS MATERIALIZED ({matches}), total AS (
    SELECT count(*)::float8 AS n FROM memories WHERE {where}
), df AS (
    SELECT term, count(*)::float8 AS n FROM matches GROUP BY term
), weights AS (
    SELECT terms.term,
           ln(1 + (total.n - coalesce(df.n, 0) + 0.5) / (coalesce(df.n, 0) + 0.5)) AS idf
    FROM terms CROSS JOIN total LEFT JOIN df ON df.term = terms.term
)
SELECT m.coord, sum(w.idf) AS score, sum(w.idf) / (SELECT sum(idf) FROM weights) AS coverage,
       bool_or(m.term ~ '[0-9]') AS code
FROM matches m JOIN weights w USING (term)
GROUP BY m.coord
ORDER BY score DESC, m.coord
LIMIT $2
"""


def search_statement(search_filter: SearchFilter, *, indexed: bool = True) -> tuple[str, list[Any]]:
    """The keyword search statement for a filter and the filter's parameters (from ``$3``);
    ``indexed=False`` reads each admitted document once instead of probing the index."""
    where, params = keyword_where(search_filter, 3)
    matches = (_INDEXED_MATCHES if indexed else _SCANNED_MATCHES).format(
        document=DOCUMENT, where=where
    )
    statement = _SEARCH.format(
        config=TEXT_SEARCH_CONFIG, max_terms=MAX_TERMS, matches=matches, where=where
    )
    return statement, params


def query_text(text: str) -> str:
    """The query as PostgreSQL takes it: NUL, other control characters and lone surrogates
    (which no token contains, and which PostgreSQL text cannot hold) become spaces."""
    return "".join(
        " " if ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text
    )


async def keyword_search(
    connection: asyncpg.Connection,
    text: str,
    search_filter: SearchFilter,
    limit: int,
    *,
    indexed: bool = True,
) -> list[KeywordHit]:
    """The memories ``search_filter`` admits that contain terms of ``text``, best first."""
    statement, params = search_statement(search_filter, indexed=indexed)
    rows: Sequence[asyncpg.Record] = await connection.fetch(
        statement, query_text(text), limit, *params
    )
    return [KeywordHit(row["coord"], row["score"], row["coverage"], row["code"]) for row in rows]
