-- Shared by the bench wrk scripts: per-thread counters gathered in done(), printed as one
-- "BENCH {json}" line that bench/wrkrun.py parses. Args: store key nskus seed expected_status.
local threads = {}
local seq = 0

function setup(thread)
  seq = seq + 1
  thread:set("tid", seq)
  table.insert(threads, thread)
end

function bench_init(args)
  store = args[1]
  key = args[2]
  nskus = tonumber(args[3] or "200")
  seed = tonumber(args[4] or "1")
  expected = tonumber(args[5] or "200")
  math.randomseed(seed * 7919 + tid)
  prefix = string.format("w%d-%d-%d-%d", seed, tid, os.time(), math.random(1, 1000000000))
  counter = 0
  good = 0
  bad = 0
  last_bad = 0
end

function response(status, headers, body)
  if status == expected then
    good = good + 1
  else
    bad = bad + 1
    last_bad = status
  end
end

function done(summary, latency, requests)
  local g, b, lb = 0, 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
    local l = t:get("last_bad")
    if l ~= 0 then lb = l end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "good": %d, "bad": %d, "last_bad_status": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, g, b, lb, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max))
end
