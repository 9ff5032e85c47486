-- wrk script: every request is one JSON-RPC call of `add` (bench/metrics_overhead.py).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}'
