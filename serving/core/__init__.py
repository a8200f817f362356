"""The task core: from a text and its labels to a checked, planned, decoded and parsed result.

Owns the service (``SeqGPTService``), a batch's checks and runs (``batching``), the engine work
under a request's deadline (``Runner``), the in-flight bound it admits requests against
(``Admission``), the task registry (``TASKS``, and a typed extraction prompt read back:
``read_completion``), prompt planning and long-document windows, per-label scores, reference
decoding, the input checks, the settings (``Settings``, ``SEQGPT_*``), the closed set of errors,
and what the CPU computes natively (``cpu``: the dtype an engine starts in, the CPU the status
shows). It reaches the engine only through vLLM's ``EngineClient`` handed to the service. It may
import ``prompts``, ``parsers``, vLLM's engine types, torch and pydantic; never FastAPI,
Starlette, Gradio or any other folder of ``serving``: every front end stands on it, and it knows
none of them.
"""

__all__: list[str] = []  # the modules are the surface: import from them
