"""Mock payment gateway: a standalone, stdlib-only process that simulates a bank.

It exists so OrderFlow's payment code can be exercised end to end against real HTTP
(timeouts, retries, idempotency, declines, outages) without a real acquirer. It must
never import anything from the rest of the project. Run it with ``python -m mock_gateway``.
"""
