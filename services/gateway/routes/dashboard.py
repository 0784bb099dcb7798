"""The web dashboard at /dashboard: the static build of services/dashboard (React), served as files.

Same origin as the API it calls, so no CORS and the key never leaves the page's origin. Routes the
app knows (/dashboard/requests, ...) get index.html; hashed assets are cached for a year. Without
a build (no Node where the proxy was set up) /dashboard says how to get one.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)

# The page loads only its own scripts and styles and talks only to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
        " form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Dashboard not built</title>
<p>The dashboard has not been built. <code>make run</code> builds it when Node.js 20.19+ or 22.12+ and
npm are installed. Debian 12's <code>nodejs</code> package is 18: take Node.js 22 from
<a href="https://github.com/nodesource/distributions">NodeSource</a> or Debian 13's <code>nodejs</code>
and <code>npm</code> packages, or see <a href="https://nodejs.org/">nodejs.org</a>. The API works without it.</p>
"""


def not_found() -> Response:
    return Response("Not found\n", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS)


def dashboard_dir(request: Request) -> Path:
    return Path(request.app.state.gateway.settings.dashboard_path())


@router.get("/dashboard")
async def dashboard_root() -> Response:
    return RedirectResponse("/dashboard/", status_code=308)


@router.get("/dashboard/{path:path}")
async def dashboard(request: Request, path: str) -> Response:
    """A file of the build, or the app's page for any route inside it."""
    root = dashboard_dir(request).resolve()
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers=SECURITY_HEADERS)
    if "\x00" in path:  # names no file and no route of the app
        return not_found()
    if path.startswith("assets/"):
        asset = file_in(root, path)
        if asset is not None:
            return FileResponse(
                asset, headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
            )
        return not_found()
    file = file_in(root, path) if path else None
    return FileResponse(file or index, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def file_in(root: Path, path: str) -> Path | None:
    """The build's file at `path`; None when it is outside the build, missing, or a name no file system
    takes (a NUL byte, a name too long), which the path functions raise on."""
    try:
        file = (root / path).resolve()
        return file if file.is_relative_to(root) and file.is_file() else None
    except (OSError, ValueError):
        return None
