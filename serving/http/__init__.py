"""The HTTP surface inside vLLM's OpenAI API server: routes, the gate, and what operators see.

Owns the task routes (``routes``: thin handlers that validate, call the service, answer), the
front door (``gate``: drain, keys, body size, completion limits; ``bodies``: reading a body in
it), the observer (``observe``: request ids, metrics, the request and audit logs; ``counting``:
what an answered text counts in them), the status document (``status``), the route allowlist
(``surface``), the graceful stop (``lifecycle``) and the rendering of every error in the common
body (``error_handlers``). It may import ``serving.contract`` and ``serving.core``, FastAPI and
Starlette; never the web UI or the batch jobs (the plugin hands the gate the UI's session check).
"""

__all__: list[str] = []  # the modules are the surface: import from them
