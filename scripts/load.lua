-- A realistic mixed workload for wrk: BI and dashboard reads from several roles, and the
-- CRM sync writing leads and touchpoints. Tokens come from the environment (load.sh mints
-- them). A GraphQL response with "errors" counts as an error, as does any non-200.
local tokens = {
  analyst = os.getenv("TOKEN_ANALYST"),
  manager = os.getenv("TOKEN_MANAGER"),
  finance = os.getenv("TOKEN_FINANCE"),
  rep = os.getenv("TOKEN_REP"),
  sync = os.getenv("TOKEN_SYNC"),
}

local period = '{ from: \\"2026-01-01\\", to: \\"2026-04-01\\" }'
local reads = {
  { "analyst", '{ attribution(model: LINEAR, period: ' .. period .. ') { totalRevenue { amount } rows { key revenue { amount } } } }' },
  { "analyst", '{ attribution(model: W_SHAPED, period: ' .. period .. ', stage: OPPORTUNITY, groupBy: CHANNEL) { totalConversions rows { key conversions } } }' },
  { "manager", '{ campaignRoi(model: POSITION_BASED, period: ' .. period .. ') { campaign { externalId } cost { amount } attributedRevenue { amount } roi } }' },
  { "manager", '{ funnel(period: ' .. period .. ') { cohortSize stages { stage entered convertedToNext } } }' },
  { "manager", '{ leakage(period: ' .. period .. ') { mqls leaked leakageRate } }' },
  { "rep", '{ leads(first: 50, stage: MQL) { totalCount nodes { externalId stage score touchpoints { occurredAt } } } }' },
  { "finance", '{ opportunities(first: 50, status: WON) { totalCount nodes { externalId amount { amount } revenue { amount { amount } } } } }' },
  { "analyst", '{ campaigns(first: 100) { totalCount nodes { externalId channel cost { amount } } } }' },
}

local counter = 0
local thread_id = 0
errors = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

local function body(query)
  return '{"query":"' .. query .. '"}'
end

function request()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json" }
  -- One request in five is the sync job writing.
  if counter % 5 == 0 then
    headers["Authorization"] = "Bearer " .. tokens.sync
    local ext = "load-" .. thread_id .. "-" .. counter
    local q
    if counter % 10 == 0 then
      q = 'mutation { upsertLead(input: { externalId: \\"' .. ext .. '\\", email: \\"' .. ext .. '@example.com\\", createdAt: \\"2026-02-01T00:00:00Z\\" }) { id } }'
    else
      q = 'mutation { recordTouchpoint(input: { externalId: \\"t' .. ext .. '\\", leadExternalId: \\"L00000002\\", campaignExternalId: \\"c0001\\", kind: \\"visit\\", occurredAt: \\"2026-02-01T00:00:00Z\\" }) { id } }'
    end
    return wrk.format("POST", "/graphql", headers, body(q))
  end
  local pick = reads[(counter % #reads) + 1]
  headers["Authorization"] = "Bearer " .. tokens[pick[1]]
  return wrk.format("POST", "/graphql", headers, body(pick[2]))
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    if errors <= 3 then
      io.stderr:write("error response " .. status .. ": " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local graphql_errors = 0
  for _, t in ipairs(threads) do
    graphql_errors = graphql_errors + t:get("errors")
  end
  io.write(string.format("requests: %d in %.1f s = %.0f req/s\n", summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("errors: %d GraphQL/HTTP, %d socket (connect %d, read %d, write %d, timeout %d)\n",
    graphql_errors, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
