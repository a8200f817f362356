"""A Python client of a seqgpt-serve server: ``SeqGPTClient`` (blocking) and
``AsyncSeqGPTClient`` (asyncio), both on httpx.

Owns the calls of the task API (``classify``, ``extract``, their batch forms, ``status``) with
typed answers (the contract's response models), the key, retries of what the server says to
retry (``retry``: 429 and 503 after the larger of ``Retry-After`` and an exponential
backoff, never sooner than 0.5 s, with jitter, bounded in count and time, and within one
``RetryBudget`` per client) and the common
error body raised as one exception type (``exceptions``: ``SeqGPTError``). The batch CLI's remote
engine sends its rows through ``AsyncSeqGPTClient``. It may import ``serving.contract`` (the
bodies it sends and reads) and httpx; never vLLM, torch, FastAPI, the task core or a front end:
it runs in the user's program, which talks to a server over HTTP.
"""

from serving.client.aio import AsyncSeqGPTClient
from serving.client.exceptions import SeqGPTConnectionError, SeqGPTError
from serving.client.retry import RetryBudget, RetryPolicy
from serving.client.sync import SeqGPTClient

__all__ = [
    "AsyncSeqGPTClient",
    "RetryBudget",
    "RetryPolicy",
    "SeqGPTClient",
    "SeqGPTConnectionError",
    "SeqGPTError",
]
