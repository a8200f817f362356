"""SeqGPT prompt builders: task + text + labels -> the exact prompts SeqGPT was trained on."""

from prompts.seqgpt import *  # noqa: F403 (the public API is seqgpt's, listed once there)
from prompts.seqgpt import __all__ as __all__
