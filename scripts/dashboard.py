"""Build the web dashboard (services/dashboard) when its build is missing or stale: `make run`, `make test`.

npm installs exactly the lockfile (`npm ci`) when node_modules does not match it, then `npm run build`
writes services/dashboard/dist/, which the gateway serves at /dashboard. A hash of the sources and the
lockfile is kept beside the build, so an unchanged checkout builds once. The lockfile's build tools (vite,
@vitejs/plugin-react) run on Node.js ^20.19.0 || >=22.12.0.

`--optional` (`make run`): whatever stops the build (no suitable Node.js, npm ci or the build failing),
say so and go on: the proxy runs without the dashboard. `--if-node` (`make test`): without a suitable
Node.js say so and go on (the browser tests skip, saying why), but a failed npm ci or build fails: with a
Node.js that can build it, a broken build is a defect of the sources or the lockfile, which a test run is
there to catch. Neither flag: any failure fails.
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
# The engines of vite and @vitejs/plugin-react in package-lock.json: "^20.19.0 || >=22.12.0".
NODE_RANGES = (((20, 19, 0), (21, 0, 0)), ((22, 12, 0), None))
NODE_WANTED = "20.19+ or 22.12+"
HOW_TO_GET_NODE = (
    f"The dashboard needs Node.js {NODE_WANTED} and npm to be built. Debian 12's nodejs package is 18: take"
    " Node.js 22 from NodeSource (https://github.com/nodesource/distributions) or Debian 13's nodejs and npm"
    " packages, or see https://nodejs.org/. The proxy runs without the dashboard."
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


def node_version() -> tuple[int, int, int] | None:
    """The installed Node.js as (major, minor, patch); None without node or npm, or when it won't say."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20, check=True).stdout
        major, minor, patch = (int(part) for part in out.strip().lstrip("v").split("-")[0].split(".")[:3])
    except (subprocess.SubprocessError, ValueError, OSError):
        return None
    return major, minor, patch


def node_supported(version: tuple[int, int, int]) -> bool:
    return any(low <= version and (high is None or version < high) for low, high in NODE_RANGES)


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
    if not node_supported(version):
        raise NodeMissing(f"Node.js {'.'.join(map(str, version))} can't run the build tools. " + HOW_TO_GET_NODE)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--optional", action="store_true", help="Whatever goes wrong, warn and exit 0 (make run).")
    when.add_argument(
        "--if-node", action="store_true", help="Without a suitable Node.js warn and exit 0; a failed build fails."
    )
    args = parser.parse_args()
    try:
        if build():
            print(f"Dashboard built into {BUILD.relative_to(ROOT)}/", flush=True)
    except CannotBuild as exc:
        print(f"*** Dashboard not built: {exc}", file=sys.stderr, flush=True)
        if args.optional or (args.if_node and isinstance(exc, NodeMissing)):
            print("*** Going on without the dashboard (/dashboard says how to build it).", file=sys.stderr, flush=True)
            return
        sys.exit(1)


if __name__ == "__main__":
    main()
