/**
 * The Redis store's Lua scripts. Each read-check-write runs as one script, so Redis runs it
 * to the end with no other command in between: the fencing epoch and the sequence a script
 * checks are the ones it writes over, with no WATCH retries. ioredis `defineCommand` sends
 * them with EVALSHA (and EVAL once after a restart, when Redis answers NOSCRIPT).
 *
 * All scripts start with `#!lua` (Redis 7 script flags): a writing script is refused before
 * it starts — never half-way through — when Redis is out of memory (`maxmemory`) or is a
 * read-only replica. Every check comes before the first write, and our keys always have the
 * types redis-keys.ts gives them, so a script that starts runs to the end: a commit is
 * written entirely or not at all.
 *
 * Arguments: KEYS are the keys the script is known to touch before it runs (a session's four
 * keys, the expiry index); ARGV[1..3] are always the key prefix, `reclaimAfterMs` and this
 * store's origin id (which tags its change announcements, so it can skip its own). Keys
 * derived inside a script from names (other sessions pushed to, topics, owner sets) are not
 * declared — fine on one primary (standalone or Sentinel), one reason Redis Cluster is not
 * supported (see redis.ts).
 */

/** Helpers every script starts with. */
const PRELUDE = `
local P = ARGV[1]
local RECLAIM = tonumber(ARGV[2])
local ORIGIN = ARGV[3]
local EXPIRY = P .. 'expiry'
local function enc(s)
  return (string.gsub(s, '[%%{}]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
local function skey(id) return P .. 's:{' .. enc(id) .. '}' end
local function tkey(t) return P .. 't:{' .. enc(t) .. '}' end
local function okey(o) return P .. 'o:{' .. enc(o) .. '}' end
local function num(x) return string.format('%d', x) end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Applies a session's reclaim time to its four keys (called after writing any of them,
-- since a key created by the write has no TTL yet).
local function keep(base)
  local at = redis.call('HGET', base, 'reclaim')
  for _, k in ipairs({base, base .. ':r', base .. ':p', base .. ':sub'}) do
    if at then redis.call('PEXPIREAT', k, at) else redis.call('PERSIST', k) end
  end
end
-- Sets (or, with nil, clears) a session's expiresAt, its place in the expiry index, and its
-- reclaim time: RECLAIM ms after it expires, by Redis's clock at the earliest.
local function setExp(base, id, exp)
  if exp then
    redis.call('HSET', base, 'exp', num(exp), 'reclaim', num(math.max(exp, nowMs()) + RECLAIM))
    redis.call('ZADD', EXPIRY, num(exp), id)
  else
    redis.call('HDEL', base, 'exp', 'reclaim')
    redis.call('ZREM', EXPIRY, id)
  end
  keep(base)
end
-- Deletes a session's keys and index entries.
local function drop(base, id, owner)
  if owner then redis.call('SREM', okey(owner), id) end
  redis.call('ZREM', EXPIRY, id)
  redis.call('DEL', base, base .. ':r', base .. ':p', base .. ':sub')
end
-- Announces what changed to every store watching this prefix.
local function announce(sessions, topics)
  if #sessions == 0 and #topics == 0 then return end
  redis.call('PUBLISH', P .. 'changes', cjson.encode({o = ORIGIN, s = sessions, t = topics}))
end
`;

/** KEYS: s, r, p, sub, expiry. ARGV[4..]: id, tok, created, cseq, pseq, aseq, ttl, exp|"",
 *  owner, hasOwner "1"|"0", epoch. Returns 1, or 0 when the id exists. */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local id = ARGV[4]
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4]) -- leftovers of an earlier session with this id
redis.call('HSET', KEYS[1], 'tok', ARGV[5], 'created', ARGV[6], 'cseq', ARGV[7], 'pseq', ARGV[8],
  'aseq', ARGV[9], 'ttl', ARGV[10], 'epoch', ARGV[14])
if ARGV[13] == '1' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[12])
  redis.call('SADD', okey(ARGV[12]), id)
end
setExp(KEYS[1], id, ARGV[11] ~= '' and tonumber(ARGV[11]) or nil)
return 1
`;

/** KEYS: s, r, p, sub, expiry. ARGV[4..]: id, owner, now, lease, expectEpoch|"".
 *  Returns the record's HGETALL, or nil. */
const CLAIM = `
local id, owner, now = ARGV[4], ARGV[5], tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'epoch', 'exp', 'ttl', 'owner')
if not h[1] then return false end
if h[2] and tonumber(h[2]) < now then return false end
if ARGV[8] ~= '' and tonumber(h[1]) ~= tonumber(ARGV[8]) then return false end
if h[4] then redis.call('SREM', okey(h[4]), id) end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', owner)
redis.call('SADD', okey(owner), id)
setExp(KEYS[1], id, now + tonumber(h[3]) + tonumber(ARGV[7]))
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: owner set, expiry. ARGV[4..]: owner, now, lease, id… (a batch of the owner set's
 *  members). Returns how many were renewed; ids no longer held by the owner leave its set. */
