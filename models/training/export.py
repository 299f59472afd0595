"""Exports a trained checkpoint as a Hugging Face model directory: config.json, bf16 safetensors
shards (each under --shard-mib, with model.safetensors.index.json), tokenizer.json,
generation_config.json. Own safetensors writer/reader (numpy), no `safetensors` dependency.

    python3 models/training/export.py --ckpt T/attnres_s1/ckpt.pt --tokenizer T/tokenizer.json \
        --out models/bundled/attnres-tiny-stories
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np
import torch


def bf16_bits(t):
    """float tensor -> np.uint16 bf16 bit patterns (round to nearest even, via torch)."""
    return t.detach().to(torch.bfloat16).contiguous().view(torch.int16).cpu().numpy().view(np.uint16)


def write_st(path, tensors):
    """tensors: {name: np.uint16 bf16 bits}."""
    header, off, blobs = {}, 0, []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name]).astype("<u2")
        b = arr.tobytes()
        header[name] = {"dtype": "BF16", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_dir(model_dir):
    """-> (config, {name: float32 torch tensor}) from our exported dir (BF16/F32 shards)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    sd = {}
    for fn in files:
        with open(os.path.join(model_dir, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            hdr = json.loads(f.read(n))
            buf = f.read()
        for name, info in hdr.items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            if info["dtype"] == "BF16":
                x = (np.frombuffer(buf[a:b], "<u2").astype(np.uint32) << 16).view(np.float32)
            elif info["dtype"] == "F32":
                x = np.frombuffer(buf[a:b], "<f4")
            else:
                raise ValueError(info["dtype"])
            sd[name] = torch.from_numpy(x.reshape(info["shape"]).copy())
    return cfg, sd


def write_serving_tokenizer(src, dst, bos="<|endoftext|>"):
    """Copies tokenizer.json with a TemplateProcessing post-processor that prepends BOS, since
    every training document started with it (training encodes without special tokens)."""
    with open(src, encoding="utf-8") as f:
        tok = json.load(f)
    bos_id = next(t["id"] for t in tok["added_tokens"] if t["content"] == bos)
    special = {"SpecialToken": {"id": bos, "type_id": 0}}
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [special, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [special, {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)


def export(ckpt_path, tokenizer, out, shard_mib=14.0):
    ck = torch.load(ckpt_path, map_location="cpu")
    cfg, sd = ck["config"], ck["state_dict"]
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".safetensors") or f == "model.safetensors.index.json":
            os.remove(os.path.join(out, f))
    limit = int(shard_mib * 1024 * 1024)
    shards, cur, size = [], {}, 0
    for name in sorted(sd):
        bits = bf16_bits(sd[name])
        if cur and size + bits.nbytes > limit:
            shards.append(cur)
            cur, size = {}, 0
        cur[name] = bits
        size += bits.nbytes
    shards.append(cur)
    weight_map, total = {}, 0
    for i, sh in enumerate(shards):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        write_st(os.path.join(out, fn), sh)
        for k, v in sh.items():
            weight_map[k] = fn
            total += v.nbytes
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
              open(os.path.join(out, "model.safetensors.index.json"), "w"), indent=1)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    gen = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"],
           "do_sample": True, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 256}
    json.dump(gen, open(os.path.join(out, "generation_config.json"), "w"), indent=1)
    if tokenizer:
        write_serving_tokenizer(tokenizer, os.path.join(out, "tokenizer.json"))
    print("export: %d tensors, %.1f MB bf16 in %d shard(s) -> %s"
          % (len(weight_map), total / 1e6, len(shards), out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shard-mib", type=float, default=14.0)
    a = ap.parse_args()
    export(a.ckpt, a.tokenizer, a.out, a.shard_mib)


if __name__ == "__main__":
    main()
