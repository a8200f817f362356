"""The contract every front end shares: request and response bodies, and how results fill them.

Owns the REST bodies (``ClassifyRequest``, ``ExtractResponse`` … in ``schemas``), a task result
turned into its answer (``answers``), validation errors as one sentence (``validation``), the
completion routes' cost limits (``limits``) and the server status document (``status``). The
HTTP routes, the web UI and the batch rows all speak these, so the same text gets the same
answer however it comes in. It may import ``serving.core`` (and pydantic, vLLM's protocol
types); never FastAPI, Starlette, Gradio or a front end.
"""

__all__: list[str] = []  # the modules are the surface: import from them
