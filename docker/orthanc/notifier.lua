-- imaging-fhir-bridge notifier for Orthanc (tested with Orthanc 1.10, which embeds Lua 5.3).
--
-- Posts signed study events to the bridge's POST /notifications as soon as Orthanc has them:
--   * the first instance of every new series   -> {"studyInstanceUID": ..., "event": "updated"}
--     ("created" for the first series of a study this script has not seen)
--   * OnStableStudy                             -> "updated" (final counts, after StableAge)
--   * OnDeletedStudy / OnDeletedSeries          -> "deleted" / "updated"
-- The bridge syncs the study at once and again after its quiet period, so nothing waits for
-- Orthanc's StableAge on the critical path.
--
-- Configuration: a section of the Orthanc configuration file (read once at start-up):
--   "ImagingBridge": {
--     "Url": "http://bridge:8400/notifications",
--     "Secret": "<the bridge's realtime.webhook_secret>",
--     "Archive": "<the archive's name in the bridge settings; optional>",
--     "Timeout": 5           (seconds; honoured where Orthanc has SetHttpTimeout)
--   }
--
-- Signing: X-Bridge-Timestamp = unix seconds, X-Bridge-Signature = "sha256=" ..
-- hex(HMAC-SHA256(secret, timestamp .. "." .. body)) (RFC 2104 over FIPS 180-4 SHA-256).
-- Orthanc's Lua has no crypto library, so SHA-256 is implemented below with Lua 5.3's
-- native 64-bit integer bit operators, masking every sum to 32 bits.  Notifications are
-- at most a few hundred bytes, so its speed (~0.1 ms per call) does not matter.
--
-- A notification that cannot be delivered (bridge down) is retried once, then logged and
-- dropped: the bridge's scheduled reconciliation finds such studies.

local config = (GetOrthancConfiguration() or {})["ImagingBridge"] or {}
local BRIDGE_URL = config["Url"]
local SECRET = config["Secret"]
local ARCHIVE = config["Archive"]
local TIMEOUT = tonumber(config["Timeout"] or 5)

if BRIDGE_URL == nil or SECRET == nil then
  print("imaging-bridge notifier: ImagingBridge.Url and ImagingBridge.Secret are required; disabled")
end

---------------------------------------------------------------------------- SHA-256 / HMAC

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local M32 = 0xffffffff

local function rrot(x, n)
  return ((x >> n) | (x << (32 - n))) & M32
end

