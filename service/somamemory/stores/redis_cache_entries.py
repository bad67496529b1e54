"""How the Redis cache keeps an entry, and the Lua scripts that change entries atomically.

An entry is a fixed-width header, then the rest::

    \\x00lease:2  <kind: one byte>  <version: 20 digits>  <rest>

- ``V``: a memory; the rest is its JSON, the version its version.
- ``T``: a tombstone (a delete, a batch write, an entry too old to keep): no value at or below
  its version may land any more.
- ``L``: a fill lease; the rest is its token, the version the floor it took over from a tombstone.

A value, a fill or a tombstone lands only over an entry holding an older version (or none), so
of two writers that do not exclude each other (a Redis lock holder and a PostgreSQL advisory lock
holder while Redis comes back) the newer version stays, whichever cache call arrives last.
Versions compare as fixed-width digit strings, in Lua as in Python: no number parsing (Lua's
numbers are doubles, versions are PostgreSQL bigints).

Format history. Format 1 kept a memory's bare JSON and a lease as ``\\x00lease:<hex token>``.
Every format-2 entry starts with format 1's lease marker, so a replica still on format 1 (in a
rolling upgrade) takes every format-2 entry for a fill in progress and reads the store: never a
wrong answer, only a miss. A format-2 replica takes any other entry (a format-1 value or lease,
anything unknown) for a miss, replaces it with its own lease on a read, and lets any value land
over it.
"""

from __future__ import annotations

HEAD = b"\x00lease:2"
KIND_AT = len(HEAD)  # the kind byte's offset
HEADER_BYTES = KIND_AT + 1 + 20  # a value's JSON starts here
MAX_VERSION = 10**20 - 1


def version_field(version: int) -> str:
    """A version as the header writes it: 20 digits, zero-padded."""
    if not 0 <= version <= MAX_VERSION:
        raise ValueError(f"a cache version must be within 0..{MAX_VERSION}, not {version}")
    return f"{version:020d}"


def memory_json(entry: bytes) -> bytes | None:
    """The memory's JSON if ``entry`` is a format-2 value; None for anything else."""
    if entry.startswith(HEAD) and entry[KIND_AT : KIND_AT + 1] == b"V":
        return entry[HEADER_BYTES:]
    return None


# Shared by every script: an entry's kind and version (both nil: absent, or another format).
_CLASSIFY = """
local HEAD = string.char(0) .. 'lease:2'
local function classify(entry)
  if entry and string.sub(entry, 1, 8) == HEAD then
    local kind = string.sub(entry, 9, 9)
    if kind == 'V' or kind == 'T' or kind == 'L' then
      return kind, string.sub(entry, 10, 29)
    end
  end
  return nil, nil
end
"""

# A hit answers the JSON alone (the caller sends it as it is). A miss claims the entry with a
# lease (nil back), taking over a tombstone's version as its floor; 0: another reader's lease.
# ARGV: token, lease milliseconds.
LOOKUP = (
    """
local entry = redis.call('GET', KEYS[1])
if entry and string.byte(entry, 9) == 86 and string.byte(entry, 1) == 0
   and string.sub(entry, 2, 8) == 'lease:2' then
  return string.sub(entry, 30)  -- a value ('V' is 86): the hit, checked first
end
"""
    + _CLASSIFY
    + """
local kind, version = classify(entry)
if kind == 'L' then return 0 end
local floor = (kind == 'T') and version or string.rep('0', 20)
redis.call('SET', KEYS[1], HEAD .. 'L' .. floor .. ARGV[1], 'PX', ARGV[2])
return false
"""
)

# A fill lands over the reader's own lease, or over any older value or tombstone; never over
# nothing (the lease was dropped: an invalidation) nor over another format. ARGV: token,
# version, JSON, TTL seconds. 1: it landed.
FILL = (
    _CLASSIFY
    + """
local entry = redis.call('GET', KEYS[1])
local kind, held = classify(entry)
if not kind then return 0 end
if kind == 'L' and string.sub(entry, 30) ~= ARGV[1] then return 0 end
if held >= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], HEAD .. 'V' .. ARGV[2] .. ARGV[3], 'EX', ARGV[4])
return 1
"""
)

# Values just committed: each lands over nothing, another format, or an older version of any
# kind (over a lease it voids it). ARGV: TTL seconds, then version and JSON per key. How many
# landed.
SET_MANY = (
    _CLASSIFY
    + """
local landed = 0
for i, key in ipairs(KEYS) do
  local version = ARGV[2 * i]
  local kind, held = classify(redis.call('GET', key))
  if not kind or held < version then
    redis.call('SET', key, HEAD .. 'V' .. version .. ARGV[2 * i + 1], 'EX', ARGV[1])
    landed = landed + 1
  end
end
return landed
"""
)

# Whatever an entry holds goes (a lease with it: voided); what stays is a tombstone of the
# higher of its version and the given one, so nothing older lands afterwards. ARGV: TTL
# seconds, then a version per key.
TOMBSTONE_MANY = (
    _CLASSIFY
    + """
for i, key in ipairs(KEYS) do
  local floor = ARGV[i + 1]
  local kind, held = classify(redis.call('GET', key))
  if kind and held > floor then floor = held end
  redis.call('SET', key, HEAD .. 'T' .. floor, 'EX', ARGV[1])
end
return #KEYS
"""
)
