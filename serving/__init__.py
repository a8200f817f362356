"""seqgpt-serve: SeqGPT-560M's zero-shot classification and extraction served on vLLM."""

__all__ = ["__version__"]

__version__ = "0.1.0"
