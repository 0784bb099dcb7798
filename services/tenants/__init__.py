"""Tenants service: tenants and their API keys (hashed at rest), key resolution for the gateways."""
