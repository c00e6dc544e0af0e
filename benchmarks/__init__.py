"""Benchmarks, run as modules from the repository root: `python -m benchmarks.compare` (make bench),
`python -m benchmarks.api_auth`, `python -m benchmarks.mcp_vs_rest`."""
