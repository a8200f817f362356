"""The web UI at ``/ui``: a Gradio Blocks app mounted into vLLM's server by the plugin.

Three tabs (``serving.ui.tabs``: 文本分类 classification, 信息抽取 extraction, 自由Prompt free
prompt) and a status light. The page is a view: every request goes through
``serving.ui.backend.Backend`` (the REST API's request models, service and completion handler)
and is shown with ``serving.ui.view``'s pure functions. Errors show the API's own sentence in
an error box under the button, never an error page or a stack trace.

The light is refreshed on load and every ``STATUS_REFRESH_S`` seconds; if the page hears
nothing for ``STALE_AFTER_S`` seconds (the server is gone), a script in the page turns it red
itself.

Access is the gate's business (``serving.http.gate``, ``serving.ui.auth``): Gradio's own login is
not used, and the Gradio app is given no route the page does not need (``prune_gradio_routes``).
A path under ``/ui`` that no route takes is a 404, a method a route does not take a 405 with
``Allow``, both in the API's common error body, not Gradio's ``{"detail": …}``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount

from serving.core.errors import error_body
from serving.ui.auth import UI_PATH
from serving.ui.backend import Backend
from serving.ui.tabs import classify_tab, extract_tab, prompt_tab
from serving.ui.view import status_html

__all__ = [
    "GRADIO_ROUTES",
    "STALE_AFTER_S",
    "STATUS_REFRESH_S",
    "build_ui",
    "mount_ui",
    "prune_gradio_routes",
]

STATUS_REFRESH_S = 5.0
STALE_AFTER_S = 2 * STATUS_REFRESH_S + 2

CSS = """
.seqgpt-status { font-size: 0.95rem; }
.seqgpt-light { font-size: 1.2rem; }
.seqgpt-light.ok { color: #16a34a; }
.seqgpt-light.down, .seqgpt-light.lost { color: #dc2626; }
.seqgpt-facts, .seqgpt-checked { color: #6b7280; margin-left: 0.5rem; }
.seqgpt-error { color: #b91c1c; background: #fef2f2; border: 1px solid #fecaca;
                border-radius: 6px; padding: 0.6rem 0.8rem; }
"""

# A dead man's switch: every refresh re-draws the light with the time of its check, so a page
# that sees the same check for STALE_AFTER_S seconds has lost the server and says so itself.
STALE_JS = """
() => {
  const staleMs = STALE_MS;
  let seen = null;
  let since = Date.now();
  setInterval(() => {
    const status = document.querySelector('#seqgpt-status .seqgpt-status');
    if (!status) return;
    const checked = status.querySelector('.seqgpt-checked').textContent;
    if (checked !== seen) { seen = checked; since = Date.now(); return; }
    if (status.dataset.state === 'lost' || Date.now() - since < staleMs) return;
    status.dataset.state = 'lost';
    status.querySelector('.seqgpt-light').className = 'seqgpt-light lost';
    status.querySelector('.seqgpt-reason').textContent =
      '服务器无应答 The server does not answer.';
  }, 1000);
}
""".replace("STALE_MS", str(int(STALE_AFTER_S * 1000)))

# The Gradio routes the page uses (relative to the mount); every other one is removed.
GRADIO_ROUTES = frozenset(
    {
        "/",
        "/config",
        "/config/",
        "/theme.css",
        "/favicon.ico",
        "/manifest.json",
        "/robots.txt",
        "/svelte/{path:path}",
        "/static/{path:path}",
        "/assets/{path:path}",
        "/gradio_api/info",
        "/gradio_api/info/",
        "/gradio_api/app_id",
        "/gradio_api/app_id/",
        "/gradio_api/queue/join",
        "/gradio_api/run/{api_name}",  # events run without the queue (filling in an example)
        "/gradio_api/run/{api_name}/",
        "/gradio_api/queue/data",
        "/gradio_api/queue/status",
        "/gradio_api/heartbeat/{session_hash}",
        "/gradio_api/cancel",
        "/gradio_api/reset",
        "/gradio_api/reset/",
        "/gradio_api/startup-events",
        "/gradio_api/theme.css",
    }
)


def _status_refresher(backend: Backend | None) -> Callable[[], Awaitable[str]]:
    async def refresh() -> str:
        status = None if backend is None else await backend.status()
        return status_html(status, time.strftime("%H:%M:%S"))

    return refresh


def build_ui(backend: Backend | None, *, max_completion_tokens: int, logout: bool) -> gr.Blocks:
    """The page's Blocks; ``backend`` None builds it unconnected (to list its routes)."""
    blocks = gr.Blocks(title="SeqGPT-560M", analytics_enabled=False)
    with blocks:
        with gr.Row(equal_height=True):
            with gr.Column(scale=3, min_width=320):
                gr.Markdown("### SeqGPT-560M 零样本理解 Zero-shot NLU")
            with gr.Column(scale=4, min_width=320):
                light = gr.HTML(elem_id="seqgpt-status")
            if logout:
                with gr.Column(scale=1, min_width=100):
                    gr.HTML('<a href="logout" id="seqgpt-logout">退出 Log out</a>')
        with gr.Tabs():
            with gr.Tab("文本分类 Classification", id="classify"):
                classify_tab(backend)
            with gr.Tab("信息抽取 Extraction", id="extract"):
                extract_tab(backend)
            with gr.Tab("自由Prompt Free prompt", id="prompt"):
                prompt_tab(backend, max_completion_tokens)
        refresh = _status_refresher(backend)
        blocks.load(refresh, outputs=light, api_visibility="private", show_progress="hidden")
        gr.Timer(STATUS_REFRESH_S).tick(
            refresh, outputs=light, api_visibility="private", show_progress="hidden"
        )
    # The service's in-flight bound is the limit, not a Gradio queue in front of it.
    blocks.queue(default_concurrency_limit=None)
    return blocks


def mount_ui(
    app: FastAPI, backend: Backend | None, *, max_completion_tokens: int, logout: bool
) -> list[str]:
    """Mount the UI at ``/ui`` on ``app`` (before the server starts: it joins the lifespan);
    return the paths of the Gradio routes left out."""
    blocks = build_ui(backend, max_completion_tokens=max_completion_tokens, logout=logout)
    gr.mount_gradio_app(
        app,
        blocks,
        path=UI_PATH,
        footer_links=[],
        run_history=False,  # no texts kept in the browser's storage
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        pwa=False,
        css=CSS,
        js=STALE_JS,
    )
    return prune_gradio_routes(app)


def prune_gradio_routes(app: FastAPI) -> list[str]:
    """Remove every route of the mounted UI that the page does not use; return their paths."""
    removed: list[str] = []
    for route in app.router.routes:
        if isinstance(route, Mount) and route.path == UI_PATH:
            routes: list[BaseRoute] = route.app.router.routes  # type: ignore[attr-defined]
            removed += [str(_path(sub)) for sub in routes if not _needed(sub)]
            routes[:] = [sub for sub in routes if _needed(sub)]
            for status in (HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED):
                route.app.add_exception_handler(status, _routing_error)  # type: ignore[attr-defined]
    return removed


async def _routing_error(request: Request, exc: Exception) -> JSONResponse:
    """A path or method no route of the page takes, in the API's common error body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        message = f"This route does not accept the {request.method} method."
    else:
        message = "There is no such route on this server."
    body = error_body(exc.status_code, message)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _needed(route: BaseRoute) -> bool:
    return _path(route) in GRADIO_ROUTES


def _path(route: BaseRoute) -> str | None:
    """The path template of a route or mount, if it has one."""
    return getattr(route, "path", None)