const RENEW = `
local owner, now, lease = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local n = 0
for i = 7, #ARGV do
  local id = ARGV[i]
  local base = skey(id)
  local h = redis.call('HMGET', base, 'owner', 'ttl')
  if h[1] == owner then
    setExp(base, id, now + tonumber(h[2]) + lease)
    n = n + 1
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return n
`;

/** KEYS: s, r, p, sub, expiry. ARGV[4..]: id, epoch, expiresAt. */
const RELEASE = `
local id = ARGV[4]
local h = redis.call('HMGET', KEYS[1], 'epoch', 'owner')
if not h[1] or tonumber(h[1]) ~= tonumber(ARGV[5]) then return 0 end
if h[2] then
  redis.call('SREM', okey(h[2]), id)
  redis.call('HDEL', KEYS[1], 'owner')
end
setExp(KEYS[1], id, tonumber(ARGV[6]))
return 1
`;

/** KEYS: expiry. ARGV[4..]: now, batch. Looks at up to `batch` index entries below `now`;
 *  returns {examined, id…} with the ids of the sessions that expired (deleted here, or
 *  already reclaimed by their TTL). */
const SWEEP = `
local now = tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', '(' .. ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
local out = {#ids}
for _, id in ipairs(ids) do
  local base = skey(id)
  local h = redis.call('HMGET', base, 'exp', 'owner', 'epoch')
  redis.call('ZREM', EXPIRY, id)
  if not h[3] then
    out[#out + 1] = id -- its keys expired in Redis already
  elseif h[1] and tonumber(h[1]) < now then
    drop(base, id, h[2])
    out[#out + 1] = id
  elseif h[1] then
    redis.call('ZADD', EXPIRY, h[1], id) -- an out-of-date index entry: put it right
  end
end
return out
`;

/** KEYS: s, r, p, sub, expiry. ARGV[4]: id. */
const DELETE = `
drop(KEYS[1], ARGV[4], redis.call('HGET', KEYS[1], 'owner') or nil)
return 1
`;

/**
 * KEYS: s, r, p, sub of the committing session. ARGV[4..]: epoch, seq, reply, at (wall ms of
 * publishes), REPLY_WINDOW, then four per effect: kind (p push, b publish, s subscribe,
 * u unsubscribe), then session|topic, payload|topic, after ("end" or an offset).
 * Returns {5} unknown session, {4} fenced, {3, expected} gap, {2, reply|nil} duplicate, or
 * {1, pushCount, (effectIndex, seq)…, offset…} committed (one offset per publish effect).
 */
const COMMIT = `
local S = KEYS[1]
local h = redis.call('HMGET', S, 'epoch', 'cseq')
if not h[1] then return {5} end
if tonumber(h[1]) ~= tonumber(ARGV[4]) then return {4} end
local last, seq = tonumber(h[2]), tonumber(ARGV[5])
if seq <= last then return {2, redis.call('HGET', KEYS[2], ARGV[5])} end
if seq ~= last + 1 then return {3, last + 1} end

local pushes, offsets, sessions, topics = {}, {}, {}, {}
local seenS, seenT, bases = {}, {}, {[S] = true}
local exists = {}
local function live(base)
  if exists[base] == nil then exists[base] = redis.call('EXISTS', base) == 1 end
  return exists[base]
end
local idx = 0
for i = 9, #ARGV, 4 do
  local kind, a, b, c = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if kind == 'p' then
    local base = skey(a)
    if live(base) then
      local n = redis.call('HINCRBY', base, 'pseq', 1)
      redis.call('XADD', base .. ':p', num(n) .. '-0', 'p', b)
      pushes[#pushes + 1] = idx
      pushes[#pushes + 1] = n
      bases[base] = true
      if not seenS[a] then seenS[a] = true; sessions[#sessions + 1] = a end
    end
  elseif kind == 'b' then
    local tk = tkey(a)
    local n = redis.call('INCR', tk .. ':head')
    redis.call('XADD', tk, num(n) .. '-0', 'p', b, 'at', ARGV[7])
    offsets[#offsets + 1] = n
    if not seenT[a] then seenT[a] = true; topics[#topics + 1] = a end
  elseif kind == 's' then
    local base = skey(a)
    if live(base) then
      local after = c
      if c == 'end' then after = redis.call('GET', tkey(b) .. ':head') or '0' end
      redis.call('HSET', base .. ':sub', b, after)
      bases[base] = true
    end
  else
    redis.call('HDEL', skey(a) .. ':sub', b)
  end
  idx = idx + 1
end
redis.call('HSET', S, 'cseq', ARGV[5])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
local old = seq - tonumber(ARGV[8])
if old >= 1 then redis.call('HDEL', KEYS[2], num(old)) end
for base in pairs(bases) do keep(base) end
announce(sessions, topics)
local out = {1, #pushes / 2}
for _, v in ipairs(pushes) do out[#out + 1] = v end
for _, v in ipairs(offsets) do out[#out + 1] = v end
return out
`;

