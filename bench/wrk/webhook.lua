-- POST /billing/webhook/ with pre-signed, distinct Stripe events.
-- BENCH_WEBHOOK_FILE holds one event a line: "<Stripe-Signature>\t<JSON body>".
-- Thread k of n sends lines k, k+n, k+2n, ... so no two requests carry the same
-- event; a thread that runs out stops (bench/run.py writes more than enough).
local threads = {}
local counter = 0

setup = function(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

init = function(args)
  local stride = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
  events = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_WEBHOOK_FILE")) do
    if i % stride == index then
      local tab = string.find(line, "\t", 1, true)
      table.insert(events, {string.sub(line, 1, tab - 1), string.sub(line, tab + 1)})
    end
    i = i + 1
  end
  sent = 0
  total_events = #events
end

request = function()
  sent = sent + 1
  local event = events[sent]
  if event == nil then
    wrk.thread:stop()
    event = events[#events]
  end
  return wrk.format("POST", "/billing/webhook/", {
    ["Content-Type"] = "application/json",
    ["Stripe-Signature"] = event[1],
  }, event[2])
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + math.min(thread:get("sent"), thread:get("total_events"))
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.3f, "rps": %.2f, "p50_ms": %.3f, '
      .. '"p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "non_2xx": %d, '
      .. '"socket_errors": %d, "events_sent": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout, total))
end
