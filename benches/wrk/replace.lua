-- RFC 7592 replace, round robin over registered clients:
-- wrk ... -s replace.lua URL -- CREDENTIALS_FILE
local clients = {}
local next_client = 1

function init(args)
    for line in io.lines(args[1]) do
        local path, token, client_id = line:match("^(%S+) (%S+) (%S+)$")
        local body = '{"client_id":"' .. client_id .. '","redirect_uris":["https://app.example.com/cb"],'
            .. '"client_name":"Benchmark client (replaced)",'
            .. '"grant_types":["authorization_code","refresh_token"],"scope":"openid"}'
        clients[#clients + 1] = wrk.format("PUT", path,
            { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
    end
end

function request()
    local text = clients[next_client]
    next_client = next_client % #clients + 1
    return text
end
