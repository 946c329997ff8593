-- GCRA (generic cell rate algorithm): one key per (bucket, caller) holding the theoretical arrival
-- time (TAT) in microseconds of Redis' own clock, so every API node agrees on "now".
-- KEYS[1]  the caller's key in one bucket
-- ARGV[1]  emission interval in microseconds (window / limit): the cost of one request
-- ARGV[2]  burst: requests a caller who has been idle may make at once
-- ARGV[3]  cost of this request in requests (1)
-- Returns {allowed (0|1), remaining, retry_after_us, reset_after_us}
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance

if now < allow_at then
  -- Refused: nothing is written, so a caller who keeps hammering does not push his reset further.
  return {0, 0, allow_at - now, tat - now}
end

-- %d keeps all digits (tostring would round a 16-digit microsecond count to 14).
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
