//! The Lua scripts that Redis runs atomically: one per limiter acquire, one per circuit
//! decision. Both read time from Redis (`TIME`), never from the calling host.

use std::sync::OnceLock;

use redis::Script;

/// GCRA over one key holding the theoretical arrival time (µs, Redis clock).
///
/// KEYS[1] the bucket. ARGV: increment (ns: the interval per permit × the cost),
/// capacity (ns: the interval × the burst), max_wait (µs; 0 = reject when not available
/// now; the limiter always sends a bound, -1 would mean none), ttl (ms; the key's
/// lifetime after a grant without a wait: the capacity plus 1 ms, computed by the
/// caller). Returns one integer: `>= 0` granted, after a wait of that many µs (the
/// caller holds a reservation and must sleep first); `< 0` refused, the permits would
/// be there in `-reply` µs.
///
/// Written for the cost of a call inside Redis, which is most of an acquire's cost above
/// a bare round trip: three commands (the fewest GCRA can do with Redis's clock), few
/// arguments, each number string converted once (Lua arithmetic coerces; `tonumber`
/// would parse twice), the stored time formatted as an integer (`%d`, far cheaper than a
/// float format), the TTL passed as a string on the common path, and a single integer
/// reply.
const LIMITER: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tat = redis.call('GET', KEYS[1])
if tat then
  tat = tat + 0
  if tat < now then tat = now end
else
  tat = now
end
local new_tat = tat + ARGV[1] / 1000
local wait = new_tat - ARGV[2] / 1000 - now
local ttl = ARGV[4]
if wait > 0 then
  local max_wait = ARGV[3] + 0
  if max_wait == 0 or (max_wait > 0 and wait > max_wait) then
    return -math.ceil(wait)
  end
  ttl = math.ceil((new_tat - now) / 1000) + 1
else
  wait = 0
end
redis.call('SET', KEYS[1], string.format('%d', new_tat + 0.5), 'PX', ttl)
return math.ceil(wait)
";

/// GCRA with a lease: takes a batch of the bucket's credit for one process at once, or,
/// when not even the permits asked for are there now, does what [`LIMITER`] does.
///
/// KEYS[1] the bucket, KEYS[2] the holders (a sorted set: one member per process with a
/// live lease, scored by the lease's end, µs). ARGV: increment (ns), capacity (ns),
/// max_wait (µs), ttl (ms; unused, the key's lifetime follows from the time it holds),
/// wanted (ns of credit), holder id, lease period (µs). Returns `{leased, holders,
/// reply}`: `leased` > 0 is the credit granted (µs, at least the increment, this call's
/// permits included); else `reply` is [`LIMITER`]'s (`>= 0` granted after that many µs,
/// `< 0` refused).
///
/// A lease is at most the credit available now, and at most the capacity divided among
/// the live holders (but never less than the permits asked for): a busy process cannot
/// take the whole burst while others hold leases. The credit leaves the bucket when
/// leased, so the bucket never grants more than GCRA allows; a lease only moves when
/// the permits are spent, by at most its period.
const LEASE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local period = ARGV[7] + 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + period, ARGV[6])
redis.call('PEXPIRE', KEYS[2], math.ceil(period / 1000) + 1)
local holders = redis.call('ZCARD', KEYS[2])
local tat = redis.call('GET', KEYS[1])
if tat then
  tat = tat + 0
  if tat < now then tat = now end
else
  tat = now
end
local inc, cap = ARGV[1] / 1000, ARGV[2] / 1000
local lease = math.floor(math.min(ARGV[5] / 1000, cap - (tat - now), math.max(cap / holders, inc)))
if lease >= inc and lease >= 1 then
  local new_tat = tat + lease
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {lease, holders, 0}
end
local new_tat = tat + inc
local wait = new_tat - cap - now
if wait > 0 then
  local max_wait = ARGV[3] + 0
  if max_wait == 0 or (max_wait > 0 and wait > max_wait) then
    return {0, holders, -math.ceil(wait)}
  end
else
  wait = 0
