"""The MCP server proper: the SDK server and its handlers (tools, resources, prompts), their schemas
and rendering, idempotent calls, client sampling, the process state and SIGHUP reload."""
