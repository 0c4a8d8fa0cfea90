-- wrk script for the benchmark suite: POST to the URL given on the command line.
--   BENCH_AUTH    optional bearer token (sent as "Authorization: Bearer ...")
--   BENCH_BODY    optional JSON body (sent with "Content-Type: application/json"); default empty
--   BENCH_COOKIE  optional Cookie header (e.g. "connect.sid=...")
--   BENCH_METHOD  optional method instead of POST (bench/scale.sh's session lookups send GET)
-- At the end it prints one machine-readable line that bench/run.sh parses:
--   RESULT requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N non2xx=N errors=N

wrk.method = os.getenv("BENCH_METHOD") or "POST"
local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. auth
end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
else
  wrk.body = ""
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
