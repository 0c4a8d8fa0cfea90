-- wrk script: POST /auth/token/refresh with the tokens of the file BENCH_TOKENS (one a line),
-- each request the next one, each wrk thread from its own starting point. bench/cache-memory.sh
-- uses it to put every seeded account in the identity cache.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  tokens[#tokens + 1] = line
end
local i = 0
wrk.method = "POST"
wrk.body = ""

request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
