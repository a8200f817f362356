"""Random-weight BLOOM checkpoints shaped as SeqGPT-560M or 7B1, for tests, demos, benchmarks.

No model can be downloaded in CI, so tests serve a checkpoint made here: a byte-level BPE
tokenizer (it encodes any text) and BloomForCausalLM with random weights. ``tiny`` loads in
seconds (hidden 128, 2 heads of size 64: vLLM's CPU attention rejects smaller heads) and has a
4,096-token vocabulary trained on a small built-in corpus. ``560m`` has SeqGPT-560M's exact
shape and cost, and a tokenizer of 32,000 tokens trained on the Chinese and English word
frequency lists that the ``wordfreq`` package ships, so its prompts are about as long in tokens
as real SeqGPT prompts (a small vocabulary spends several tokens per Chinese character, and the
benchmark would then measure mostly prefill). Its embedding keeps SeqGPT's 250,880 rows: ids
past the tokenizer's vocabulary are never produced. ``7b1`` has SeqGPT-7B1's shape (BLOOMZ-7B1:
hidden 4096, 32 heads of size 128, the same 250,880 rows and the 560m model's tokenizer) but 2 of
its 30 layers (``layers`` to change it), so that it is made and served on a small machine: the
embedding alone is 1.03 G parameters (2 GB in bf16, built in bf16 directly: never in fp32).
The tiny model's weights are drawn with a large initializer range so the next-token choice is
confident: greedy decoding is then stable across implementations (vLLM vs transformers), which
the parity test relies on.

All are stored in bf16, the dtype vLLM's CPU backend serves when told ``auto`` and the
launcher's choice on CPUs with native bf16: an fp32 checkpoint served in bf16 makes vLLM warn
once per tensor at every start ("Attempted to load weight ... with dtype torch.float32 into
parameter with dtype torch.bfloat16"). Serving or loading them in fp32 (the launcher's choice
on other CPUs, and ``--dtype float32`` on every test server: bf16 is fast only on CPUs with
AVX-512 bf16 or AMX) widens bf16 exactly, and vLLM logs that widening per tensor at debug level
only.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["SIZES", "ModelShape", "make_test_model", "tokenizer_name", "train_tokenizer"]

Size = Literal["tiny", "560m", "7b1"]


@dataclass(frozen=True)
class ModelShape:
    """The architecture numbers of one test checkpoint size."""

    hidden_size: int
    n_layer: int
    n_head: int
    vocab_size: int | None  # None: exactly the tokenizer's vocabulary
    dtype: str
    initializer_range: float
    tokenizer: Literal["builtin", "wordfreq"]
    tokenizer_vocab: int
    full_layers: int | None = None  # the real model's layers, where the test one has fewer


SIZES: dict[str, ModelShape] = {
    "tiny": ModelShape(128, 2, 2, None, "bfloat16", 1.0, "builtin", 4096),
    "560m": ModelShape(1024, 24, 16, 250_880, "bfloat16", 0.02, "wordfreq", 32_000),
    "7b1": ModelShape(4096, 2, 32, 250_880, "bfloat16", 0.02, "wordfreq", 32_000, full_layers=30),
}

_MODEL_OF = {"tiny": "560M", "560m": "560M", "7b1": "7B1"}  # the real model each is shaped after
_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0-3, as in BLOOM / SeqGPT
_CORPUS = [
    "输入: 今天上证指数收涨1.2%，券商板块领涨。\n分类: 财经，体育，娱乐，科技\n输出: [GEN]财经",
    "输入: 张三于2023年5月1日在北京加入阿里巴巴。\n抽取: 人物，地点，组织机构，时间\n输出: [GEN]",
    "人物: 张三\n地点: 北京\n组织机构: 阿里巴巴\n时间: 2023年5月1日\n事件: None",
    "The quick brown fox jumps over the lazy dog. Apple unveiled a new iPhone in California.",
    "This product is great, delivery was fast. Terrible service, I want a refund!",
    "Party A shall pay Party B the amount of 10,000 USD within 30 days of signing this contract.",
    "北京时间昨晚，中国女排以3比1战胜巴西队，晋级世界杯决赛。这部电影的剧情非常感人。",
    "positive, negative, neutral, sports, finance, politics, technology, entertainment",
    "0123456789 ,.;:!?()[]{}<>'\"-_/\\@#$%^&*+=~`|，。；：！？（）【】《》、“”‘’",
]


# The wordfreq lists' most frequent words, and how many times a word of frequency 1.0 is fed to
# the trainer (the rarest words still count once). wordfreq is pinned in pyproject.toml and
# the trainer is deterministic for the same input, so the same tokenizer comes out every time.
_WORDFREQ_TOP = {"zh": 100_000, "en": 50_000}
_WORDFREQ_SCALE = 200_000
# Punctuation and digits, which the word lists leave out (wordfreq writes every digit as 0).
_SYMBOLS = "0123456789，。；：！？（）【】《》、“”‘’…—·"


def _wordfreq_words() -> Iterator[list[str]]:
    """Batches of words, each word repeated in proportion to its frequency: Chinese words as
    they are, English ones after a space (and capitalised, a quarter as often), as they appear
    in running text to a byte-level pre-tokenizer."""
    try:
        # wordfreq: a dev dependency, only for the 560m tokenizer's word lists.
        import wordfreq
    except ImportError as exc:  # a dev dependency: only the 560m test model needs it
        raise RuntimeError(
            "the 560m test model's tokenizer is trained on the wordfreq package's word lists: "
            "pip install wordfreq (make setup installs it)"
        ) from exc
    for language, top in _WORDFREQ_TOP.items():
        frequencies = wordfreq.get_frequency_dict(language, "large")
        for word, frequency in itertools.islice(frequencies.items(), top):
            count = max(1, round(frequency * _WORDFREQ_SCALE))
            if language == "zh":
                yield [word] * count
            else:
                yield [f" {word}"] * count
                yield [f" {word.capitalize()}"] * max(1, count // 4)
    yield list(_SYMBOLS) * 1000


def train_tokenizer(vocab_size: int, source: str = "builtin") -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` of at most ``vocab_size`` tokens, trained on
    the built-in corpus (``"builtin"``, the tiny model's) or on wordfreq's lists
    (``"wordfreq"``, the 560m model's)."""
    # tokenizers, torch, transformers: seconds to import, only for a checkpoint made.
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = _wordfreq_words() if source == "wordfreq" else _CORPUS * 4
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def tokenizer_name(size: Size) -> str:
    """What a checkpoint of ``size`` made now records as ``seqgpt_serve_tokenizer`` in its
    config: how its tokenizer was trained (checkpoints made before have none)."""
    shape = SIZES[size]
    return f"{shape.tokenizer}-{shape.tokenizer_vocab}"


