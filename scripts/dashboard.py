"""Build the web dashboard (services/dashboard) when its build is missing or stale: `make run`, `make test`.

npm installs exactly the lockfile (`npm ci`) when node_modules does not match it, then `npm run build`
writes services/dashboard/dist/, which the gateway serves at /dashboard. A hash of the sources and the
lockfile is kept beside the build, so an unchanged checkout builds once. Without Node.js 20+ and npm:
with --optional, say how to get them and go on (the proxy runs without the dashboard); without, fail.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "services" / "dashboard"
BUILD = DASHBOARD / "dist"
STAMP = BUILD / ".source-hash"
INSTALLED = DASHBOARD / "node_modules" / ".lock-hash"
SOURCES = ["src", "index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"]
MIN_NODE = 20
HOW_TO_GET_NODE = (
    "The dashboard needs Node.js 20+ and npm to be built (Debian/Ubuntu: `apt-get install nodejs npm`, or"
    " https://nodejs.org/); the proxy runs without it."
)


class CannotBuild(Exception):
    """npm ci or the build failed."""


class NodeMissing(CannotBuild):
    """Node.js or npm is missing or too old."""


def source_hash() -> str:
    """A hash of everything the build is made from."""
    digest = hashlib.sha256()
    for name in SOURCES:
        path = DASHBOARD / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(DASHBOARD)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def lock_hash() -> str:
    return hashlib.sha256((DASHBOARD / "package-lock.json").read_bytes()).hexdigest()


def is_current() -> bool:
    """Whether the build exists and was made from the present sources."""
    return (BUILD / "index.html").is_file() and STAMP.is_file() and STAMP.read_text().strip() == source_hash()


def node_version() -> int | None:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20, check=True).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (subprocess.SubprocessError, ValueError, OSError):
        return None


def run(command: list[str]) -> None:
    result = subprocess.run(command, cwd=DASHBOARD, capture_output=True, text=True)
    if result.returncode != 0:
        raise CannotBuild(f"`{' '.join(command)}` failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def build() -> bool:
    """Build if stale; True when a build was made, False when the present one is current."""
    if is_current():
        return False
    version = node_version()
    if version is None:
        raise NodeMissing("Node.js or npm is missing. " + HOW_TO_GET_NODE)
    if version < MIN_NODE:
        raise NodeMissing(f"Node.js {version} is too old. " + HOW_TO_GET_NODE)
    npm = shutil.which("npm")
    assert npm is not None
    if not INSTALLED.is_file() or INSTALLED.read_text().strip() != lock_hash():
        print("Installing the dashboard's packages (npm ci, from the lockfile)...", flush=True)
        run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
        INSTALLED.write_text(lock_hash() + "\n")
    print("Building the dashboard (npm run build)...", flush=True)
    run([npm, "run", "build"])
    STAMP.write_text(source_hash() + "\n")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--optional", action="store_true", help="Without Node, warn and exit 0 (a failed build fails).")
    args = parser.parse_args()
    try:
        if build():
            print(f"Dashboard built into {BUILD.relative_to(ROOT)}/", flush=True)
    except CannotBuild as exc:
        print(f"*** Dashboard not built: {exc}", file=sys.stderr, flush=True)
        if not (args.optional and isinstance(exc, NodeMissing)):
            sys.exit(1)


if __name__ == "__main__":
    main()
