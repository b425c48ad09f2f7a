-- wrk script: GET a path with {id} replaced by a random user id (1..BENCH_MAX_USER), with the token.
--   BENCH_PATH=/api/v1/users/{id}/dashboard/ BENCH_TOKEN=... BENCH_MAX_USER=10000 wrk -s bench/random_path.lua ...
local path = os.getenv("BENCH_PATH") or "/api/v1/users/{id}/dashboard/"
local token = os.getenv("BENCH_TOKEN") or ""
local max_user = tonumber(os.getenv("BENCH_MAX_USER") or "10000")
local headers = {}
if token ~= "" then headers["Authorization"] = "Token " .. token end

local counter = 0
function init(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000) % 1000)
end

function request()
  local id = math.random(1, max_user)
  return wrk.format("GET", (path:gsub("{id}", tostring(id))), headers)
end
