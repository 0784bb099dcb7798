"""The embedder: an RPC service on the broker that turns texts into unit-length embedding vectors."""
