-- wrk script: POST /payments with a distinct correlationId per request (per thread prefix +
-- counter), amount 19.90, as the official test sends.
local counter = 0
local prefix = 0

function setup(thread)
  prefix = prefix + 1
  thread:set("prefix", prefix)
end

function init(args)
  prefix = prefix or 1
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local id = string.format("%08x-0000-4000-8000-%012x", prefix, counter)
  local body = '{"correlationId":"' .. id .. '","amount":19.90}'
  return wrk.format("POST", "/payments", nil, body)
end
