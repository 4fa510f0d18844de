"""How much the server takes on: run slots (per process, and shared through Redis) and per-client
rate limits. Below the HTTP gate and the MCP handlers, which both ask it before work starts."""
