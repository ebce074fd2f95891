-- wrk script for GET /api/v1/holder/qr.png and /qr.svg (benches/load.sh drives it).
--
--   wrk -t T -c C -d D -s benches/wrk/holder_qr.lua URL/api/v1/holder/qr.png -- HOLDER_CREDENTIAL
--
-- Every request carries the holder credential (hch_...) as a bearer token and
-- gets a fresh dynamic token drawn as a QR image. The service's per-holder
-- rate limit must be raised for this (HEALTHCARD_HOLDER_RATE_PER_MIN), or
-- nearly every answer is a 429. Answers are counted by status and size;
-- done() prints one line `WRKJSON {...}` for load.sh to parse.

-- The WRKJSON fields both scripts share, from beside this file.
local wrkjson = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrkjson.lua")

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local req = nil

-- per-thread counts, read by done() through thread:get
ok = 0
non200 = 0
limited = 0
body_bytes = 0

function init(args)
   local credential = assert(args[1], "holder credential missing")
   req = wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. credential })
end

function request()
   return req
end

function response(status, hdrs, body)
   if status == 200 then
      ok = ok + 1
      body_bytes = body_bytes + #body
   else
      non200 = non200 + 1
      if status == 429 then limited = limited + 1 end
   end
end

function done(summary, latency, requests)
   local tok, tn, tl, tb = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      tok = tok + (t:get("ok") or 0)
      tn = tn + (t:get("non200") or 0)
      tl = tl + (t:get("limited") or 0)
      tb = tb + (t:get("body_bytes") or 0)
   end
   io.write(string.format(
      'WRKJSON {%s,"ok":%d,"non200":%d,"rate_limited":%d,"mean_body_bytes":%.0f}\n',
      wrkjson.timing(summary, latency), tok, tn, tl, tok > 0 and tb / tok or 0))
end