function BridgeSha256(msg)
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local len = #msg
  -- padding (FIPS 180-4 5.1.1): 0x80, zeros, 64-bit big-endian bit length
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack(">I8", len * 8)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      w[i] = string.unpack(">I4", msg, chunk + i * 4)
    end
    for i = 16, 63 do
      local a, b = w[i - 15], w[i - 2]
      local s0 = rrot(a, 7) ~ rrot(a, 18) ~ (a >> 3)
      local s1 = rrot(b, 17) ~ rrot(b, 19) ~ (b >> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M32
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 0, 63 do
      local s1 = rrot(e, 6) ~ rrot(e, 11) ~ rrot(e, 25)
      local ch = (e & f) ~ ((~e) & g)
      local t1 = (h + s1 + ch + K[i + 1] + w[i]) & M32
      local s0 = rrot(a, 2) ~ rrot(a, 13) ~ rrot(a, 22)
      local maj = (a & b) ~ (a & c) ~ (b & c)
      local t2 = (s0 + maj) & M32
      h, g, f, e = g, f, e, (d + t1) & M32
      d, c, b, a = c, b, a, (t1 + t2) & M32
    end
    h0, h1, h2, h3 = (h0 + a) & M32, (h1 + b) & M32, (h2 + c) & M32, (h3 + d) & M32
    h4, h5, h6, h7 = (h4 + e) & M32, (h5 + f) & M32, (h6 + g) & M32, (h7 + h) & M32
  end
  return string.pack(">I4I4I4I4I4I4I4I4", h0, h1, h2, h3, h4, h5, h6, h7)
end

local function xor_pad(key, byte)
  return (key:gsub(".", function(c) return string.char(c:byte() ~ byte) end))
end

-- HMAC-SHA256 (RFC 2104, block size 64), hex encoded
function BridgeHmacHex(key, msg)
  if #key > 64 then key = BridgeSha256(key) end
  key = key .. string.rep("\0", 64 - #key)
  local mac = BridgeSha256(xor_pad(key, 0x5c) .. BridgeSha256(xor_pad(key, 0x36) .. msg))
  return (mac:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

---------------------------------------------------------------------------- posting

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function post(fields)
  if BRIDGE_URL == nil or SECRET == nil then return end
  local parts = {}
  for _, kv in ipairs(fields) do
    table.insert(parts, json_string(kv[1]) .. ":" .. json_string(kv[2]))
  end
  if ARCHIVE ~= nil then table.insert(parts, '"archive":' .. json_string(ARCHIVE)) end
  local body = "{" .. table.concat(parts, ",") .. "}"
  if SetHttpTimeout ~= nil then SetHttpTimeout(TIMEOUT) end  -- absent before Orthanc 1.11
  for attempt = 1, 2 do
    -- a fresh timestamp per attempt: the bridge refuses a replayed signature
    local ts = tostring(os.time())
    local headers = {
      ["Content-Type"] = "application/json",
      ["X-Bridge-Timestamp"] = ts,
      ["X-Bridge-Signature"] = "sha256=" .. BridgeHmacHex(SECRET, ts .. "." .. body),
    }
    if HttpPost(BRIDGE_URL, body, headers) ~= nil then return end
  end
  print("imaging-bridge notifier: could not deliver " .. body)
end

---------------------------------------------------------------------------- Orthanc callbacks

-- Orthanc id -> StudyInstanceUID, so deletes (whose resource Orthanc has forgotten) can be
-- named; series seen, so only the first instance of a series notifies
local studyUids = {}
local seriesStudy = {}
local seenSeries = {}

function OnStoredInstance(instanceId, tags, metadata, origin)
  local seriesUid = tags["SeriesInstanceUID"]
  local studyUid = tags["StudyInstanceUID"]
  if seriesUid == nil or studyUid == nil or seenSeries[seriesUid] then return end
  seenSeries[seriesUid] = true
  local event = "updated"
  local instance = ParseJson(RestApiGet("/instances/" .. instanceId) or "null")
  if instance ~= nil then
    local seriesId = instance["ParentSeries"]
    local series = ParseJson(RestApiGet("/series/" .. seriesId) or "null")
    if series ~= nil then
      seriesStudy[seriesId] = studyUid
      local studyId = series["ParentStudy"]
      if studyUids[studyId] == nil then event = "created" end
      studyUids[studyId] = studyUid
    end
  end
  post({{"studyInstanceUID", studyUid}, {"event", event}})
end

function OnStableStudy(studyId, tags, metadata)
  local studyUid = tags["StudyInstanceUID"]
  if studyUid == nil then return end
  studyUids[studyId] = studyUid
  post({{"studyInstanceUID", studyUid}, {"event", "updated"}})
end

function OnDeletedStudy(studyId)
  local studyUid = studyUids[studyId]
  studyUids[studyId] = nil
  if studyUid ~= nil then
    post({{"studyInstanceUID", studyUid}, {"event", "deleted"}})
  else
    -- unknown to this script (e.g. stored before a restart): Orthanc's change format
    post({{"ChangeType", "Deleted"}, {"ResourceType", "Study"}, {"ID", studyId}})
  end
end

function OnDeletedSeries(seriesId)
  local studyUid = seriesStudy[seriesId]
  seriesStudy[seriesId] = nil
  if studyUid ~= nil then
    post({{"studyInstanceUID", studyUid}, {"event", "updated"}})
  end
end
