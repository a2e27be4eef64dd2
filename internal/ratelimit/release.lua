-- Gives a token back to the bucket KEYS[1] (the attempt succeeded).
-- ARGV as for reserve.lua. A missing key is a full bucket; a bucket that
-- is full again is deleted. Returns 0.
local b = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(b[1])
local last = tonumber(b[2])
if tokens == nil or last == nil then
  return 0
end
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
tokens = math.min(burst, tokens + 1)
if tokens >= burst then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'last', string.format('%d', last))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
