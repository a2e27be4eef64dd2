-- Takes a token from the bucket KEYS[1] for one login attempt.
-- ARGV: capacity, tokens per millisecond, key lifetime in milliseconds.
-- Returns 0 when a token was taken, else the milliseconds until one is
-- back (and nothing is taken). The bucket is a hash {tokens, last}; a
-- missing key is a full bucket.
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(b[1])
local last = tonumber(b[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
if tokens < 1 then
  return math.max(1, math.ceil((1 - tokens) / rate))
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'last', string.format('%d', last))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
