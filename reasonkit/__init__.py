"""ReasonKit: structured-reasoning ThinkTools as an MCP server and CLI."""

__version__ = "0.1.0"
