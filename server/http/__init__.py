"""HTTP: the streamable MCP transport, loopback by default, a bearer token anywhere else."""
