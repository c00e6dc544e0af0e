"""The REST API v1, MCP and leak-report endpoints (fvapp/api/), driven over HTTP."""
