"""Every message that crosses the broker, as pydantic v2 models, one module per channel.

Messages are JSON (never pickle), carry a schema version (`v`) and name themselves by `type`: a
consumer validates each one and dead-letters what it cannot read. Routing and cache metadata travel
in a typed envelope beside the OpenAI payload (`body`), never inside it. Which queue carries which
message, who publishes it and who consumes it: the table in `shared/topology.py`.
"""
