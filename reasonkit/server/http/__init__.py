"""The HTTP transport: the Starlette apps (`/mcp`, probes, `/metrics`, run pages), the gate in front
of them (host, origin, token, rate limit, body, run slots), connection hygiene and `/health`. It knows
the MCP server only by type, so the stdio server never imports it."""
