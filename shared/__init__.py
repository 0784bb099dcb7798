"""The LLM Cache Proxy's common package: what two or more services use (contracts, topology, RPC, settings)."""
