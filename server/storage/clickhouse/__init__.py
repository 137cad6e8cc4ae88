"""The ClickHouse trace store (a server over HTTP, or the same engine in-process through chdb)."""
