-- wrk script: POST chat completions built from a file of JSON bodies, and count cache results.
--
-- wrk -s bench/wrk_chat.lua URL -- BODIES_FILE MODE THREADS [HIT_HEADER]
--   BODIES_FILE  one JSON request body per line
--   MODE         "cycle": every connection cycles through all the bodies (exact or semantic hits)
--                "unique": each body is sent once across all threads (misses); a thread that runs
--                          out starts again from its first body
--   THREADS      wrk's -t (the stride of "unique")
--   HIT_HEADER   the response header whose value is counted (default x-cache)
-- done() prints one line "RESULT {json}" with the latency percentiles (microseconds) and counts.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, mode = args[1], args[2]
  hit_header = string.lower(args[4] or "x-cache")
  bodies = {}
  for line in io.lines(path) do
    if #line > 0 then table.insert(bodies, line) end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local stride = 1
  position = 1
  if mode == "unique" then
    stride = tonumber(args[3])
    position = id
  end
  step = stride
  results = {}
  statuses = {}
end

function request()
  local body = bodies[position]
  position = position + step
  if position > #bodies then position = ((position - 1) % step) + 1 end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  local value = "none"
  for name, v in pairs(headers) do
    if string.lower(name) == hit_header then value = v end
  end
  results[value] = (results[value] or 0) + 1
  statuses[status] = (statuses[status] or 0) + 1
end

local function merge(into, from)
  for k, v in pairs(from) do into[tostring(k)] = (into[tostring(k)] or 0) + v end
end

local function encode(map)
  local parts = {}
  for k, v in pairs(map) do table.insert(parts, string.format("%q:%d", k, v)) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local cache, status = {}, {}
  for _, thread in ipairs(threads) do
    merge(cache, thread:get("results"))
    merge(status, thread:get("statuses"))
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"cache":%s,"status":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, encode(cache), encode(status)))
end
