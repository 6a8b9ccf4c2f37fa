-- bench/spends.lua: the wrk script that drives POST /v1/problems/{id}/spends.
--
-- Owns: what one benchmark request is (a (token, problem) pair picked at
-- random, a fresh Idempotency-Key, a small approved spend), counting every
-- response by status (wrk itself only counts >= 400 as errors, so a 200
-- replay or a 3xx would go unseen), and writing one JSON result line.
--
-- Settings, from the environment (bench/run sets them):
--   BENCH_PAIRS       file of "TOKEN PROBLEM_ID" lines to pick from
--   BENCH_KEY_PREFIX  prefix of every Idempotency-Key; unique per wrk run
--   BENCH_SPENT_ON    the spends' date (YYYY-MM-DD, not in the future)
--   BENCH_AMOUNT      the spends' amount in USD (default "1.00")
--   BENCH_RESULT      file the JSON result line is appended to
--   BENCH_LABEL       the case's name in that line
--   BENCH_STOP_AFTER  optional: each thread stops after its share of this
--                     many responses (used to build a problem's history)

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

local pairs_list = {}
local counter = 0
local responses = 0
local quota = nil
-- Globals, not locals: done() reads them from each thread with thread:get.
statuses = {}
first_error = ""
local prefix, spent_on, amount

function init(args)
  local path = assert(os.getenv("BENCH_PAIRS"), "BENCH_PAIRS is not set")
  for line in io.lines(path) do
    local token, problem = line:match("^(%S+)%s+(%S+)$")
    if token then
      table.insert(pairs_list, { token = token, path = "/v1/problems/" .. problem .. "/spends" })
    end
  end
  assert(#pairs_list > 0, "no pairs in " .. path)
  prefix = (os.getenv("BENCH_KEY_PREFIX") or "bench") .. "-" .. thread_id
  spent_on = assert(os.getenv("BENCH_SPENT_ON"), "BENCH_SPENT_ON is not set")
  amount = os.getenv("BENCH_AMOUNT") or "1.00"
  local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "")
  if stop_after then
    -- wrk starts one Lua state per thread; the threads share the total evenly.
    quota = math.ceil(stop_after / tonumber(os.getenv("BENCH_THREADS") or "1"))
  end
  math.randomseed(os.time() + thread_id * 7919)
end

function request()
  counter = counter + 1
  local pair = pairs_list[math.random(#pairs_list)]
  local body = '{"amount": {"amount": "' .. amount .. '", "currency": "USD"}, ' ..
    '"merchant": "Bench Supplies", "description": "Benchmark spend ' .. counter .. '", ' ..
    '"spent_on": "' .. spent_on .. '"}'
  return wrk.format("POST", pair.path, {
    ["Authorization"] = "Bearer " .. pair.token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, body)
end

function response(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 201 and first_error == "" then
    first_error = status .. " " .. string.sub(body or "", 1, 300)
  end
  if quota and responses >= quota then
    wrk.thread:stop()
  end
end

local function json_string(s)
  s = s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('[%c]', ' ')
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local totals = {}
  local sample = ""
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      local key = tostring(status)
      totals[key] = (totals[key] or 0) + count
    end
    local error_text = thread:get("first_error")
    if sample == "" and error_text and error_text ~= "" then
      sample = error_text
    end
  end
  local status_parts = {}
  local created, other = 0, 0
  for status, count in pairs(totals) do
    table.insert(status_parts, '"' .. status .. '": ' .. count)
    if status == "201" then created = created + count else other = other + count end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local line = string.format(
    '{"label": %s, "seconds": %.3f, "responses": %d, "created": %d, "not_created": %d, ' ..
    '"rate": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "statuses": {%s}, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "first_error": %s}',
    json_string(os.getenv("BENCH_LABEL") or "wrk"), seconds, summary.requests, created, other,
    created / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, table.concat(status_parts, ", "),
    e.connect, e.read, e.write, e.timeout, json_string(sample))
  local path = os.getenv("BENCH_RESULT")
  if path then
    local f = assert(io.open(path, "a"))
    f:write(line .. "\n")
    f:close()
  end
  io.write(line .. "\n")
end
