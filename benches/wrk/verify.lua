-- wrk script for POST /api/v1/verify (benches/load.sh drives it) and its FHIR
-- form POST /fhir/Patient/$resolve-card (benches/fhir.sh).
--
--   wrk -t T -c C -d D -s benches/wrk/verify.lua URL/api/v1/verify -- \
--       TOKENS_FILE API_KEY MODE THREADS [RATE] [CHANNEL] [FORM]
--
-- TOKENS_FILE  one EHC1 token per line (lines starting with '#' are skipped)
-- MODE         cycle: each thread loops over its share of the tokens (static)
--              once:  each token is sent once; a thread whose share runs out
--                     stops (dynamic tokens, the mix). Thread i of T owns lines
--                     i, i+T, i+2T... so no token is sent by two threads.
-- THREADS      the -t value (each thread's Lua state needs it to pick its share)
-- RATE         optional total requests/s to pace at (0 or absent: as fast as
--              the connections go). Pacing is per thread on an absolute
--              schedule, with wrk's delay() hook (millisecond granularity).
-- CHANNEL      optional `channel` field (default "window")
-- FORM         optional: `api` (default, the JSON body of /api/v1/verify) or
--              `fhir` (a FHIR Parameters body; valid/reason read from the
--              Parameters answer)
--
-- Every answer is read: valid / invalid by reason / non-200 are counted and
-- done() prints one line `WRKJSON {...}` with throughput, latency percentiles
-- (milliseconds) and the counts, for load.sh to parse.

-- The WRKJSON fields both scripts share, from beside this file.
local wrkjson = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrkjson.lua")

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local ffi = require("ffi")
ffi.cdef [[
   typedef struct { long tv_sec; long tv_nsec; } hc_timespec;
   int clock_gettime(int clk_id, hc_timespec *tp);
]]
local ts = ffi.new("hc_timespec")
local function now()
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local tokens = {}
local n_tokens = 0
local pos = 0
local mode = "cycle"
local per_thread_rate = 0
local t0 = nil
local slot = 0
local headers = nil
local channel = "window"
local path = "/api/v1/verify"
local form = "api"

-- per-thread counts, read by done() through thread:get
valid = 0
invalid = 0
non200 = 0
sent = 0
filler = 0
exhausted = 0
reasons = ""
local reason_counts = {}

function init(args)
   local file = args[1]
   local key = args[2]
   mode = args[3] or "cycle"
   local nthreads = tonumber(args[4] or "1")
   local rate = tonumber(args[5] or "0") or 0
   if args[6] and args[6] ~= "" then channel = args[6] end
   if args[7] == "fhir" then
      form = "fhir"
      path = "/fhir/Patient/$resolve-card"
   end
   if rate > 0 then per_thread_rate = rate / nthreads end
   local me = id
   local f = assert(io.open(file, "r"), "cannot open " .. tostring(file))
   local i = 0
   for line in f:lines() do
      if line ~= "" and line:sub(1, 1) ~= "#" then
         if i % nthreads == me then
            n_tokens = n_tokens + 1
            tokens[n_tokens] = line
         end
         i = i + 1
      end
   end
   f:close()
   headers = {
      ["Content-Type"] = form == "fhir" and "application/fhir+json" or "application/json",
      ["Authorization"] = "Bearer " .. key,
   }
   if wrk.path and wrk.path ~= "/" then path = wrk.path end
end

function delay()
   if per_thread_rate <= 0 then return 0 end
   local t = now()
   if t0 == nil then t0 = t end
   slot = slot + 1
   local due = t0 + slot / per_thread_rate
   local wait = (due - t) * 1000
   if wait <= 0 then return 0 end
   return math.floor(wait)
end

function body_for(tok)
   if form == "fhir" then
      return '{"resourceType":"Parameters","parameter":[{"name":"token","valueString":"' ..
         tok .. '"},{"name":"channel","valueCode":"' .. channel .. '"}]}'
   end
   return '{"token":"' .. tok .. '","channel":"' .. channel .. '"}'
end

function request()
   pos = pos + 1
   local tok
   if pos > n_tokens then
      if mode == "once" then
         -- Out of tokens: stop this thread. wrk still writes what we return,
         -- so return a filler (answered `malformed`) rather than a reuse.
         exhausted = 1
         filler = filler + 1
         wrk.thread:stop()
         return wrk.format("POST", path, headers, body_for("EXHAUSTED"))
      end
      pos = 1
   end
   tok = tokens[pos]
   sent = sent + 1
   return wrk.format("POST", path, headers, body_for(tok))
end

function response(status, hdrs, body)
   if status ~= 200 then
      non200 = non200 + 1
      return
   end
   if body:find('"valid":true', 1, true) or body:find('"valueBoolean":true', 1, true) then
      valid = valid + 1
   else
      invalid = invalid + 1
      local r = body:match('"reason":"([a-z_]+)"')
         or body:match('"name":"reason","valueCode":"([a-z_]+)"') or "unknown"
      reason_counts[r] = (reason_counts[r] or 0) + 1
      local parts = {}
      for k, v in pairs(reason_counts) do
         table.insert(parts, k .. "=" .. v)
      end
      reasons = table.concat(parts, ",")
   end
end

function done(summary, latency, requests)
   local tv, ti, tn, ts_, tf, te = 0, 0, 0, 0, 0, 0
   local merged = {}
   for _, t in ipairs(threads) do
      tv = tv + (t:get("valid") or 0)
      ti = ti + (t:get("invalid") or 0)
      tn = tn + (t:get("non200") or 0)
      ts_ = ts_ + (t:get("sent") or 0)
      tf = tf + (t:get("filler") or 0)
      te = te + (t:get("exhausted") or 0)
      local r = t:get("reasons") or ""
      for k, v in r:gmatch("([a-z_]+)=(%d+)") do
         merged[k] = (merged[k] or 0) + tonumber(v)
      end
   end
   local rs = {}
   for k, v in pairs(merged) do
      table.insert(rs, string.format('"%s":%d', k, v))
   end
   io.write(string.format(
      'WRKJSON {%s,"valid":%d,"invalid":%d,"non200":%d,"sent":%d,"filler":%d,' ..
      '"threads_exhausted":%d,"reasons":{%s}}\n',
      wrkjson.timing(summary, latency), tv, ti, tn, ts_, tf, te, table.concat(rs, ",")))
end
