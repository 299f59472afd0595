"""Held-out perplexity of a served model through the server's prompt logprobs, next to the
training program's own evaluation (eval.heldout_loss, model.py fp32) on the very same windows.

The validation stream is built as data.py builds valid.bin (<|endoftext|> before every story),
but tokenized by the server (Tokenize RPC). Windows of --ctx + 1 tokens (the server's context
must hold the window plus one generated token, so --ctx defaults to max_model_len - 2).

    /usr/bin/python3 models/training/server_perplexity.py --target 127.0.0.1:50051 \
        --corpus ../shared/data/corpus --model models/bundled/attnres-tiny-stories
"""
import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
import data  # noqa: E402
from attnres_client import Client  # noqa: E402


def validation_stream(client, corpus):
    eot = 0
    parts = []
    for doc in data.validation_documents(corpus):
        parts.append([eot] + client.tokenize(doc, add_special_tokens=False))
    return np.fromiter((i for p in parts for i in p), dtype=np.int64)


def server_loss(client, windows):
    total, count = 0.0, 0
    for w in windows:
        r = client.generate(prompt_ids=[int(x) for x in w], max_tokens=1, prompt_logprobs=0,
                            temperature=0.0)
        lps = [lp.logprob for lp in r.response.prompt_logprobs]
        assert len(lps) == len(w) - 1, (len(lps), len(w))
        total -= sum(lps)
        count += len(lps)
    return total / count, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:50051")
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "..", "shared", "data",
                                                      "corpus"))
    ap.add_argument("--model", default="", help="model dir for the PyTorch side (optional)")
    ap.add_argument("--ctx", type=int, default=0, help="0: server max_model_len - 2")
    ap.add_argument("--max-windows", type=int, default=0, help="0: all")
    a = ap.parse_args()
    with Client(a.target) as client:
        ctx = a.ctx or client.info().limits.max_model_len - 2
        stream = validation_stream(client, a.corpus)
        n = (stream.size - 1) // ctx
        if a.max_windows:
            n = min(n, a.max_windows)
        # Same windows as eval.heldout_loss: [j*ctx, j*ctx + ctx + 1).
        windows = np.stack([stream[j * ctx: j * ctx + ctx + 1] for j in range(n)])
        t0 = time.time()
        s_loss, s_count = server_loss(client, windows)
        s_time = time.time() - t0
    print("server : loss %.5f  ppl %.3f  over %d tokens (%d windows of %d, %.0f s)"
          % (s_loss, math.exp(s_loss), s_count, n, ctx, s_time))
    if a.model:
        t_loss, t_count = torch_eval(a.model, windows)
        print("pytorch: loss %.5f  ppl %.3f  over %d tokens" % (t_loss, math.exp(t_loss), t_count))
        print("difference: %.2e (relative %.2e)" % (s_loss - t_loss, abs(s_loss - t_loss) / t_loss))


def torch_eval(model_dir, windows):
    """eval.heldout_loss over our windows (they tile a stream exactly as it slices one)."""
    import eval as ev
    m = ev.load(model_dir, "cpu")
    ctx = windows.shape[1] - 1
    stream = np.concatenate([windows[:, :-1].reshape(-1), windows[-1, -1:]])
    return ev.heldout_loss(m, stream, ctx, "cpu", batch=8)


if __name__ == "__main__":
    main()
