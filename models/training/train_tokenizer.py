"""Trains the demo model's byte-level BPE tokenizer (Hugging Face `tokenizers`) on the training
documents only (never the validation prefix) and saves tokenizer.json.

GPT-2-style: ByteLevel pre-tokenizer (GPT-2 regex, no prefix space), ByteLevel decoder, one special
token <|endoftext|> (id 0) used as BOS and as the document separator.

    python3 models/training/train_tokenizer.py --corpus .corpus --vocab 8192 --out T/tokenizer.json
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402


def train(docs, vocab_size, out_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=[data.EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer=trainer)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tok.save(out_path)
    print("tokenizer: vocab %d, <|endoftext|> = %d -> %s"
          % (tok.get_vocab_size(), tok.token_to_id(data.EOT), out_path))
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-shakespeare", action="store_true")
    a = ap.parse_args()
    docs, _ = data.training_documents(a.corpus, not a.no_shakespeare)
    train(docs, a.vocab, a.out)


if __name__ == "__main__":
    main()
