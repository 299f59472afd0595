#!/usr/bin/env python3
"""Renders the chat-template test data with Python's jinja2 the way Hugging Face transformers
does (apply_chat_template: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[AssistantTracker, loopcontrols]), raise_exception, strftime_now and a json.dumps
tojson), which pins the semantics of attnres's renderer (models/chat_template.h).

Data (tests/data/chat_templates/):
  <name>.jinja    real-world chat templates
  cases.json      [{name, context}]: every template is rendered with every case
  snippets.json   [{name, template, context}]: one construct or edge case each
  expected.json   what jinja2 renders for each (written by --write; read by chat_template_test)

  render_chat_templates.py --write          regenerate expected.json
  render_chat_templates.py --check BINARY   render everything live with jinja2 and with BINARY
                                            (attnres-render-chat-template TEMPLATE CONTEXT_JSON)
                                            and compare, and check expected.json is current
Exit status 77 (a skip for ctest) when jinja2 cannot be imported.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "chat_templates")


def make_env():
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class AssistantTracker(Extension):
        # transformers' {% generation %}: renders its body (the tracking is not needed here).
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

        def _generation_support(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env, raise_exception


def read_text(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def items():
    """(key, template source, context) for every template x case and every snippet."""
    cases = json.loads(read_text(os.path.join(DATA, "cases.json")))
    for name in sorted(os.listdir(DATA)):
        if not name.endswith(".jinja"):
            continue
        source = read_text(os.path.join(DATA, name))
        for case in cases:
            yield f"{name[:-len('.jinja')]}/{case['name']}", source, case["context"]
    for snippet in json.loads(read_text(os.path.join(DATA, "snippets.json"))):
        yield f"snippet/{snippet['name']}", snippet["template"], snippet["context"]


def render(env, source, context):
    """{"output": text} or {"error": message, "raise": bool}."""
    import jinja2

    try:
        template = env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": f"line {e.lineno}: {e.message}", "raise": False, "compile": True}
    except Exception as e:  # noqa: BLE001 (any failure is an expected error)
        return {"error": f"{type(e).__name__}: {e}", "raise": False, "compile": True}
    try:
        return {"output": template.render(**context)}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises the TemplateError base class itself; jinja2's own errors are
        # subclasses (UndefinedError, SecurityError, ...).
        if type(e) is jinja2.exceptions.TemplateError:
            return {"error": e.message, "raise": True}
        return {"error": f"{type(e).__name__}: {e}", "raise": False}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}", "raise": False}


def live(env):
    return {key: render(env, source, context) for key, source, context in items()}


def run_binary(binary, source, context, tmp):
    tpath = os.path.join(tmp, "template.jinja")
    cpath = os.path.join(tmp, "context.json")
    with open(tpath, "w", encoding="utf-8", newline="") as f:
        f.write(source)
    with open(cpath, "w", encoding="utf-8") as f:
        json.dump(context, f, ensure_ascii=False)
    p = subprocess.run([binary, tpath, cpath], capture_output=True, timeout=60)
    if p.returncode == 0:
        return {"output": p.stdout.decode("utf-8", errors="surrogateescape")}
    if p.returncode in (1, 2):
        return {"error": p.stderr.decode("utf-8", errors="replace").rstrip("\n"),
                "raise": p.returncode == 2}
    return {"crash": f"exit status {p.returncode}: {p.stderr.decode(errors='replace')}"}


def agrees(want, got):
    """Outputs must be equal; raise_exception messages too; other errors only both be errors."""
    if "output" in want:
        return got.get("output") == want["output"]
    if "error" not in got:
        return False
    if want["raise"]:
        return got["raise"] and got["error"] == want["error"]
    return not got["raise"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate expected.json")
    group.add_argument("--check", metavar="BINARY", help="compare BINARY with jinja2, live")
    args = parser.parse_args()
    try:
        env, _ = make_env()
    except ImportError as e:
        print(f"SKIP: jinja2 is not importable ({e})")
        return 77
    results = live(env)
    expected_path = os.path.join(DATA, "expected.json")
    if args.write:
        with open(expected_path, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(results)} renders to {expected_path}")
        return 0
    failures = 0
    stored = json.loads(read_text(expected_path))
    if stored != results:
        stale = sorted(set(stored) ^ set(results) | {k for k in stored if k in results and stored[k] != results[k]})
        print(f"expected.json is stale (regenerate with --write): {stale[:10]}")
        failures += 1
    with tempfile.TemporaryDirectory() as tmp:
        for key, source, context in items():
            want = results[key]
            got = run_binary(args.check, source, context, tmp)
            if not agrees(want, got):
                failures += 1
                print(f"MISMATCH {key}\n  jinja2: {want!r}\n  attnres: {got!r}")
    print(f"{len(results)} renders compared, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
