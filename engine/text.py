"""Word-level tokenizers built in code (no hub), and the check for words a model does not know."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
_WORD = re.compile(r"\w+", re.UNICODE)


def build_word_tokenizer(words: Iterable[str], max_length: int = 32) -> PreTrainedTokenizerFast:
    """A T5-style word-level tokenizer (pad 0, eos 1, unk 2, lower-cased, punctuation split off).

    It saves with `save_pretrained` and loads with `AutoTokenizer`, like the real UMT5 tokenizer.
    """
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for w in sorted({w.lower() for w in words}):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=max_length
    )


def unknown_words(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[str]:
    """Words of the prompt that the tokenizer maps to its unknown token (empty for subword tokenizers
    such as the real UMT5, which know every word)."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return []
    found = []
    for word in _WORD.findall(prompt):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if unk in ids and word.lower() not in found:
            found.append(word.lower())
    return found
