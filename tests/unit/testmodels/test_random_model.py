"""The test checkpoints' tokenizers: the 560m model's spends about what a real one does."""

from __future__ import annotations

from loadtest.corpus import load_corpus
from loadtest.server import _stale
from serving.testmodels.random_model import SIZES, tokenizer_name, train_tokenizer


def test_the_560m_tokenizer_has_tens_of_thousands_of_tokens_and_short_chinese() -> None:
    shape = SIZES["560m"]
    tokenizer = train_tokenizer(shape.tokenizer_vocab, shape.tokenizer)
    assert tokenizer.get_vocab_size() == 32_000
    assert [tokenizer.id_to_token(i) for i in range(4)] == ["<unk>", "<s>", "</s>", "<pad>"]
    chinese = [entry.text for entry in load_corpus() if entry.language == "zh"]
    encoded = [tokenizer.encode(text).ids for text in chinese]
    assert [tokenizer.decode(ids) for ids in encoded] == chinese  # byte-level: loses nothing
    # The tiny model's 759-token BPE spends 2.3 tokens per Chinese character; a real
    # large-vocabulary tokenizer spends less than one.
    assert sum(map(len, encoded)) / sum(map(len, chinese)) < 1.0


def test_a_checkpoint_made_with_another_tokenizer_is_stale() -> None:
    ours = {"seqgpt_serve_random_weights": True}
    assert _stale(ours, "560m")  # made before checkpoints recorded their tokenizer
    assert not _stale({**ours, "seqgpt_serve_tokenizer": tokenizer_name("560m")}, "560m")
    assert _stale({**ours, "seqgpt_serve_tokenizer": tokenizer_name("tiny")}, "560m")
    assert not _stale({"model_type": "bloom"}, "560m")  # not ours: never remade
