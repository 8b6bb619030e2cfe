-- A GET of one path: wrk ... -s get.lua URL -- PATH
local request_text

function init(args)
    request_text = wrk.format("GET", args[1])
end

function request()
    return request_text
end
