-- RFC 7592 delete, each registered client once: wrk ... -s delete.lua URL --
-- CREDENTIALS_FILE. The run stops once every client has been answered, so
-- requests/s is the rate of deletes, not of 401s for clients already gone
-- (only the few requests still in flight at the end can be those).
local clients = {}
local next_client = 1
local answered = 0

function init(args)
    for line in io.lines(args[1]) do
        local path, token = line:match("^(%S+) (%S+) ")
        clients[#clients + 1] = wrk.format("DELETE", path, { ["Authorization"] = "Bearer " .. token })
    end
end

function request()
    local text = clients[next_client]
    next_client = next_client % #clients + 1
    return text
end

function response()
    answered = answered + 1
    if answered == #clients then
        wrk.thread:stop()
    end
end
