"""A labelled recall set, generated deterministically: memories, and queries with their answer.

Two kinds of query, each with exactly one right memory:

- ``exact``: the memory holds a rare token (an error code, a ticket, invoice or order id, a host
  name, a person's name) that no other memory holds; the query names that token: a third alone
  ("E4711"), a third in a short question ("how was error E4711 fixed?"), a third wrapped in a
  long one ("could you please tell me everything you know about E4711? ..."). Many memories
  share the same wording around their token, so only the token tells them apart: what
  embeddings are weak at.
- ``paraphrase``: a hand-written pair (``bench/data/paraphrases.tsv``), a memory and a question
  about it that share no word
  (checked here: no common word, no word the start of another, no common five-letter prefix, so
  no stemmer joins them either). What keywords are weak at.

Around them, filler memories (meeting notes, preferences, reminders) built from templates share
words with both kinds of query, as a real memory store does. Everything comes from the templates
below and ``random.Random(seed)``: the same seed gives the same set.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

# (memory, paraphrase question): no shared word, see ``_shares_a_word``.
PARAPHRASES: list[tuple[str, str]] = [
    (line.split("\t")[0], line.split("\t")[1])
    for line in (Path(__file__).parent / "data" / "paraphrases.tsv").read_text().splitlines()
    if line and not line.startswith("#")
]

# Words too common to count as shared (English stop words and the like).
_STOP_WORDS = (
    "a an and are as at be been but by can did do does for from get got had has have he her his "
    "how i if in into is it its my no not of on or our she so that the their them they this to "
    "too us was we were what when where which who why will with you your each after before "
    "over under more most much many some any all every then than there here"
)
_STOP = frozenset(_STOP_WORDS.split())

SERVICES = [
    "payments",
    "billing",
    "search",
    "checkout",
    "inventory",
    "auth",
    "shipping",
    "orders",
    "notifications",
    "reporting",
    "catalog",
    "profiles",
]
PROBLEMS = [
    "login fails on Safari",
    "the export button does nothing",
    "totals are off by one cent",
    "emails arrive twice",
    "the page times out",
    "images do not load",
    "the invoice PDF is blank",
    "the password reset link expires at once",
    "the map shows the wrong city",
    "the cart empties itself",
]
FIXES = [
    "a retry with backoff",
    "raising the connection pool size",
    "a schema migration",
    "rolling back the last release",
    "clearing the cache",
    "a new index on the orders table",
    "rotating the expired certificate",
    "increasing the timeout",
]
FIRST = [
    "Zofia",
    "Amara",
    "Tobias",
    "Ingrid",
    "Kwame",
    "Lucía",
    "Rafael",
    "Yuki",
    "Oskar",
    "Priya",
    "Mateo",
    "Sienna",
    "Dmitri",
    "Noor",
    "Hamish",
    "Chiara",
    "Emeka",
    "Freya",
    "Ilya",
    "Saoirse",
]
LAST = [
    "Wiśniewska",
    "Okonkwo",
    "Lindqvist",
    "Haddad",
    "Castellanos",
    "Takahashi",
    "Brennan",
    "Moreau",
    "Kowalczyk",
    "Abernathy",
    "Szabo",
    "Fairweather",
    "Mbeki",
    "Quintero",
    "Vasquez",
    "Holmgren",
    "Delacroix",
    "Iwasaki",
    "Ferreira",
    "Nakamura",
    "Oyelaran",
    "Ravensworth",
]
TEAMS = ["platform", "growth", "data", "mobile", "design", "support", "finance", "security"]
TOPICS = [
    "the roadmap for next quarter",
    "hiring plans",
    "the on-call rotation",
    "database costs",
    "the new onboarding flow",
    "customer churn",
    "the office move",
    "the holiday schedule",
    "error budgets",
    "the pricing change",
    "test flakiness",
    "the release process",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
LIKES = [
    "dark chocolate",
    "jazz records",
    "long walks",
    "spicy food",
    "board games",
    "early meetings",
    "short emails",
    "window seats",
    "mechanical keyboards",
    "oat milk",
    "quiet offices",
]


# Exact tokens wrapped in many words, most of them in no memory.
LONG_QUESTIONS = [
    "could you please tell me everything you know about {token}? I need it for the report",
    "hey, quick one before the meeting: do we have any notes at all on {token}?",
    "I am trying to remember something, what was going on with {token} last week?",
    "my manager keeps asking and I cannot find it anywhere, what do we know about {token}",
]


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    kind: str  # "exact" or "paraphrase"
    answer: int  # index of the right memory


@dataclass(frozen=True, slots=True)
class RecallSet:
    memories: list[str]
    queries: list[Query]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


def _shares_a_word(memory: str, question: str) -> bool:
    """Whether two texts share a word or a five-letter prefix (what a stemmer could join)."""
    left, right = _words(memory), _words(question)
    for a in left:
        for b in right:
            short, long = sorted((a, b), key=len)
            if (long.startswith(short) and len(short) >= 3) or (a[:5] == b[:5] and len(short) >= 5):
                return True
    return bool(left & right)


def _code(rng: random.Random, kind: str, used: set[str]) -> str:
    while True:
        match kind:
            case "error":
                code = f"E{rng.randrange(1000, 9999)}"
            case "ticket":
                code = f"TICKET-{rng.randrange(1000, 99999)}"
            case "invoice":
                code = f"INV-{rng.randrange(100000, 999999)}"
            case "order":
                code = f"ord_{rng.randrange(16**8):08x}"
            case _:
                code = f"{rng.choice(SERVICES)}-{rng.randrange(10, 99)}.prod.internal"
        if code not in used:
            used.add(code)
            return code


def _exact(rng: random.Random, used: set[str]) -> tuple[str, str, str]:
    """A memory holding a rare token, that token, and a question naming it."""
    kind = rng.choice(["error", "ticket", "invoice", "order", "host", "person"])
    service, problem, fix = rng.choice(SERVICES), rng.choice(PROBLEMS), rng.choice(FIXES)
    if kind == "person":
        while True:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if name not in used:
                used.add(name)
                break
        memory = f"{name} from the {service} team reported that {problem}."
        return memory, name, f"what did {name} report?"
    code = _code(rng, kind, used)
    memory, question = {
        "error": (
            f"Error {code} in the {service} service was fixed by {fix}.",
            f"how was error {code} fixed?",
        ),
        "ticket": (f"{code}: {problem} ({service}).", f"what is {code} about?"),
        "invoice": (
            f"Invoice {code} for the {service} contract is waiting for approval.",
            f"status of invoice {code}",
        ),
        "order": (
            f"Order {code} was delayed because {problem}.",
            f"why was order {code} delayed?",
        ),
        "host": (
            f"The host {code} was restarted after {fix}.",
            f"what happened to {code}?",
        ),
    }[kind]
    return memory, code, question


_FILLER_TRIES = 100_000  # draws in a row without a new filler before giving up


def _filler(rng: random.Random) -> str:
    match rng.randrange(4):
        case 0:
            return (
                f"Meeting notes ({rng.choice(DAYS)}): the {rng.choice(TEAMS)} team discussed "
                f"{rng.choice(TOPICS)}."
            )
        case 1:
            return f"{rng.choice(FIRST)} likes {rng.choice(LIKES)} and {rng.choice(LIKES)}."
        case 2:
            return (
                f"Reminder: follow up with the {rng.choice(SERVICES)} service owners about "
                f"{rng.choice(PROBLEMS)}."
            )
        case _:
            return (
                f"The {rng.choice(SERVICES)} dashboard showed {rng.choice(PROBLEMS)} on "
                f"{rng.choice(DAYS)}; {rng.choice(FIXES)} is planned."
            )


def build(seed: int = 11, memories: int = 1200, exact_queries: int = 120) -> RecallSet:
    """The set: every paraphrase pair, ``exact_queries`` exact-token memories and queries, then
    filler up to ``memories`` in all, shuffled."""
    for memory, question in PARAPHRASES:
        if _shares_a_word(memory, question):
            raise ValueError(f"paraphrase shares a word with its memory: {question!r}")
    rng = random.Random(seed)
    used: set[str] = set()
    texts: list[str] = []
    pending: list[tuple[str, str, int]] = []  # (query text, kind, position in texts)
    for memory, question in PARAPHRASES:
        pending.append((question, "paraphrase", len(texts)))
        texts.append(memory)
    for i in range(exact_queries):
        memory, token, question = _exact(rng, used)
        asked = (token, question, rng.choice(LONG_QUESTIONS).format(token=token))[i % 3]
        pending.append((asked, "exact", len(texts)))
        texts.append(memory)
    seen = set(texts)
    misses = 0
    while len(texts) < memories:
        filler = _filler(rng)
        if filler not in seen:
            seen.add(filler)
            texts.append(filler)
            misses = 0
            continue
        misses += 1
        if misses > _FILLER_TRIES:  # the templates make ~7,800 distinct fillers in all
            raise ValueError(
                f"the recall set holds at most {len(texts):,} distinct memories "
                f"({memories:,} asked): its filler templates are used up"
            )
    order = list(range(len(texts)))
    rng.shuffle(order)
    where = {old: new for new, old in enumerate(order)}
    shuffled = [texts[old] for old in order]
    queries = [Query(text, kind, where[old]) for text, kind, old in pending]
    return RecallSet(shuffled, queries)
