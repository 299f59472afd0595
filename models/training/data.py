"""Corpus preparation for the demo model: documents, casing, tokenization, token arrays.

Owns: which text is trained on (see README.md "Data"), the truecasing of the lowercased TinyStories
prefix, the tokenizer wrapper (HF `tokenizers` or a byte-level fallback for the CPU smoke test), and
the uint16 token streams train.bin / valid.bin. Does not own tokenizer training (train_tokenizer.py).

    python3 models/training/data.py --corpus .corpus --tokenizer T/tokenizer.json --out T
"""
import argparse
import collections
import json
import os
import re

import numpy as np

EOT = "<|endoftext|>"
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def split_stories(text):
    """TinyStories files: one story per line, paragraphs inside a story separated by a blank line."""
    docs = re.split(r"(?<!\n)\n(?!\n)", text)
    return [d.strip("\n") for d in docs if d.strip()]


def case_table(cased_text):
    """lowercase word -> its most frequent cased form where casing is not forced by position."""
    counts = collections.defaultdict(collections.Counter)
    for m in WORD.finditer(cased_text):
        i = m.start()
        before = cased_text[max(0, i - 3):i]
        if i == 0 or re.search(r'(^|[.!?]["\']?\s+|\n\s*|"\s*)$', before):
            continue  # sentence / quote / line start: capital forced by position
        w = m.group(0)
        counts[w.lower()][w] += 1
    table = {}
    for lw, c in counts.items():
        form, n = c.most_common(1)[0]
        if form != lw and n >= 2 and n >= 0.6 * sum(c.values()):
            table[lw] = form
    table["i"] = "I"
    for s in ("'m", "'ll", "'d", "'ve"):
        table["i" + s] = "I" + s
    return table


def truecase(text, table):
    """Restores casing of lowercased TinyStories text: known proper forms + sentence starts."""
    out = WORD.sub(lambda m: table.get(m.group(0), m.group(0)), text)
    # Capitalise the first letter of each line, after . ! ? (+ optional quote), and after an
    # opening quote mark (TinyStories dialogue starts with a capital).
    out = re.sub(r'(^|[.!?]["\']?\s+|\n\s*|(?:^|[\s(])")([a-z])',
                 lambda m: m.group(1) + m.group(2).upper(), out, flags=re.M)
    return out


def training_documents(corpus_dir, shakespeare=True, log=print):
    """Returns (docs, stats). Cased TinyStories prefix + truecased rest of the lowercased prefix
    (+ Tiny Shakespeare as paragraphs). The validation prefix is never read here."""
    cased = open(os.path.join(corpus_dir, "tinystories_train_prefix_a.txt"), encoding="utf-8").read()
    lower = open(os.path.join(corpus_dir, "tinystories_train_prefix_lower.txt"),
                 encoding="utf-8").read()
    assert lower[:len(cased)] == cased.lower(), "lowercased prefix does not start with the cased one"
    rest = lower[len(cased):]
    table = case_table(cased)
    docs_cased = split_stories(cased)
    docs_rest = split_stories(truecase(rest, table))
    docs = docs_cased + docs_rest
    stats = {"stories_cased": len(docs_cased), "stories_truecased": len(docs_rest),
             "case_table_words": len(table)}
    if shakespeare:
        sh = open(os.path.join(corpus_dir, "tinyshakespeare.txt"), encoding="utf-8").read()
        # Chunks of ~2 KB on paragraph (speech) boundaries.
        paras, chunk, docs_sh = sh.split("\n\n"), [], []
        for p in paras:
            chunk.append(p)
            if sum(len(c) for c in chunk) > 2000:
                docs_sh.append("\n\n".join(chunk))
                chunk = []
        if chunk:
            docs_sh.append("\n\n".join(chunk))
        docs += docs_sh
        stats["shakespeare_chunks"] = len(docs_sh)
    log("data: %s" % json.dumps(stats))
    return docs, stats


def validation_documents(corpus_dir):
    return split_stories(open(os.path.join(corpus_dir, "tinystories_valid_prefix.txt"),
                              encoding="utf-8").read())


class Tok:
    """Wraps a HF tokenizer.json, or a byte-level fallback (id 0 = <|endoftext|>, byte b -> b+1)."""

    def __init__(self, path=None):
        self.hf = None
        if path:
            from tokenizers import Tokenizer
            self.hf = Tokenizer.from_file(path)
            self.eot = self.hf.token_to_id(EOT)
            self.vocab_size = self.hf.get_vocab_size()
        else:
            self.eot, self.vocab_size = 0, 257

    def encode_batch(self, texts):
        if self.hf is not None:
            return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]
        return [[b + 1 for b in t.encode("utf-8")] for t in texts]

    def encode(self, text):
        return self.encode_batch([text])[0]

    def decode(self, ids):
        if self.hf is not None:
            return self.hf.decode(ids)
        return bytes(i - 1 for i in ids if i > 0).decode("utf-8", "replace")


def to_stream(tok, docs):
    """<|endoftext|> before every document (BOS and separator), as uint16."""
    parts = []
    for ids in tok.encode_batch(docs):
        parts.append([tok.eot] + ids)
    flat = np.fromiter((i for p in parts for i in p), dtype=np.uint16)
    return flat


def prepare(corpus_dir, tok, out_dir, shakespeare=True, log=print):
    os.makedirs(out_dir, exist_ok=True)
    docs, stats = training_documents(corpus_dir, shakespeare, log)
    train = to_stream(tok, docs)
    valid = to_stream(tok, validation_documents(corpus_dir))
    train.tofile(os.path.join(out_dir, "train.bin"))
    valid.tofile(os.path.join(out_dir, "valid.bin"))
    stats.update({"train_tokens": int(train.size), "valid_tokens": int(valid.size),
                  "vocab_size": tok.vocab_size, "eot": tok.eot})
    with open(os.path.join(out_dir, "data_stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    log("data: train %d tokens, valid %d tokens" % (train.size, valid.size))
    return stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", default="", help="tokenizer.json; empty = byte-level fallback")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-shakespeare", action="store_true")
    ap.add_argument("--show-truecase", action="store_true")
    a = ap.parse_args()
    if a.show_truecase:
        docs, _ = training_documents(a.corpus, False)
        print(docs[5000][:600])
        return
    prepare(a.corpus, Tok(a.tokenizer or None), a.out, not a.no_shakespeare)


if __name__ == "__main__":
    main()
