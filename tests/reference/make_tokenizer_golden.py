#!/usr/bin/env python3
"""Writes tests/data/tokenizer/expected_<name>.json with HF `tokenizers` as the reference.

For every tokenizer.json under --out/<name>/ it encodes each case of cases.json with
add_special_tokens true and false, and decodes each decode case with skip_special_tokens true and
false. Cases given as "hex" are bytes; they are encoded as bytes.decode("utf-8", "replace"), which
is what attnres::Tokenizer::Encode does with invalid UTF-8.

  python3 tests/reference/make_tokenizer_golden.py --out tests/data/tokenizer
"""
import argparse
import json
import os

import tokenizers


def case_text(case):
    if "hex" in case:
        return bytes.fromhex(case["hex"]).decode("utf-8", errors="replace")
    return case["text"]


def golden(tok, cases):
    encode = []
    for case in cases["encode"]:
        text = case_text(case)
        encode.append({
            "name": case["name"],
            "ids_with_special": tok.encode(text, add_special_tokens=True).ids,
            "ids_without_special": tok.encode(text, add_special_tokens=False).ids,
        })
    decode = []
    size = tok.get_vocab_size(with_added_tokens=True)
    for case in cases["decode"]:
        # HF's Python binding rejects negative ids; out-of-range ids are skipped by its decoder.
        ids = [i for i in case["ids"] if 0 <= i]
        decode.append({
            "name": case["name"],
            "text_keep_special": tok.decode(ids, skip_special_tokens=False),
            "text_skip_special": tok.decode(ids, skip_special_tokens=True),
            "vocab_size": size,
        })
    return {"tokenizers_version": tokenizers.__version__, "encode": encode, "decode": decode}


def dump_one_case_per_line(result):
    """JSON with one line per case, so diffs of regenerated files stay readable."""
    def block(items):
        return "[\n" + ",\n".join("  " + json.dumps(i, ensure_ascii=False) for i in items) + "\n ]"
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                      for k, v in result.items() if k not in ("encode", "decode"))
    return ("{\n" + head + f',\n "encode": {block(result["encode"])},\n'
            f' "decode": {block(result["decode"])}\n}}\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/data/tokenizer",
                        help="folder with cases.json and <name>/tokenizer.json")
    args = parser.parse_args()
    with open(os.path.join(args.out, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    for name in sorted(os.listdir(args.out)):
        path = os.path.join(args.out, name, "tokenizer.json")
        if not os.path.isfile(path):
            continue
        result = golden(tokenizers.Tokenizer.from_file(path), cases)
        result["tokenizer"] = name
        out_path = os.path.join(args.out, f"expected_{name}.json")
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(dump_one_case_per_line(result))
        print(f"wrote {out_path}: {len(result['encode'])} encode, {len(result['decode'])} decode")


if __name__ == "__main__":
    main()
