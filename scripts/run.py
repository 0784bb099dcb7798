"""`make run`: start the whole system in the foreground; Ctrl-C stops everything.

Checks RabbitMQ and Redis, starts embedded PostgreSQL+pgvector when DATABASE_URL is unset (data in
.data/postgres), starts the mock upstream when no upstream is configured, then runs every
service with honcho (see Procfile) and prints where the proxy answers once it is ready.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from scripts.stack import ROOT, check_dependencies, fail, start_embedded_postgres

PROCESSES = ["embedder", "cache_worker", "llm_worker", "stats_consumer", "gateway"]


def main() -> None:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    rabbitmq_url = env.setdefault("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    problems = check_dependencies(rabbitmq_url, redis_url)
    if problems:
        fail("Cannot start:\n*** " + "\n*** ".join(problems))

    postgres = None
    if not env.get("DATABASE_URL"):
        postgres = start_embedded_postgres(ROOT / ".data" / "postgres")
        env["DATABASE_URL"] = postgres.get_uri()
        print(f"PostgreSQL+pgvector (embedded) running, data in {ROOT / '.data' / 'postgres'}", flush=True)

    processes = list(PROCESSES)
    if not (env.get("UPSTREAM_BASE_URL") or env.get("UPSTREAM_API_KEY") or env.get("OPENAI_API_KEY")):
        processes.insert(0, "mock_upstream")
        env.setdefault("MOCK_LATENCY_MS", "300")
        print(
            "\n" + "!" * 78 + "\n! No upstream configured (UPSTREAM_BASE_URL / OPENAI_API_KEY): answers come from the"
            "\n! MOCK upstream on 127.0.0.1:8100. Responses say so in the X-Upstream header.\n" + "!" * 78 + "\n",
            flush=True,
        )

    host = env.get("GATEWAY_HOST", "127.0.0.1")
    port = env.get("GATEWAY_PORT", "8000")
    threading.Thread(target=_announce_when_ready, args=(f"http://{host}:{port}",), daemon=True).start()

    # Ctrl-C reaches honcho too (same process group); it stops the services, then we stop Postgres.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start", *processes],
        env=env,
        cwd=ROOT,
    )
    signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())
    code = honcho.wait()
    if postgres is not None:
        postgres.cleanup()
    sys.exit(code)


def _announce_when_ready(base_url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=3) as response:
                if response.status == 200:
                    print(
                        f"\n==> LLM Cache Proxy ready: OpenAI base_url = {base_url}/v1"
                        f"   (stats: {base_url}/api/v1/cache/stats, metrics: {base_url}/metrics)\n",
                        flush=True,
                    )
                    return
        except Exception:
            pass
        time.sleep(1)
    print(f"\n==> not ready after 180 s: see the logs above, and {base_url}/readyz\n", flush=True)


if __name__ == "__main__":
    main()