/** KEYS: s, r, p, sub. ARGV[4..]: epoch, upTo. */
const ACK = `
local h = redis.call('HMGET', KEYS[1], 'epoch', 'pseq', 'aseq')
if not h[1] or tonumber(h[1]) ~= tonumber(ARGV[4]) then return 0 end
local to = math.min(tonumber(ARGV[5]), tonumber(h[2]))
if to <= tonumber(h[3]) then return 0 end
redis.call('XTRIM', KEYS[3], 'MINID', num(to + 1) .. '-0')
redis.call('HSET', KEYS[1], 'aseq', num(to))
return 1
`;

/**
 * KEYS: s, r, p, sub. ARGV[4..]: epoch, limit, session id. Moves entries of the session's
 * subscriptions (topics in byte order, as SQLite's ORDER BY) into its pushes; each push is
 * encodeDelivery(entry) (src/store/delivery.ts), built here with `struct.pack`:
 * u16 topic length | topic | u64 offset (two u32) | f64 time | payload, big-endian.
 * Returns {seq, payload, seq, payload…}; {} when fenced or there was nothing.
 */
const DELIVER = `
local h = redis.call('HMGET', KEYS[1], 'epoch', 'pseq')
if not h[1] or tonumber(h[1]) ~= tonumber(ARGV[4]) then return {} end
local limit = tonumber(ARGV[5])
local flat = redis.call('HGETALL', KEYS[4])
local topics, offs = {}, {}
for j = 1, #flat, 2 do
  topics[#topics + 1] = flat[j]
  offs[flat[j]] = tonumber(flat[j + 1])
end
table.sort(topics)
local first = tonumber(h[2])
local head = first
local out = {}
for _, t in ipairs(topics) do
  local room = limit - (head - first)
  if room <= 0 then break end
  local off = offs[t]
  local entries = redis.call('XRANGE', tkey(t), num(off + 1) .. '-0', '+', 'COUNT', room)
  for _, e in ipairs(entries) do
    local f = {}
    for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
    off = tonumber(string.match(e[1], '^(%d+)'))
    local d = struct.pack('>H', #t) .. t ..
      struct.pack('>I4I4d', math.floor(off / 4294967296), off % 4294967296, tonumber(f['at'])) .. f['p']
    head = head + 1
    redis.call('XADD', KEYS[3], num(head) .. '-0', 'p', d)
    out[#out + 1] = head
    out[#out + 1] = d
  end
  if #entries > 0 then redis.call('HSET', KEYS[4], t, num(off)) end
end
if head > first then
  redis.call('HSET', KEYS[1], 'pseq', num(head))
  keep(KEYS[1])
  announce({ARGV[6]}, {})
end
return out
`;

/** A script as ioredis `defineCommand` takes it. */
export interface ScriptDef {
  lua: string;
  numberOfKeys: number;
}

const script = (body: string, numberOfKeys: number): ScriptDef => ({
  lua: `#!lua\n${PRELUDE}${body}`,
  numberOfKeys,
});

/** Every script, by the command name it is defined under. */
export const SCRIPTS = {
  llCreate: script(CREATE, 5),
  llClaim: script(CLAIM, 5),
  llRenew: script(RENEW, 2),
  llRelease: script(RELEASE, 5),
  llSweep: script(SWEEP, 1),
  llDelete: script(DELETE, 5),
  llCommit: script(COMMIT, 4),
  llAck: script(ACK, 4),
  llDeliver: script(DELIVER, 4),
} as const;

type ScriptCall = (...args: Array<string | number | Buffer>) => Promise<unknown>;

/** The commands `defineCommand` adds to a client: `name` (strings) and `nameBuffer` (Buffers). */
export type ScriptCommands = {
  [K in keyof typeof SCRIPTS]: ScriptCall;
} & {
  [K in keyof typeof SCRIPTS as `${K}Buffer`]: ScriptCall;
};
