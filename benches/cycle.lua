-- wrk script: GET request paths from a list file in turn, round and round, so a run touches
-- many distinct URLs instead of hammering one.
--
--   wrk -t1 -c16 -d15s -s benches/cycle.lua http://127.0.0.1:PORT -- LIST
--
-- LIST holds one absolute path per line ("/a1/video_720p/7.m4s"); other lines are ignored.
-- At the end one line is printed for load.sh to parse:
--   WRK_RESULT {"requests":..,"bytes":..,"duration_us":..,"errors":{..},"latency_us":{..}}
-- where bytes counts whole responses (status line and headers included).

local thread_count = 0

-- Main state: number each thread so that with -t>1 they start at different places.
function setup(thread)
  thread:set("thread_no", thread_count)
  thread_count = thread_count + 1
end

local requests_ = {}
local pos = 1

-- Thread state: read the list and format every request once, up front, so the load
-- generator spends its core on the socket and not on building strings.
function init(args)
  local file = args[1]
  assert(file, "usage: wrk ... -s cycle.lua URL -- LIST")
  local f = assert(io.open(file, "r"))
  for line in f:lines() do
    if line:sub(1, 1) == "/" then
      requests_[#requests_ + 1] = wrk.format("GET", line)
    end
  end
  f:close()
  assert(#requests_ > 0, "no paths in " .. file)
  pos = ((thread_no or 0) * 7919) % #requests_ + 1
end

function request()
  local r = requests_[pos]
  pos = pos % #requests_ + 1
  return r
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"bytes":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
