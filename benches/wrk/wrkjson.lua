-- What verify.lua and holder_qr.lua both report in their `WRKJSON {...}` line
-- (wrk loads one script; they load this with dofile).

local M = {}

-- Throughput, latency percentiles (milliseconds) and socket errors, as JSON
-- fields without the surrounding braces.
function M.timing(summary, latency)
   local secs = summary.duration / 1e6
   local e = summary.errors
   return string.format(
      '"requests":%d,"seconds":%.3f,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"mean_ms":%.3f,"max_ms":%.3f,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
      latency.mean / 1000, latency.max / 1000,
      e.connect, e.read, e.write, e.status, e.timeout)
end

return M
