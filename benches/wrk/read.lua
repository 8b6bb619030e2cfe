-- RFC 7592 read of one client: wrk ... -s read.lua URL -- PATH TOKEN
local request_text

function init(args)
    request_text = wrk.format("GET", args[1], { ["Authorization"] = "Bearer " .. args[2] })
end

function request()
    return request_text
end
