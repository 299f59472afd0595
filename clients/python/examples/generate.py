#!/usr/bin/env python3
"""Generate text with attnres-server from Python.

    /usr/bin/python3 clients/python/examples/generate.py --target 127.0.0.1:50051 \
        --prompt "Once upon a time" --max-tokens 64 --stream
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import grpc  # noqa: E402

from attnres_client import Client  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()

    options = dict(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    try:
        with Client(args.target) as client:
            info = client.info()
            print(f"# {info.model_name} on {info.device}", file=sys.stderr)
            if args.stream:
                for chunk in client.generate_stream(args.prompt, **options):
                    print(chunk.text, end="", flush=True)
                    if chunk.finish_reason:
                        print(f"\n# finish: {chunk.finish_reason}", file=sys.stderr)
            else:
                result = client.generate(args.prompt, **options)
                print(result.text)
                print(f"# finish: {result.finish_reason}, {result.completion_tokens} tokens",
                      file=sys.stderr)
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
