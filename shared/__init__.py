"""Common package of the LLM Cache Proxy: what two or more services use (contracts, topology, RPC, settings, observability)."""
