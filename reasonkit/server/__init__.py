"""The MCP server (stdio and streamable HTTP) and its side HTTP port (metrics, health)."""
