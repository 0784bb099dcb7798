"""`make run`: start the whole system in the foreground; Ctrl-C stops everything.

Uses the RabbitMQ and Redis of RABBITMQ_URL / REDIS_URL, or those answering on their default ports,
or else starts private nodes of them (data in .data/rabbitmq and .data/redis, scripts/private_nodes.py);
starts embedded PostgreSQL+pgvector when DATABASE_URL is unset (data in .data/postgres), starts the
mock upstream when no upstream is configured, makes (or reuses) the development tenant's API key and
prints it, then runs every service of the Procfile under scripts/supervise.py (a service that exits
is restarted) and prints where the proxy answers once it is ready. Whatever it started is stopped on
the way out, a failed start-up included.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
import urllib.request
from types import FrameType

from scripts import dashboard, supervise
from scripts.private_nodes import RABBITMQ, REDIS, NodeError, PrivateNode, plan, private_node
from scripts.stack import ROOT, check_server, fail, reachable, start_embedded_postgres

PROCESSES = ["embedder", "cache_worker", "llm_worker", "stats_consumer", "tenants", "gateway"]


def main() -> None:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    # RabbitMQ and Redis: the user's (RABBITMQ_URL, REDIS_URL), or those on the default ports, checked
    # up to a login; else private nodes, started below once nothing else stands in the way.
    servers = plan(env)
    problems = list(servers.problems)
    for server in (RABBITMQ, REDIS):
        url = servers.use.get(server.url_variable)
        if url is not None and (problem := check_server(server.name, url)):
            problems.append(problem)
    env.update(servers.use)
    host = env.get("GATEWAY_HOST", "127.0.0.1")
    port = env.get("GATEWAY_PORT", "8000")
    if reachable(host, int(port)):
        # Else the other stack's gateway would answer our readiness check, and ours would die on the port.
        problems.append(
            f"Something already listens on {host}:{port} (another `make run`?): stop it, or set GATEWAY_PORT."
        )
    if problems:
        fail("Cannot start:\n*** " + "\n*** ".join(problems))

    # From here on SIGTERM and SIGHUP unwind like Ctrl-C, so the `finally` below stops what started.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    nodes: list[PrivateNode] = []
    code = 1
    try:
        for server in servers.start:
            node = private_node(server, ROOT / ".data")
            nodes.append(node)  # before it starts: stopped on the way out even if interrupted while starting
            try:
                node.start(announce=lambda line: print(line, flush=True))
            except NodeError as exc:
                fail(f"Cannot start: {exc}")
            env[server.url_variable] = node.url
        code = _run_services(env, host, port)
    finally:
        # A second Ctrl-C must not cut the stopping short (each step has its own time limit).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for node in reversed(nodes):
            node.stop()
    sys.exit(code)


def _run_services(env: dict[str, str], host: str, port: str) -> int:
    """Embedded PostgreSQL, the dev key, then every service under the supervisor until it stops; its exit code."""
    # Redis entries belong with the database they were catalogued in: a fresh .data/ gets a fresh
    # key prefix, so `make clean` can't leave exact entries behind that the admin API can't see.
    env.setdefault("REDIS_PREFIX", f"llmcache-{instance_id()}")
    postgres = None
    if not env.get("DATABASE_URL"):
        postgres = start_embedded_postgres(ROOT / ".data" / "postgres")
        env["DATABASE_URL"] = postgres.get_uri()
        print(f"PostgreSQL+pgvector (embedded) running, data in {ROOT / '.data' / 'postgres'}", flush=True)

    processes = list(PROCESSES)
    configured = ("UPSTREAMS_FILE", "UPSTREAM_BASE_URL", "UPSTREAM_API_KEY", "OPENAI_API_KEY")
    if not any(env.get(name) for name in configured):
        processes.insert(0, "mock_upstream")
        env.setdefault("MOCK_LATENCY_MS", "300")
        print(
            "\n"
            + "!" * 78
            + "\n! No upstream configured (UPSTREAMS_FILE / UPSTREAM_BASE_URL / OPENAI_API_KEY): answers"
            "\n! come from the MOCK upstream on 127.0.0.1:8100 (OpenAI's API, and Anthropic's for claude-* models)."
            "\n! Responses say so in the X-Upstream header.\n" + "!" * 78 + "\n",
            flush=True,
        )

    env["DEV_API_KEY"] = dev_api_key(env)
    print("Development tenant 'dev' (created or reused by the tenants service). Use this key:")
    print(f"API key: {env['DEV_API_KEY']}", flush=True)
    if not env.get("ADMIN_API_KEY"):
        print("The admin API is off: set ADMIN_API_KEY to manage tenants, keys and cache entries over HTTP.")
    threading.Thread(target=_announce_when_ready, args=(f"http://{host}:{port}",), daemon=True).start()

    # Each service is restarted when it exits (as Kubernetes would); Ctrl-C stops them, then Postgres
    # (then the private nodes, in main).
    try:
        return supervise.main(ROOT / "Procfile", processes, env, ROOT)
    finally:
        if postgres is not None:
            postgres.cleanup()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def instance_id() -> str:
    """A random id made with this checkout's .data/ folder (and gone with it)."""
    path = ROOT / ".data" / "instance_id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(4) + "\n")
    return path.read_text().strip()


def dev_api_key(env: dict[str, str]) -> str:
    """The development key: DEV_API_KEY if set, else the one made on the first run (kept in .data/)."""
    if env.get("DEV_API_KEY"):
        return env["DEV_API_KEY"]
    path = ROOT / ".data" / "dev_api_key"
    if path.exists():
        return path.read_text().strip()
    key = "lcp-" + secrets.token_urlsafe(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def _announce_when_ready(base_url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/status", timeout=3) as response:
                if response.status == 200:
                    print(
                        f"\n==> LLM Cache Proxy ready: OpenAI base_url = {base_url}/v1"
                        f"   (stats: {base_url}/api/v1/cache/stats, metrics: {base_url}/metrics)",
                        flush=True,
                    )
                    if (ROOT / "services" / "dashboard" / "dist" / "index.html").is_file():
                        print(f"==> Dashboard: {base_url}/dashboard   (sign in with the API key above)\n", flush=True)
                    else:
                        print(f"==> No dashboard: {dashboard.HOW_TO_GET_NODE}\n", flush=True)
                    return
        except Exception:
            pass
        time.sleep(1)
    print(f"\n==> not ready after 180 s: see the logs above, and {base_url}/status\n", flush=True)


if __name__ == "__main__":
    main()
