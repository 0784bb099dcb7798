"""What users would pick instead, installed from PyPI into their own virtual environments and run
against the same mock upstream: LiteLLM's proxy with its Redis cache, and GPTCache's server.

Each rival is a `Rival`: `prepare()` installs it (or says why it can't), `start()` runs it as a
process, `stop()` ends that process. Environments live under .data/bench-venvs/ (git-ignored).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.integration.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".data" / "bench-venvs"


class Unavailable(Exception):
    """The rival can't be installed or started here; the message says why (the benchmark skips it)."""


def _venv(name: str, packages: list[str], probe: str) -> Path:
    """A virtual environment under .data/bench-venvs with `packages`, created and installed on first use."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return venv
    VENVS.mkdir(parents=True, exist_ok=True)
    print(f"  installing {' '.join(packages)} into {venv.relative_to(ROOT)} (first run: a few minutes)", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        errors = [x for x in done.stderr.splitlines() if not x.startswith("WARNING")]
        raise Unavailable(f"pip install {' '.join(packages)} failed: {' '.join(errors[-3:])}")
    check = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    if check.returncode != 0:
        raise Unavailable(f"{name} installed but `{probe}` fails: {check.stderr.strip().splitlines()[-1:]}")
    return venv


@dataclass
class Rival:
    """A caching proxy under test: where to send chat completions, with which headers."""

    name: str
    log_dir: Path
    mock_url: str  # the mock upstream's base, http://127.0.0.1:<port>
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hit_header: str = "x-cache"  # what the load generator counts; rivals without one report "none"
    semantic: str | None = None  # why there is no semantic workload, or None when there is one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def prepare(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def clean_up(self) -> None:
        """Delete what the rival left behind (Redis keys)."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def logs(self) -> str:
        path = self.log_dir / f"{self.name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _spawn(self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        with open(self.log_dir / f"{self.name}.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=cwd)

    def _wait_http(self, path: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise Unavailable(f"{self.name} exited with {self.process.returncode}: {self.logs()[-1500:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", headers=self.headers, timeout=3).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise Unavailable(f"{self.name} not answering on port {self.port} after {timeout:.0f}s: {self.logs()[-1500:]}")


@dataclass
class LiteLLM(Rival):
    """LiteLLM's proxy (`litellm[proxy]`) with its Redis cache (exact match), one model on the mock."""

    workers: int = 2  # one per core, as a user would run it on this machine
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = field(default_factory=lambda: f"bench-litellm-{uuid.uuid4().hex[:8]}")
    semantic: str | None = (
        "LiteLLM's semantic cache (redis-semantic / qdrant-semantic) needs an embeddings API and "
        "Redis Stack's vector search; not run"
    )
    hit_header: str = "x-litellm-cache-key"

    def prepare(self) -> None:
        self.venv = _venv("litellm", ["litellm[proxy]"], "import litellm.proxy.proxy_server")

    def start(self) -> None:
        master_key = f"sk-bench-{uuid.uuid4().hex}"
        self.headers = {"Authorization": f"Bearer {master_key}"}
        parsed = httpx.URL(self.redis_url)
        config = {
            "model_list": [
                {
                    "model_name": "gpt-4o-mini",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": f"{self.mock_url}/v1",
                        "api_key": "sk-mock",
                    },
                }
            ],
            "litellm_settings": {
                "cache": True,
                "cache_params": {
                    "type": "redis",
                    "host": parsed.host,
                    "port": parsed.port or 6379,
                    "namespace": self.namespace,
                },
                "set_verbose": False,
                "telemetry": False,
            },
            "general_settings": {"master_key": master_key},
        }
        config_file = self.log_dir / "litellm.json"  # YAML is a superset of JSON
        config_file.write_text(json.dumps(config, indent=2))
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.log_dir),
            "LITELLM_LOG": "ERROR",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "True",
        }
        self._spawn(
            [
                str(self.venv / "bin" / "litellm"),
                "--config",
                str(config_file),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--num_workers",
                str(self.workers),
            ],
            env=env,
            cwd=self.log_dir,
        )
        self._wait_http("/health/liveliness")

    def clean_up(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(f"{self.namespace}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@dataclass
class GPTCache(Rival):
    """GPTCache's server (`gptcache_server -o True`): its OpenAI proxy route, semantic, on the mock.

    Its default embedding (ONNX paraphrase-albert) is fetched from the Hugging Face hub on first
    use; without network access it can't start, and the benchmark skips it saying so.
    """

    semantic: str | None = None
    hit_header: str = "none"  # GPTCache marks no header; the mock's call count tells hits from misses

    # gptcache 0.1.44 needs the pre-1.0 openai SDK and installs its extras at run time: preinstall them.
    packages = ("gptcache", "openai==0.28.1", "fastapi", "uvicorn", "onnxruntime", "transformers")

    def prepare(self) -> None:
        self.venv = _venv("gptcache", list(self.packages), "import gptcache, openai, onnxruntime, fastapi")
        probe = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", "from gptcache.embedding import Onnx; Onnx()"],
            capture_output=True,
            text=True,
            env={"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": str(self.log_dir), "HF_HUB_OFFLINE": "1"},
            timeout=300,
        )
        if probe.returncode != 0:
            lines = [x for x in probe.stderr.strip().splitlines() if x.strip()]
            raise Unavailable(
                f"its default ONNX embedding model can't load: {lines[-1] if lines else probe.returncode}"
            )

    def start(self) -> None:
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.log_dir),
            "OPENAI_API_BASE": f"{self.mock_url}/v1",
            "OPENAI_API_KEY": "sk-mock",
        }
        self.headers = {"Authorization": "Bearer sk-mock"}
        workdir = self.log_dir / "gptcache"
        workdir.mkdir(exist_ok=True)
        command = [str(self.venv / "bin" / "gptcache_server"), "-s", "127.0.0.1", "-p", str(self.port), "-o", "True"]
        self._spawn(command, env=env, cwd=workdir)
        self._wait_http("/")
