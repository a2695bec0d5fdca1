-- POST /api/v1/orders: a unique Idempotency-Key per request, 1-3 distinct lines from the seeded
-- catalogue (BENCH-0001..BENCH-<nskus>), a unique customer email. Expected status 202.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
require "common"

function init(args)
  bench_init(args)
end

local line_fmt = '{"sku":"BENCH-%04d","quantity":%d}'
local body_fmt = '{"customer":{"email":"%s@example.com","name":"Bench Buyer"},"items":[%s],' ..
  '"shipping_address":{"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"},' ..
  '"payment":{"card_number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"},' ..
  '"currency":"EUR"}'

function request()
  counter = counter + 1
  local n = math.random(1, 3)
  local picked = {}
  local lines = {}
  while #lines < n do
    local s = math.random(1, nskus)
    if not picked[s] then
      picked[s] = true
      table.insert(lines, string.format(line_fmt, s, math.random(1, 3)))
    end
  end
  local id = prefix .. "-" .. counter
  local body = string.format(body_fmt, id, table.concat(lines, ","))
  local headers = {
    ["X-Store-ID"] = store,
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = id,
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/api/v1/orders", headers, body)
end
