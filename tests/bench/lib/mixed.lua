-- wrk script for tests/bench/api-throughput's mixed row: a tenant's
-- read/write mix on one connection per wrk connection.
--   80 %  GET /v1/operations/{id}     (a finished operation of the tenant)
--   10 %  GET /v1/stacks?limit=100    (a page of the tenant's stacks)
--   10 %  POST /v1/test/sleep         {"seconds":0}: a new operation, stored,
--                                     run by a worker and stored again
-- The token and the operation come from the environment (BENCH_TOKEN,
-- BENCH_OP); the choice is a fixed cycle, so every run sends the same mix.

local token = os.getenv("BENCH_TOKEN")
local op = os.getenv("BENCH_OP")
local n = 0

function init(args)
    wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
    n = n + 1
    local slot = n % 10
    if slot == 0 then
        -- Headers given here replace wrk.headers: the token goes again.
        return wrk.format("POST", "/v1/test/sleep", {["Authorization"] = "Bearer " .. token,
                          ["Content-Type"] = "application/json"}, '{"seconds":0}')
    elseif slot == 5 then
        return wrk.format("GET", "/v1/stacks?limit=100")
    end
    return wrk.format("GET", "/v1/operations/" .. op)
end

-- Answers by class, summed over wrk's threads in done().
local threads = {}
client_errors = 0
server_errors = 0

function setup(thread)
    table.insert(threads, thread)
end

function response(status, headers, body)
    if status >= 500 then
        server_errors = server_errors + 1
    elseif status >= 400 then
        client_errors = client_errors + 1
    end
end

function done(summary, latency, requests)
    local c, s = 0, 0
    for _, thread in ipairs(threads) do
        c = c + thread:get("client_errors")
        s = s + thread:get("server_errors")
    end
    io.write(string.format("answers: 4xx=%d 5xx=%d\n", c, s))
end
