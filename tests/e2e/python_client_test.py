#!/usr/bin/env python3
"""Smoke test of clients/python (attnres_client) against the real attnres-server.

Starts the server on a free port (--port 0) with ATTNRES_SERVER / ATTNRES_E2E_MODEL_DIR (set by
ctest) and the ChatML template of tests/e2e/data, checks info, tokenize/detokenize, generate (with
logit_bias and min_tokens, with chat messages, continue_final_message and tools included, and
with a response_format), generate_stream and INVALID_ARGUMENTs.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import grpc

from attnres_client import Client


def start_server():
    log = tempfile.NamedTemporaryFile(prefix="attnres-py-e2e-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [os.environ["ATTNRES_SERVER"], "--model", os.environ["ATTNRES_E2E_MODEL_DIR"],
         "--port", "0", "--device", "cpu", "--chat-template",
         os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "chatml.jinja")],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        with open(log.name) as f:
            m = re.search(r"listening on (\S+)\n", f.read())
        if m:
            return proc, m.group(1), log.name
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start:\n" + open(log.name).read())


def main() -> int:
    proc, target, log = start_server()
    try:
        with Client(target, timeout=60) as client:
            info = client.info()
            assert info.attn_res.enabled and info.vocab_size > 0, info
            ids = client.tokenize("Hello python", add_special_tokens=False)
            assert client.detokenize(ids) == "Hello python"
            r = client.generate("Hello", max_tokens=8, temperature=0.0, ignore_eos=True)
            assert len(r.token_ids) == 8 and r.finish_reason == "LENGTH", r
            chunks = list(client.generate_stream("Hello", max_tokens=8, temperature=0.0,
                                                 ignore_eos=True))
            assert "".join(c.text for c in chunks) == r.text
            assert sum((c.token_ids for c in chunks), []) == r.token_ids
            assert chunks[-1].finish_reason == "LENGTH"
            forced = 11 if r.token_ids[0] != 11 else 12
            b = client.generate("Hello", max_tokens=4, temperature=0.0, ignore_eos=True,
                                logit_bias={forced: 100.0}, min_tokens=4)
            assert b.token_ids == [forced] * 4, b
            assert info.has_chat_template
            chat = client.generate(messages=[{"role": "user", "content": "Hello"}],
                                   max_tokens=6, temperature=0.0, ignore_eos=True)
            templated = client.generate("<|im_start|>user\nHello<|im_end|>\n"
                                        "<|im_start|>assistant\n", add_special_tokens=False,
                                        max_tokens=6, temperature=0.0, ignore_eos=True)
            assert chat.text == templated.text and chat.token_ids == templated.token_ids, chat
            cont = client.generate(messages=[{"role": "user", "content": "Hello"},
                                             {"role": "assistant", "content": "Once upon"}],
                                   continue_final_message=True,
                                   max_tokens=6, temperature=0.0, ignore_eos=True)
            cut = client.generate("<|im_start|>user\nHello<|im_end|>\n"
                                  "<|im_start|>assistant\nOnce upon", add_special_tokens=False,
                                  max_tokens=6, temperature=0.0, ignore_eos=True)
            assert cont.token_ids == cut.token_ids, cont
            # Tools reach the template (ChatML writes none of them); a bad name is refused.
            with_tools = client.generate(
                messages=[{"role": "user", "content": "Hello"}],
                tools=[{"type": "function",
                        "function": {"name": "f", "parameters": {"type": "object"}}}],
                max_tokens=6, temperature=0.0, ignore_eos=True)
            assert with_tools.token_ids == chat.token_ids, with_tools
            # tool_choice "none" and parallel_tool_calls leave the text as it is; forcing calls
            # needs --tool-call-parser, which this server lacks, and a named tool must be one.
            not_read = client.generate(
                messages=[{"role": "user", "content": "Hello"}],
                tools=[{"function": {"name": "f"}}], tool_choice="none",
                parallel_tool_calls=False, max_tokens=6, temperature=0.0, ignore_eos=True)
            assert not_read.token_ids == chat.token_ids, not_read
            for kwargs, field in (
                    ({"tools": [{"function": {"name": "bad name"}}]}, "prompt.chat.tools[0].name"),
                    ({"tools": [{"function": {"name": "f"}}], "tool_choice": "required"},
                     "prompt.chat.tool_choice: required needs a server started with "
                     "--tool-call-parser"),
                    ({"tools": [{"function": {"name": "f"}}],
                      "tool_choice": {"type": "function", "function": {"name": "g"}}},
                     "prompt.chat.tool_choice_function must name one of prompt.chat.tools")):
                try:
                    client.generate(messages=[{"role": "user", "content": "Hello"}],
                                    max_tokens=1, **kwargs)
                    raise AssertionError(f"{kwargs} was accepted")
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
                    assert field in e.details(), e.details()
            # Structured output: JSON the schema accepts (or any object), ended by itself.
            schema = {"type": "object", "properties": {"ok": {"type": "boolean"},
                                                       "n": {"type": "integer"},
                                                       "tag": {"enum": ["a", "b"]}},
                      "required": ["ok", "n", "tag"]}
            small = {"type": "json_schema", "json_schema": {"name": "small", "schema": schema}}
            for sampling in ({"temperature": 0.0}, {"temperature": 1.0, "seed": 4}):
                s = client.generate("A record:", max_tokens=400, response_format=small,
                                    **sampling)
                value = json.loads(s.text)
                assert (isinstance(value["ok"], bool) and isinstance(value["n"], int)
                        and not isinstance(value["n"], bool) and value["tag"] in ("a", "b")), s
                assert s.finish_reason == "STOP", s
                streamed = list(client.generate_stream("A record:", max_tokens=400,
                                                       response_format=small, **sampling))
                assert "".join(c.text for c in streamed) == s.text
                # A random model never closes a free string: '"' first, then '}' (as the C++
                # e2e tests' SteerToCloseJson).
                o = client.generate("A record:", max_tokens=400,
                                    response_format={"type": "json_object"},
                                    logit_bias={ord('"'): 100.0, ord("}"): 50.0}, **sampling)
                assert isinstance(json.loads(o.text), dict) and o.finish_reason == "STOP", o
            # vLLM's guided_regex and guided_choice: the whole output matches.
            for sampling in ({"temperature": 0.0}, {"temperature": 1.0, "seed": 4}):
                g = client.generate("Say:", max_tokens=40, guided_regex=r"(yes|no), [a-z]{2,5}!",
                                    **sampling)
                assert re.fullmatch(r"(yes|no), [a-z]{2,5}!", g.text), g
                c = client.generate("Say:", max_tokens=40, guided_choice=["red", "green"],
                                    **sampling)
                assert c.text in ("red", "green") and c.finish_reason == "STOP", c
            plain = client.generate("Hello", max_tokens=8, temperature=0.0, ignore_eos=True,
                                    response_format={"type": "text"})
            assert plain.token_ids == r.token_ids, plain
            try:
                client.generate("Hello", max_tokens=8, response_format={
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "integer", "not": {}}}})
                raise AssertionError("a schema with \"not\" was accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
                assert "response_format.json_schema.schema_json" in e.details(), e.details()
            try:
                client.generate("Hello", top_p=1.5)
                raise AssertionError("top_p=1.5 was accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
                assert "sampling.top_p" in e.details(), e.details()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        print("python client smoke test passed")
        return 0
    except Exception:
        print(open(log).read()[-4000:], file=sys.stderr)
        raise
    finally:
        if proc.poll() is None:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
