-- wrk: GET /r/<code> with a code drawn at random from $CODES_FILE (one code a line).
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
request = function()
  return wrk.format("GET", "/r/" .. codes[math.random(#codes)])
end
