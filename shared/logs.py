"""Logging set-up shared by the services: one line per event, `key=value` context, no payloads.

Prompts, answers and keys are never logged at INFO; debug logs may carry request ids only.
"""

from __future__ import annotations

import logging
import sys


def setup_logging(service: str, level: str = "INFO") -> None:
    """Configure the root logger for one service process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO.
    for noisy in (
        "aio_pika",
        "aiormq",
        "httpx",
        "httpx2",
        "httpcore",
        "openai",
        "sentence_transformers",
        "uvicorn.access",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
