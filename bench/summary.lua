-- wrk script: GET /payments-summary with the audit window shape the official test uses.
function request()
  return wrk.format("GET", "/payments-summary?from=2025-07-10T12:34:41.000Z&to=2025-07-10T12:34:54.500Z")
end
