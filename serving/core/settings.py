"""The plugin's own settings, read once from ``SEQGPT_*`` environment variables at startup.

vLLM's flags (model, port, ``--api-key``, ``--max-model-len`` …) stay vLLM's; these are only
what this product adds on top: the task endpoints' limits and decoding, and the server's
security surface (which routes are served, which are open, how large a body may be).

Every number is finite (``inf``, ``nan`` and ``1e400`` are refused: an endless timeout would switch
a defence off), and every duration in seconds (a field named ``*_s``) has an upper bound.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Limits, decoding defaults and the security surface of the server."""

    # allow_inf_nan: "inf" parses as a float, and an infinite timeout disables what it bounds.
    model_config = SettingsConfigDict(env_prefix="SEQGPT_", frozen=True, allow_inf_nan=False)

    max_text_chars: int = Field(default=100_000, ge=1)
    """Longest accepted text, in characters; longer texts get a 413, never a silent cut (the
    official code truncates on the left, which cuts SeqGPT's instruction itself off). A text
    that does not fit one prompt is sent in overlapping windows of whole sentences."""

    window_tokens: int | None = Field(default=None, ge=16)
    """Most tokens of one prompt (instruction, labels and text): a text whose prompt is longer
    is sent in windows. Unset: the model's context less the answer budget, so every text that
    fits the context stays one prompt. 1024 keeps prompts within what SeqGPT's reference code
    feeds the model."""

    window_overlap_tokens: int = Field(default=128, ge=0)
    """Text tokens a window repeats from the end of the window before it (whole sentences, at
    most half a window), so a span cut by one window's end is whole in the next."""

    max_labels: int = Field(default=64, ge=1)
    """Most labels accepted in one request."""

    chunk_size: int = Field(default=6, ge=1, le=64)
    """At most this many labels per extraction prompt (SeqGPT was trained with 6)."""

    schema_max_depth: int = Field(default=3, ge=1, le=8)
    """Most levels of an extraction ``schema`` tree, the top one included (3: entities, their
    attributes, and the attributes' own fields); deeper trees are a 400."""

    schema_max_children: int = Field(default=6, ge=1)
    """Most fields under one entity of a ``schema`` (6: one prompt per entity); more is a 400."""

    schema_max_entities: int = Field(default=8, ge=1)
    """Distinct entities of one field whose children a ``schema`` request extracts; the rest of
    the field's spans are answered without children (``fields: null``). The in-flight bound
    admits a schema request for this many entities per field, before any work."""

    max_new_tokens: int = Field(default=256, ge=1)
    """Generated tokens per prompt at most (SeqGPT's reference ``max_new_tokens``); also the
    extraction budget unless ``span_tokens_per_label`` is set."""

    span_tokens_per_label: int | None = Field(default=None, ge=1)
    """Size the extraction budget per label instead (label tokens + this per label), capped by
    ``max_new_tokens``. Unset: every extraction prompt may use ``max_new_tokens``."""

    constrain_classification: bool = True
    """Constrain single-label classification to the label set (vLLM structured outputs)."""

    max_batch_items: int = Field(default=64, ge=1)
    """Most texts in one ``/v1/classify/batch`` or ``/v1/extract/batch`` request."""

    max_inflight: int | None = Field(default=None, ge=1)
    """Task prompts (extraction chunks included) admitted at once; a request that does not fit
    gets a 429 with Retry-After. Unset: twice the engine's ``max_num_seqs``."""

    max_score_reads: int | None = Field(default=None, ge=1)
    """Label reads of scored classifications (one per label and window) in the engine at once,
    per API process, while no task prompt is in it; more wait their turn in the API server.
    Unset: 8 on the CPU backend, the engine's ``max_num_seqs`` elsewhere."""

    max_score_reads_busy: int | None = Field(default=None, ge=1)
    """The same bound while a task prompt (a classification, an extraction) is in the engine:
    an engine step carries every read it holds, so few keep a task prompt's steps short while
    scores run. Unset: 2 on the CPU backend, where a step's cost grows with its reads;
    ``max_score_reads`` elsewhere (an accelerator runs a step of many reads in about the time of
    one)."""

    max_batch_prompts: int | None = Field(default=None, ge=1)
    """Prompts of batch work (the ``/batch`` routes, ``X-SeqGPT-Priority: batch``, a batch
    tenant's requests) in the engine at once, per API process, while no interactive request is
    held; more wait their turn in the API server, in order. Batch prompts in the engine when an
    interactive request comes stay there, so this trades the interactive request's wait for the
    batch job's throughput (``serving.core.turns.CPU_BATCH_PROMPTS`` has the measurements).
    Unset: 16 on the CPU backend; the whole in-flight bound elsewhere."""

    max_batch_prompts_busy: int | None = Field(default=None, ge=1)
    """The same bound while an interactive request is held (admitted, waiting or running): it
    trades the batch job's throughput meanwhile for the interactive request's latency, since
    each batch prompt in the engine lengthens the interactive prompt's steps. Unset: 1 on the
    CPU backend, where a step costs about its prompt tokens; ``max_batch_prompts`` elsewhere
    (an accelerator runs a step of many prompts in about the time of one; the engine's priority
    queue still puts interactive prompts first)."""

    request_timeout_s: float = Field(default=120.0, gt=0, le=24 * 3600)
    """A task request running longer gets a 504 and its prompts are aborted in the engine."""

    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest request body on any route; larger bodies get a 413 before they are parsed."""

    body_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """How long a request's body may take to arrive once the gate reads it; later: 408, and the
    connection closes (a client trickling its body holds memory and delays a drain)."""

    body_linger_s: float = Field(default=10.0, ge=0, le=300)
    """After refusing a request (401, 413, 503), how long the rest of its body is read and thrown
    away so that a client that sends its whole body before it reads gets the answer, not a reset
    connection (nginx's lingering close); then the connection closes."""

    max_completion_tokens: int = Field(default=2048, ge=1)
    """Most ``max_tokens`` a completions request may ask for."""

    max_completion_n: int = Field(default=4, ge=1)
    """Most ``n`` / ``best_of`` a completions request may ask for."""

    max_logprobs: int = Field(default=5, ge=0)
    """Most ``logprobs`` / ``top_logprobs`` a completions request may ask for."""

    api_keys: list[str] = Field(default_factory=list)
    """Extra accepted API keys (JSON list), beside vLLM's ``--api-key`` / ``VLLM_API_KEY``; the
    launcher passes every key here so none appears on a command line."""

    metrics_key: SecretStr | None = Field(default=None, min_length=16)
    """A key that opens ``GET /metrics`` and nothing else (401/403 everywhere else), for
    Prometheus: a scraper then holds no key to the API. The API keys still open ``/metrics``.
    Environment only, like every key (the launcher passes it through, never on a command line)."""

    tenants_file: Path | None = None
    """A TOML file of named tenants (``serving.core.tenants``): each a key's SHA-256 (never a
    key), its scopes, its rate limits, weight and priority. Re-read within seconds when it
    changes; a file that turns bad keeps the last good set. With it set, a key is always
    needed (``docs/operations.md``, ``seqgpt-serve tenants new``)."""

    public_metrics: bool = False
    """Serve ``/metrics`` without the API key (``/health`` and ``/ping`` always are)."""

    enable_routes: list[str] = Field(default_factory=list)
    """vLLM routes to serve beyond this product's own set (JSON list of paths, ``["*"]`` for
    all): admin and debugging routes such as ``/scale_elastic_ep`` are off by default."""

    ui: bool = True
    """Serve the web UI at ``/ui`` (Gradio, behind the same keys: a login form sets a session
    cookie valid only under ``/ui``). Off: Gradio is not even imported."""

    ui_session_dir: Path | None = None
    """A private folder (``0700``) holding the web UI's ended sessions, shared by the server's API
    processes so a logout in one holds in all. ``seqgpt-serve serve`` makes a fresh one for each
    server it starts (the UI's sessions then end with the server) unless this names one, which
    then keeps sessions and logouts across restarts. Unset under plain vLLM: each API process
    keeps its own list, enough for one."""

    drain_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    """On SIGTERM the server answers new requests 503 and lets those in flight finish for up to
    this long before it stops (0: stop taking work at once; requests still in flight are cut
    when the launcher follows with SIGTERM, seconds later). Give Kubernetes' grace period more."""

    request_log: bool = True
    """One JSON line per task request (id, task, sizes, prompts, latency, status) on stderr;
    never the text, the labels or a key."""

    audit_log: Path | None = None
    """Opt-in JSONL file of every task request with its text, labels, prompts, raw generations
    and result, to trace a wrong answer by its request id. It holds user data: off by default."""

    audit_log_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    """Size of one audit log file before it is rotated."""

    audit_log_backups: int = Field(default=5, ge=1)
    """Rotated audit log files kept (older ones are deleted)."""
