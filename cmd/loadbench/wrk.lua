-- The load of phases (b), (c) and (d) when wrk drives them: one thread, every request changing a
-- random user's username to one no other request of the benchmark uses. LB_KIND is "put",
-- "mutation" or "put-keyed" (a PUT with an Idempotency-Key of its own); LB_PREFIX keeps the
-- usernames and keys of one wrk run apart from every other's.
local kind = os.getenv("LB_KIND")
local token = os.getenv("LB_TOKEN")
local users = tonumber(os.getenv("LB_USERS"))
local prefix = os.getenv("LB_PREFIX")
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
local counter = 0
local threads = {}
errors = 0
first_error = ""

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tonumber(os.getenv("LB_SEED")))
end

function request()
  counter = counter + 1
  local id = math.random(1, users)
  local name = prefix .. counter
  if kind == "put" then
    return wrk.format("PUT", "/users/" .. id, headers, '{"username":"' .. name .. '"}')
  end
  if kind == "put-keyed" then
    headers["Idempotency-Key"] = name
    local req = wrk.format("PUT", "/users/" .. id, headers, '{"username":"' .. name .. '"}')
    headers["Idempotency-Key"] = nil
    return req
  end
  return wrk.format("POST", "/graphql", headers,
    '{"query":"mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id username email version } }",' ..
    '"variables":{"id":"' .. id .. '","in":{"username":"' .. name .. '"}}}')
end

-- Non-2xx answers and GraphQL errors count as errors.
function response(status, headers, body)
  if status < 200 or status > 299 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if first_error == "" then
      first_error = "status " .. status .. ": " .. string.sub(body, 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local e, first = 0, ""
  for _, t in ipairs(threads) do
    e = e + t:get("errors")
    if first == "" then first = t:get("first_error") end
  end
  local s = summary.errors
  io.write(string.format("LOADBENCH requests=%d duration_us=%d errors=%d socket_errors=%d p50_us=%d p99_us=%d first_error=%s\n",
    summary.requests, summary.duration, e, s.connect + s.read + s.write + s.timeout,
    latency:percentile(50), latency:percentile(99), first))
end
