-- Refresh grants with rotating refresh tokens:
--   wrk ... -s refresh.lua URL -- PATH CLIENT_ID TOKENS_FILE
-- TOKENS_FILE holds one refresh token a line (at least one per connection).
-- Each request takes a token from the pool, and each answer puts back the
-- new one it carries, so every token is used once, as a client would. (wrk
-- calls request() once per thread before any connection and sends nothing
-- of it: that call takes no token.)
local path, client_id
local pool = {}
local calls = 0
local told = false

function init(args)
    path, client_id = args[1], args[2]
    for line in io.lines(args[3]) do
        if #line > 0 then
            table.insert(pool, line)
        end
    end
end

function request()
    calls = calls + 1
    local token = "unsent"
    if calls > 1 then
        token = table.remove(pool, 1) or "exhausted"
    end
    local body = "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. token
    return wrk.format("POST", path, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
    local token = body and string.match(body, '"refresh_token" *: *"([^"]+)"')
    if token then
        table.insert(pool, token)
    elseif not told then
        told = true
        io.stderr:write("first refusal: " .. status .. " " .. (body or "") .. "\n")
    end
end
