-- RFC 7592 delete, each registered client once (then 401s, which wrk counts
-- as non-2xx): wrk ... -s delete.lua URL -- CREDENTIALS_FILE
local clients = {}
local next_client = 1

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
