-- wrk script: a request with {id} in its path (and body) replaced by a random id in 1..BENCH_MAX_ID,
-- with the API token when one is given.
--   BENCH_PATH=/api/v1/users/{id}/ BENCH_TOKEN=... BENCH_MAX_ID=10000 wrk -s bench/random_path.lua ...
--   BENCH_METHOD=POST BENCH_BODY_FILE=body.json ...   (a JSON body read once; {id} replaced in it too)
--   BENCH_TOKEN_FILE=tokens.txt ...   (one token a line: each request carries one of them at random,
--                                      so that no one token's throttle budget is reached)
local path = os.getenv("BENCH_PATH") or "/health"
local method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN") or ""
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or os.getenv("BENCH_MAX_USER") or "10000")
local body = nil
local body_file = os.getenv("BENCH_BODY_FILE") or ""
if body_file ~= "" then
  local f = assert(io.open(body_file, "r"))
  body = f:read("*a")
  f:close()
end
local tokens = {}
local token_file = os.getenv("BENCH_TOKEN_FILE") or ""
if token_file ~= "" then
  for line in io.lines(token_file) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
end
local headers = {}
if token ~= "" then headers["Authorization"] = "Token " .. token end
if body then headers["Content-Type"] = "application/json" end

function init(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000) % 1000)
end

function request()
  local id = tostring(math.random(1, max_id))
  local b = nil
  if body then b = (body:gsub("{id}", id)) end
  if #tokens > 0 then headers["Authorization"] = "Token " .. tokens[math.random(1, #tokens)] end
  return wrk.format(method, (path:gsub("{id}", id)), headers, b)
end
