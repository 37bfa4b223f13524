"""The Lua scripts of the Redis backend: one atomic, fenced write of a checkpoint, and one
read of a run that skips its rows when the reader already has its revision.

A run's shared state is kept key by key in the hash ``<prefix>state:<run_id>``: field
``<part>:<key>``, value ``<position>:<JSON>`` (see :func:`pocketmesh.persistence.base.assemble_shared`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .base import assemble_shared
from .lease import LOST_MARKER

if TYPE_CHECKING:
    from ..state import Pending

# KEYS: run hash, steps hash, trace hash, index (by first save), names (lexicographic), lock,
# state hash.
# ARGV: token ('' = unfenced), run id, score, ttl ms ('' = none), '1' if finished, state
# ('' = none), params, step field ('' = none), step value, number of trace pairs, '1' to drop
# the whole state hash first, number of state fields to delete, number of state pairs to set;
# then the trace position / entry pairs, the state fields to delete, the state field / value pairs.
SAVE = f"""
if ARGV[1] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[1] then
  return redis.error_reply('{LOST_MARKER}')
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], ARGV[8], ARGV[9]) end
local at = 14
for i = 1, tonumber(ARGV[10]) do redis.call('HSET', KEYS[3], ARGV[at], ARGV[at + 1]); at = at + 2 end
if ARGV[11] == '1' then redis.call('DEL', KEYS[7]) end
for i = 1, tonumber(ARGV[12]) do redis.call('HDEL', KEYS[7], ARGV[at]); at = at + 1 end
for i = 1, tonumber(ARGV[13]) do redis.call('HSET', KEYS[7], ARGV[at], ARGV[at + 1]); at = at + 2 end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[6], 'params', ARGV[7])
  redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[2])
  redis.call('ZADD', KEYS[5], 'NX', 0, ARGV[2])
  if ARGV[4] ~= '' then
    for _, k in ipairs({{1, 2, 3, 7}}) do
      if ARGV[5] == '1' then redis.call('PEXPIRE', KEYS[k], ARGV[4]) else redis.call('PERSIST', KEYS[k]) end
    end
  end
end
return 1
"""

# KEYS: run hash, trace hash, state hash. ARGV: '"rev":"<revision>"' the reader has ('' = none).
LOAD = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return nil end
if ARGV[1] ~= '' and string.find(state, ARGV[1], 1, true) then return {state} end
return {state, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""


def state_args(shared: Pending | None) -> tuple[str, list[str], list[str]]:
    """The SAVE arguments of a checkpoint's shared state: drop all ('1' or ''), the fields to
    delete, the field / value pairs to set. ``None`` (a record saved whole): drop all."""
    if shared is None:
        return "1", [], []
    deletes: list[str] = []
    for key, parts in shared.drops:
        deletes += [f"{part}:{key}" for part in range(parts)]
    for key, parts in shared.resets:
        deletes += [f"{part}:{key}" for part in range(1, parts)]
    sets: list[str] = []
    for key, pos, text in shared.puts:
        sets += [f"0:{key}", f"{pos}:{text}"]
    for key, pos, part, text in shared.appends:
        sets += [f"{part}:{key}", f"{pos}:{text}"]
    return ("1" if shared.replace else ""), deletes, sets


def state_rows(fields: list[Any]) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
    """The shared state from the state hash's flat field / value list (HGETALL as a script returns it)."""
    rows = []
    for field, value in zip(fields[::2], fields[1::2]):
        part, _, key = field.partition(":")
        pos, _, text = value.partition(":")
        rows.append((key, int(part), int(pos), text))
    rows.sort(key=lambda row: (row[2], row[1]))
    return assemble_shared(rows)


def step_entry(step_id: str, node_name: str, result_json: str) -> tuple[str, str]:
    """The steps-hash field and value of one step; the value keeps ids for ordering."""
    return f"{node_name}-{step_id}", f"[{json.dumps(step_id)},{json.dumps(node_name)},{result_json}]"


def step_order(step: list[Any]) -> tuple[int, int, str, str]:
    step_id, node_name = step[0], step[1]
    if step_id.isascii() and step_id.isdigit():
        return (0, int(step_id), "", node_name)
    return (1, 0, step_id, node_name)
