"""``/docs`` without a CDN: Swagger UI from the package ``fastapi-offline`` when installed, else a small local
page that lists the routes of ``/openapi.json``. Never a URL outside the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["add_docs", "swagger_assets"]

#: Where the Swagger UI files are served.
ASSETS_URL = "/docs-assets"

_FALLBACK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zeroshot-audio API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}
code{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}li{margin:.4rem 0}</style></head>
<body><h1>zeroshot-audio API</h1>
<p>The machine-readable description is <a href="openapi.json"><code>openapi.json</code></a>; the routes:</p>
<ul id="routes"><li>loading&hellip;</li></ul>
<p>See <code>docs/serve.md</code> for examples with curl and httpx.</p>
<script>
fetch("openapi.json").then(r => r.json()).then(spec => {
  const ul = document.getElementById("routes"); ul.textContent = "";
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const li = document.createElement("li"), c = document.createElement("code");
    c.textContent = method.toUpperCase() + " " + path; li.append(c, " " + (op.summary || ""));
    ul.append(li);
  }
});
</script></body></html>
"""


def swagger_assets() -> Path | None:
    """The folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css`` (package ``fastapi-offline``), or
    None when it is not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css")
    return folder if all((folder / n).is_file() for n in needed) else None


def add_docs(app: Any) -> None:
    """Add ``GET /docs`` (and the assets it loads) to ``app``."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    folder = swagger_assets()
    if folder is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if folder is None:
            return HTMLResponse(_FALLBACK)
        favicon = f"{ASSETS_URL}/favicon.png" if (folder / "favicon.png").is_file() else ""
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="zeroshot-audio API",
                                   swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon)
