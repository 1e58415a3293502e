-- wrk script of P6: POST /v1/agents/{slug}/executions with empty inputs (the URL names the agent,
-- the Authorization header comes from the command line).
wrk.method = "POST"
wrk.body = '{"inputs":{}}'
wrk.headers["content-type"] = "application/json"