def make_test_model(
    directory: Path, size: Size = "tiny", seed: int = 0, layers: int | None = None
) -> Path:
    """Write a random-weight BLOOM checkpoint of ``size`` with its tokenizer into ``directory``
    (``layers``: that many transformer layers instead of the size's own)."""
    # torch: seconds to import, only for a checkpoint made.
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    shape = SIZES[size]
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=train_tokenizer(shape.tokenizer_vocab, shape.tokenizer),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )
    tokenizer.save_pretrained(directory)
    config = _config(shape, size, layers or shape.n_layer, len(tokenizer))
    torch.manual_seed(seed)
    _random_model(config, shape).save_pretrained(directory, safe_serialization=True)
    GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=1, eos_token_id=2, pad_token_id=3
    ).save_pretrained(directory)
    (directory / "README.md").write_text(
        f"# Random-weight test checkpoint ({size})\n\nMade by `seqgpt-serve make-test-model`. "
        f"SeqGPT-{_MODEL_OF[size]}'s architecture with RANDOM weights: its answers are nonsense.\n"
        + "```json\n"
        + json.dumps(
            {
                "size": size,
                "seed": seed,
                "layers": config.n_layer,
                "dtype": shape.dtype,
                "tokenizer": f"{shape.tokenizer}, {shape.tokenizer_vocab} tokens",
            }
        )
        + "\n```\n",
        encoding="utf-8",
    )
    return directory


def _config(shape: ModelShape, size: str, layers: int, tokenizer_size: int) -> Any:
    """The ``BloomConfig`` of a test checkpoint, marked for what it is wherever it is read."""
    # transformers: seconds to import, only for a checkpoint made.
    from transformers import BloomConfig

    config = BloomConfig(
        vocab_size=shape.vocab_size or tokenizer_size,
        hidden_size=shape.hidden_size,
        n_layer=layers,
        n_head=shape.n_head,
        initializer_range=shape.initializer_range,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        dtype=shape.dtype,
        architectures=["BloomForCausalLM"],
    )
    config.seqgpt_serve_random_weights = True
    config.seqgpt_serve_test_size = size
    config.seqgpt_serve_tokenizer = tokenizer_name(size)  # type: ignore[arg-type]
    if shape.full_layers is not None:
        config.seqgpt_serve_full_layers = shape.full_layers
    return config


def _random_model(config: Any, shape: ModelShape) -> Any:
    """``BloomForCausalLM`` with random weights in ``shape.dtype``. A shape with fewer layers
    than its model (7b1) is built in that dtype directly, which halves the peak memory (its
    embedding is 4 GB in fp32); the others are built in fp32 and cast, as they always were, so
    that a seed keeps giving the same weights."""
    # torch: seconds to import, only for a checkpoint made.
    import torch
    from transformers import BloomForCausalLM

    dtype = getattr(torch, shape.dtype)
    if shape.full_layers is None:
        return BloomForCausalLM(config).to(dtype)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return BloomForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
