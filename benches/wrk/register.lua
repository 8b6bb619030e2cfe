-- RFC 7591 registration: wrk ... -s register.lua URL -- PATH [CREDENTIALS_FILE]
-- With CREDENTIALS_FILE and WRK_COLLECT=1 in the environment, each
-- registered client is appended to it as one line "PATH TOKEN CLIENT_ID" for
-- replace.lua and delete.lua. (Without WRK_COLLECT there is no response
-- function, so wrk does not hand the bodies to Lua at all.)
local request_text
local credentials

body = '{"redirect_uris":["https://app.example.com/cb"],"client_name":"Benchmark client",'
    .. '"grant_types":["authorization_code","refresh_token"],"scope":"openid"}'

function init(args)
    request_text = wrk.format("POST", args[1], { ["Content-Type"] = "application/json" }, body)
    if args[2] then
        credentials = io.open(args[2], "a")
        credentials:setvbuf("line")
    end
end

function request()
    return request_text
end

if os.getenv("WRK_COLLECT") then
    function response(status, headers, answer)
        if status ~= 201 or not credentials then
            return
        end
        local uri = answer:match('"registration_client_uri":"([^"]+)"')
        local token = answer:match('"registration_access_token":"([^"]+)"')
        local client_id = answer:match('"client_id":"([^"]+)"')
        if uri and token and client_id then
            credentials:write(uri:match("^https?://[^/]+(/.*)$"), " ", token, " ", client_id, "\n")
        end
    end
end
