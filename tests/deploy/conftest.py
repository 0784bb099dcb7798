"""Fixtures of the deploy checks: rendered Kubernetes manifests (the running stack comes from tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).parent / "schemas"
TARGETS = ("base", "overlays/dev", "overlays/prod")


def render(target: str, tmp: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a copy of deploy/k8s (prod gets secrets.env from its example)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (which bundles kustomize) is not installed: the manifests can't be rendered")
    tree = tmp / "k8s"
    if not tree.exists():
        shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets.env"))
        shutil.copy(tree / "overlays/prod/secrets.env.example", tree / "overlays/prod/secrets.env")
    result = subprocess.run(
        [kubectl, "kustomize", str(tree / target)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("kustomize")
    return {target: render(target, tmp) for target in TARGETS}
