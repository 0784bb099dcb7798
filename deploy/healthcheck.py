"""Container healthcheck: GET /healthz on the port of the service this container runs (SERVICE).

Docker's HEALTHCHECK runs it; it needs only the standard library (no curl in slim images).
"""

import os
import sys
import urllib.request

PORTS = {
    "gateway": ("GATEWAY_PORT", "8000"),
    "mock_upstream": ("MOCK_PORT", "8100"),
    "cache_worker": ("METRICS_PORT", "9101"),
    "embedder": ("METRICS_PORT", "9102"),
    "llm_worker": ("METRICS_PORT", "9103"),
    "stats_consumer": ("METRICS_PORT", "9104"),
    "tenants": ("METRICS_PORT", "9105"),
}


def main() -> int:
    variable, default = PORTS.get(os.environ.get("SERVICE", "gateway"), ("METRICS_PORT", "9101"))
    url = f"http://127.0.0.1:{os.environ.get(variable) or default}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
