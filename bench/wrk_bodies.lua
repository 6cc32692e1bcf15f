-- wrk script: POST pre-signed bodies read from the file named by $WRK_BODIES, one per line as
-- "<signature>\t<body>"; each wrk thread takes every n-th line so no body is sent twice.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local step = tonumber(os.getenv("WRK_THREADS") or "1")
  lines = {}
  local n = 0
  for line in io.lines(os.getenv("WRK_BODIES")) do
    if n % step == index then
      local tab = line:find("\t", 1, true)
      table.insert(lines, {line:sub(1, tab - 1), line:sub(tab + 1)})
    end
    n = n + 1
  end
  position = 0
end

function request()
  position = position + 1
  local item = lines[((position - 1) % #lines) + 1]
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = item[1]}, item[2])
end
