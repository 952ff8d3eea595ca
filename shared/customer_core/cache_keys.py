"""The cache's keys in Valkey and the scripts that read and store under them (cache.py).

Keys embed generations: a customer's counter and a global one, both bumped by
writers, so a value stored under an old generation is never asked for again.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

GLOBAL_GEN = "cs:gen:global"

# Reads the generations and the values of every look-up that arrives in one
# event-loop turn: one round trip serves them all (at load, the per-command
# cost dominated a cached call). KEYS[1] = global generation, KEYS[i + 1] = customer
# generations, ARGV[i] = key prefixes; returns {key, value or false, ...}.
LOOKUP_MANY = """
local gg = redis.call('GET', KEYS[1]) or '0'
local out = {}
for i = 2, #KEYS do
    local key = ARGV[i - 1] .. (redis.call('GET', KEYS[i]) or '0') .. '.' .. gg
    out[#out + 1] = key
    out[#out + 1] = redis.call('GET', key)
end
return out
"""

# Valkey names a script by the SHA-1 of its text (an identifier, not security).
LOOKUP_MANY_SHA = hashlib.sha1(LOOKUP_MANY.encode(), usedforsecurity=False).hexdigest()


def generation_key(customer_id: UUID) -> str:
    """The customer's generation counter (writers bump it, in scripts of their own too).
    The hash tag keeps a customer's keys in one slot on a Valkey cluster."""
    return f"cs:{{{customer_id}}}:gen"


def slots_key(customer_id: UUID) -> str:
    return f"cs:{{{customer_id}}}:slots"


# Stores a value only under the generations its slot was made under, and records
# the slot in the customer's set, so erasure (`forget`) finds every stored copy:
# a reader that raced the erasure stores nothing, one that stored first is in
# the set. The set is scored by expiry time and sheds expired slots, so it
# holds at most one TTL's worth of them however busy the customer is.
# KEYS: slot, customer generation, global generation, the slot set;
# ARGV: the slot's prefix, the value, the TTL.
PUT = """
local gen = (redis.call('GET', KEYS[2]) or '0') .. '.' .. (redis.call('GET', KEYS[3]) or '0')
if ARGV[1] .. gen ~= KEYS[1] then return 0 end
local now = tonumber(redis.call('TIME')[1])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), KEYS[1])
redis.call('EXPIRE', KEYS[4], ARGV[3])
return 1
"""
