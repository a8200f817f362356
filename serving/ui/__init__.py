"""The web UI at ``/ui``: a Gradio page that is a view of the REST API, and its login.

Owns the Blocks app and its mount (``app``), the three tabs (``tabs``), pure rendering of API
answers (``view``), what the page calls (``backend``: the API's own request models, service and
completion handler) and the browser's login and session cookie (``auth``). It may import
``serving.contract``, ``serving.core``, Gradio, FastAPI and Starlette; never ``prompts`` or
``parsers`` (every prompt and parsed field it shows is the API's answer), the HTTP surface (route
paths, limits and status come from the contract, and the plugin wires the session check into the
gate) or the batch jobs.
"""

__all__: list[str] = []  # the modules are the surface: import from them