end
redis.call('SET', KEYS[1], string.format('%d', new_tat + 0.5), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {0, holders, math.ceil(wait)}
";

/// Holds a GCRA bucket back: its theoretical arrival time moves to at least `now + ahead`
/// (never back), so that a pause or a server's lower count reaches every process.
///
/// KEYS[1] the bucket. ARGV: ahead (ns). The key lives until the time it holds (plus a
/// millisecond), after which a missing key is the same full bucket. Returns 0.
const HOLD: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local target = now + ARGV[1] / 1000
local tat = redis.call('GET', KEYS[1])
if tat then tat = tat + 0 else tat = now end
if target > tat then
  redis.call('SET', KEYS[1], string.format('%d', target + 0.5), 'PX', math.ceil((target - now) / 1000) + 1)
end
return 0
";

/// The shared circuit: state, generation, open deadline, consecutive failures, probe
/// successes and the failure-rate window in one hash; the count window in a list; the
/// half-open probes in flight in a sorted set (one token per probe, scored by the end of
/// its lease).
///
/// KEYS[1] the hash, KEYS[2] the count-window list, KEYS[3] the probes. ARGV: op (0
/// read, 1 acquire, 2 report), generation seen, outcome (1 failure, 0 success, -1
/// ignored), trip (0 consecutive, 1 rate), threshold (count, or rate in millionths),
/// window kind (0 count, 1 time), window size (calls or buckets), bucket width (µs),
/// min_calls, open period (µs, jitter applied), success threshold, half-open probes, key
/// ttl (ms), probe token (reports; 0 = not a probe), probe lease (µs).
/// Returns `{state (0 closed, 1 open, 2 half-open), generation, open_remaining_µs,
/// decision (0 admitted, 1 admitted as a probe, 2 rejected), probe token}`.
const CIRCUIT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local h, list, probes = KEYS[1], KEYS[2], KEYS[3]
local op, seen, outcome = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local by_rate, threshold = tonumber(ARGV[4]), tonumber(ARGV[5])
local wkind, wn, width = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local min_calls, recovery = tonumber(ARGV[9]), tonumber(ARGV[10])
local needed, max_probes, ttl = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local token, lease = tonumber(ARGV[14]), tonumber(ARGV[15])

local v = redis.call('HMGET', h, 's', 'u', 'g', 'c', 'k')
local s, u, g = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
local c, k = tonumber(v[4]) or 0, tonumber(v[5]) or 0
local changed = false

local function clear()
  redis.call('DEL', list, probes)
  if wkind == 1 then
    local f = {'wf'}
    for i = 0, wn - 1 do f[#f + 1] = 'b' .. i; f[#f + 1] = 'n' .. i; f[#f + 1] = 'f' .. i end
    redis.call('HDEL', h, unpack(f))
  else
    redis.call('HDEL', h, 'wf')
  end
end
local function trip()
  s, u, g, c, k, changed = 1, now + recovery, g + 1, 0, 0, true
  clear()
end
local function close()
  s, u, g, c, k, changed = 0, 0, g + 1, 0, 0, true
  clear()
end

local decision, granted = 0, 0
if op == 1 then
  if s == 1 and now >= u then
    s, g, k, changed = 2, g + 1, 0, true
    redis.call('DEL', probes)
  end
  if s == 1 then
    decision = 2
  elseif s == 2 then
    -- A probe whose process died, or whose call outlived its lease, gives its slot back.
    redis.call('ZREMRANGEBYSCORE', probes, '-inf', now)
    if redis.call('ZCARD', probes) < max_probes then
      granted = redis.call('HINCRBY', h, 'pt', 1)
      redis.call('ZADD', probes, now + lease, granted)
      redis.call('PEXPIRE', probes, ttl)
      decision = 1
    else
      decision = 2
    end
  end
elseif op == 2 and seen == g then
  if s == 2 then
    -- Only a probe still holding its slot counts: a late one lost it to another.
    if token > 0 and redis.call('ZREM', probes, token) == 1 then
      if outcome == 1 then
        trip()
      elseif outcome == 0 then
        k, changed = k + 1, true
        if k >= needed then close() end
      end
    end
  elseif s == 0 and outcome >= 0 then
    changed = true
    if by_rate == 0 then
      if outcome == 1 then
        c = c + 1
        if c >= threshold then trip() end
      else
        c = 0
      end
    else
      local calls, fails = 0, 0
      if wkind == 0 then
        -- The failure count lives with the list: a list that expired takes it along.
        if redis.call('EXISTS', list) == 0 then fails = 0 else fails = tonumber(redis.call('HGET', h, 'wf')) or 0 end
        redis.call('LPUSH', list, outcome)
        fails = fails + outcome
        calls = redis.call('LLEN', list)
        if calls > wn then
          fails = fails - (tonumber(redis.call('RPOP', list)) or 0)
          calls = calls - 1
        end
        redis.call('HSET', h, 'wf', fails)
        redis.call('PEXPIRE', list, ttl)
      else
        local epoch = math.floor(now / width)
        local i = epoch % wn
        if (tonumber(redis.call('HGET', h, 'b' .. i)) or -1) ~= epoch then
          redis.call('HSET', h, 'b' .. i, epoch, 'n' .. i, 0, 'f' .. i, 0)
        end
        redis.call('HINCRBY', h, 'n' .. i, 1)
        if outcome == 1 then redis.call('HINCRBY', h, 'f' .. i, 1) end
        local f = {}
        for j = 0, wn - 1 do f[#f + 1] = 'b' .. j; f[#f + 1] = 'n' .. j; f[#f + 1] = 'f' .. j end
        local w = redis.call('HMGET', h, unpack(f))
        for j = 0, wn - 1 do
          if (tonumber(w[3 * j + 1]) or -1) > epoch - wn then
            calls = calls + (tonumber(w[3 * j + 2]) or 0)
            fails = fails + (tonumber(w[3 * j + 3]) or 0)
          end
        end
      end
      if outcome == 1 and calls >= min_calls and fails * 1000000 >= threshold * calls then trip() end
    end
  end
end
if changed then
  redis.call('HSET', h, 's', s, 'u', string.format('%.0f', u), 'g', g, 'c', c, 'k', k)
end
if op ~= 0 then redis.call('PEXPIRE', h, ttl) end
local remaining = 0
if s == 1 then remaining = math.max(0, u - now) end
return {s, g, remaining, decision, granted}
";

pub(crate) fn limiter() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(LIMITER))
}

pub(crate) fn lease() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(LEASE))
}

pub(crate) fn hold() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(HOLD))
}

pub(crate) fn circuit() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(CIRCUIT))
}
