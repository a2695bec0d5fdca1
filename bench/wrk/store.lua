-- GET /api/v1/store: the empty DRF endpoint behind the same middleware and authentication.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua"
require "common"

function init(args)
  bench_init(args)
  req = wrk.format("GET", "/api/v1/store", {
    ["X-Store-ID"] = store,
    ["Authorization"] = "Bearer " .. key,
  })
end

function request()
  return req
end
