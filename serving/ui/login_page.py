"""The web UI's login form (``serving.ui.auth`` serves it): one page of our own, no Gradio."""

from __future__ import annotations

import html

__all__ = ["login_page"]


def login_page(message: str) -> str:
    """The form, with ``message`` (escaped) above it when there is one."""
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SeqGPT 登录 Log in</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; display: grid;
       place-items: center; min-height: 100vh; margin: 0; }}
form {{ background: #fff; padding: 2rem; border-radius: 8px; min-width: 20rem;
       box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }}
label, input, button {{ display: block; width: 100%; box-sizing: border-box; }}
input {{ margin: .4rem 0 1rem; padding: .5rem; font-size: 1rem; }}
button {{ padding: .6rem; font-size: 1rem; background: #ea580c; color: #fff; border: 0;
         border-radius: 4px; cursor: pointer; }}
.error {{ color: #b91c1c; }}
</style></head>
<body><form method="post" action="login">
<h1>SeqGPT-560M</h1>
<p>网页界面需要 API 密钥。 The web UI needs an API key.</p>
{error}
<label for="key">API 密钥 API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button id="login" type="submit">登录 Log in</button>
</form></body></html>
"""
