//! The Lua scripts that Redis runs atomically: one per limiter acquire (or per renewal
//! of a leased share), one per circuit decision. Both read time from Redis (`TIME`), never from the calling host.

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

/// A leased share of a limiter's rate (the max-min fair share of YouTube's Doorman):
/// one holder's renewal.
///
/// KEYS[1] the shares: a hash with one field per holder (a process's id), its value
/// `"rate burst want expiry"` (permits/s, permits, permits/s, µs on Redis's clock).
/// ARGV: the limit's rate `R` and burst `B` (thousandths of a permit per second and of a
/// permit), this holder's want (thousandths of a permit per second; `-1`: unknown, a
/// newcomer, which wants all of `R`), the holder's id, the lease period (µs), the share
/// the holder still holds (thousandths; `-1` when none is live). Returns `{rate, burst,
/// holders, fair}` in thousandths (`fair`: the max-min fair share of `R` over the
/// holders' wants, which `rate` reaches once the others have shrunk to theirs).
///
/// Expired holders' shares are freed first. The holder's new share is its fair share,
/// but only what the others do not hold (their shares stand until their own renewal or
/// expiry), so the shares of the live holders never sum to more than `R` nor their
/// bursts to more than `B`. The burst share is the rate share's fraction of `B`, at least
/// one permit (a smaller one could never admit a call); a holder that cannot get one
/// permit of burst gets nothing this time. A holder whose field is missing (Redis
/// restarted, or its share lapsed) is re-admitted at most at the share it still holds.
/// One hash per limiter, read whole: `O(holders)` per renewal.
const SHARE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local R, B = ARGV[1] / 1000, ARGV[2] / 1000
local want = tonumber(ARGV[3])
if want < 0 then want = R else want = want / 1000 end
local me, period = ARGV[4], tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local wants, others_r, others_b, mine = {want}, 0, 0, false
for i = 1, #all, 2 do
  if all[i] == me then
    mine = true
  else
    local r, b, w, e = string.match(all[i + 1], '^(%S+) (%S+) (%S+) (%S+)$')
    if e and tonumber(e) > now then
      others_r, others_b = others_r + r, others_b + b
      wants[#wants + 1] = tonumber(w)
    else
      redis.call('HDEL', KEYS[1], all[i])
    end
  end
end
table.sort(wants)
local left, n, level = R, #wants, R
for i, w in ipairs(wants) do
  local even = left / (n - i + 1)
  if w > even then level = even break end
  left = left - w
  level = math.huge
end
local fair = math.min(want, level)
local rate = math.max(0, math.min(fair, R - others_r))
local burst = 0
if rate > 0 then burst = math.max(0, math.min(math.max(B * fair / R, 1), B - others_b)) end
if not mine and tonumber(ARGV[6]) >= 0 then
  rate, burst = math.min(rate, ARGV[6] / 1000), math.min(burst, ARGV[7] / 1000)
end
if burst < 1 or rate <= 0 then rate, burst = 0, 0 end
redis.call('HSET', KEYS[1], me, string.format('%.17g %.17g %.17g %d', rate, burst, want, now + period))
redis.call('PEXPIRE', KEYS[1], math.ceil(period / 1000) * 2 + 1)
return {math.floor(rate * 1000), math.floor(burst * 1000), n, math.floor(fair * 1000)}
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

pub(crate) fn share() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(SHARE))
}

pub(crate) fn hold() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(HOLD))
}

pub(crate) fn circuit() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(CIRCUIT))
}
