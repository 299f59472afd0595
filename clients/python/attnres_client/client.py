"""Client: generate, generate_stream, tokenize, detokenize and info over gRPC.

Keyword arguments map one-to-one onto GenerateRequest / SamplingParams fields; leaving one out
leaves the field unset (the server then applies generation_config.json defaults).
"""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Iterator, List, Mapping, Optional, Sequence

import grpc

_PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_proto")
if not os.path.isdir(os.path.join(_PROTO_DIR, "attnres")):
    raise ImportError(
        "attnres_client stubs are missing: run clients/python/generate_stubs.sh first")
if _PROTO_DIR not in sys.path:
    sys.path.insert(0, _PROTO_DIR)

from attnres.v1 import attnres_pb2, attnres_pb2_grpc  # noqa: E402

_SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "min_p", "seed", "repetition_penalty",
                    "presence_penalty", "frequency_penalty")
_REQUEST_FIELDS = ("request_id", "max_tokens", "min_tokens", "ignore_eos", "logprobs",
                   "prompt_logprobs", "return_mix_weights", "add_special_tokens",
                   "skip_special_tokens")


@dataclass
class GenerateResult:
    text: str
    token_ids: List[int]
    finish_reason: str          # "LENGTH", "STOP", "CANCELLED" or "TOOL_CALLS"
    stop_reason: str
    prompt_tokens: int
    completion_tokens: int
    request_id: str
    response: object = field(repr=False, default=None)  # the GenerateResponse message


@dataclass
class StreamChunk:
    text: str
    token_ids: List[int]
    finish_reason: Optional[str]   # set on the last chunk only
    message: object = field(repr=False, default=None)  # the GenerateStreamResponse


def _set_response_format(out, response_format: Mapping) -> None:
    """Fills a ResponseFormat from OpenAI's response_format dict: {"type": "text"} (free text,
    left unset), {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema":
    {...} or its JSON text, "name"?}} (the schema's key order is kept)."""
    kind = response_format.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        out.json_object.SetInParent()
        return
    if kind != "json_schema":
        raise ValueError('response_format["type"] must be "text", "json_object" or "json_schema"')
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping) or spec.get("schema") is None:
        raise ValueError('response_format["json_schema"]["schema"] is required')
    schema = spec["schema"]
    out.json_schema.schema_json = (schema if isinstance(schema, str)
                                   else json.dumps(schema, separators=(",", ":")))
    if spec.get("name"):
        out.json_schema.name = spec["name"]


def _set_tool_choice(chat, tool_choice) -> None:
    """Fills Chat.tool_choice / tool_choice_function from OpenAI's tool_choice: "auto", "none",
    "required" or {"type": "function", "function": {"name": ...}}."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if not isinstance(function, Mapping) or not function.get("name"):
            raise ValueError('tool_choice must be {"type": "function", "function": {"name": ...}}')
        chat.tool_choice_function = function["name"]
        return
    choices = {"auto": attnres_pb2.Chat.TOOL_CHOICE_AUTO,
               "none": attnres_pb2.Chat.TOOL_CHOICE_NONE,
               "required": attnres_pb2.Chat.TOOL_CHOICE_REQUIRED}
    if tool_choice not in choices:
        raise ValueError('tool_choice must be "auto", "none", "required" or {"type": "function", '
                         '"function": {"name": ...}}')
    chat.tool_choice = choices[tool_choice]


def _finish_name(value: int) -> Optional[str]:
    if value == attnres_pb2.FINISH_REASON_UNSPECIFIED:
        return None
    return attnres_pb2.FinishReason.Name(value).replace("FINISH_REASON_", "")


class Client:
    """A connection to one attnres-server. Usable as a context manager."""

    def __init__(self, target: str = "127.0.0.1:50051", timeout: Optional[float] = None):
        self._channel = grpc.insecure_channel(target)
        self._stub = attnres_pb2_grpc.AttnResStub(self._channel)
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def build_request(prompt=None, *, prompt_ids: Optional[Sequence[int]] = None,
                      messages: Optional[Sequence[Mapping[str, str]]] = None,
                      add_generation_prompt: Optional[bool] = None,
                      continue_final_message: Optional[bool] = None,
                      tools: Optional[Sequence[Mapping]] = None,
                      tool_choice=None, parallel_tool_calls: Optional[bool] = None,
                      stop: Sequence[str] = (), stop_token_ids: Sequence[int] = (),
                      logit_bias: Optional[Mapping[int, float]] = None,
                      response_format: Optional[Mapping] = None,
                      guided_regex: Optional[str] = None,
                      guided_choice: Optional[Sequence[str]] = None,
                      **kwargs) -> "attnres_pb2.GenerateRequest":
        """A GenerateRequest from a text prompt, prompt_ids or chat messages
        ([{"role": ..., "content": ...}], written out by the model's chat template; OpenAI's
        "tool_calls" and "tool_call_id" message keys included) and keyword fields. `tools`
        (with messages only) are OpenAI's [{"type": "function", "function": {"name",
        "description", "parameters"}}], which the template writes into the prompt; the text
        that comes back is the model's own, and a server with --tool-call-parser also reads
        calls out of it (response.tool_calls, finish_reason "TOOL_CALLS"). `tool_choice` (with
        tools) is OpenAI's "auto", "none" (the text is not read for calls), "required" or
        {"type": "function", "function": {"name": ...}}: the last two make the output exactly
        tool calls (any tools, or one call of the named one) whose arguments follow the tools'
        parameters, which needs --tool-call-parser. `parallel_tool_calls` False keeps one call.
        `response_format` is OpenAI's dict ({"type":
        "json_object"}, or {"type": "json_schema", "json_schema": {"schema": {...}, "name":
        ...}}): the output is then JSON of that shape. `guided_regex` (a regular expression the
        whole output matches) and `guided_choice` (exactly one of these strings) are vLLM's;
        at most one of the three."""
        if sum(p is not None for p in (prompt, prompt_ids, messages)) != 1:
            raise ValueError("give exactly one of prompt, prompt_ids and messages")
        if tools and messages is None:
            raise ValueError("tools need messages")
        if (tool_choice is not None or parallel_tool_calls is not None) and not tools:
            raise ValueError("tool_choice and parallel_tool_calls need tools")
        request = attnres_pb2.GenerateRequest()
        if prompt is not None:
            request.prompt.text = prompt
        elif messages is not None:
            for m in messages:
                message = request.prompt.chat.messages.add(role=m["role"],
                                                           content=m.get("content") or "")
                for call in m.get("tool_calls") or ():
                    arguments = call["function"].get("arguments", "{}")
                    message.tool_calls.add(
                        id=call.get("id", ""), name=call["function"]["name"],
                        arguments_json=(arguments if isinstance(arguments, str)
                                        else json.dumps(arguments)))
                if m.get("tool_call_id"):
                    message.tool_call_id = m["tool_call_id"]
            for tool in tools or ():
                function = tool.get("function", tool)
                added = request.prompt.chat.tools.add(name=function["name"])
                if function.get("description") is not None:
                    added.description = function["description"]
                if function.get("parameters") is not None:
                    added.parameters_json = json.dumps(function["parameters"])
            if tool_choice is not None:
                _set_tool_choice(request.prompt.chat, tool_choice)
            if parallel_tool_calls is not None:
                request.prompt.chat.parallel_tool_calls = parallel_tool_calls
            if add_generation_prompt is not None:
                request.prompt.chat.add_generation_prompt = add_generation_prompt
            if continue_final_message is not None:
                request.prompt.chat.continue_final_message = continue_final_message
        else:
            request.prompt.token_ids.ids.extend(prompt_ids)
        request.stop.extend(stop)
        request.stop_token_ids.extend(stop_token_ids)
        request.sampling.logit_bias.update(logit_bias or {})
        if sum(x is not None for x in (response_format, guided_regex, guided_choice)) > 1:
            raise ValueError("give at most one of response_format, guided_regex and guided_choice")
        if response_format is not None:
            _set_response_format(request.response_format, response_format)
        if guided_regex is not None:
            request.response_format.regex.pattern = guided_regex
        if guided_choice is not None:
            request.response_format.choice.choices.extend(guided_choice)
        for name, value in kwargs.items():
            if value is None:
                continue
            if name in _SAMPLING_FIELDS:
                setattr(request.sampling, name, value)
            elif name in _REQUEST_FIELDS:
                setattr(request, name, value)
            else:
                raise TypeError(f"unknown generate option: {name}")
        return request

    def generate(self, prompt=None, **kwargs) -> GenerateResult:
        """The whole completion. Raises grpc.RpcError on failure."""
        timeout = kwargs.pop("timeout", self._timeout)
        response = self._stub.Generate(self.build_request(prompt, **kwargs), timeout=timeout)
        return GenerateResult(
            text=response.text, token_ids=list(response.token_ids),
            finish_reason=_finish_name(response.finish_reason) or "",
            stop_reason=response.stop_reason, prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            request_id=response.request_id, response=response)

    def generate_stream(self, prompt=None, **kwargs) -> Iterator[StreamChunk]:
        """Yields chunks as the server produces them. Closing the iterator cancels the call."""
        timeout = kwargs.pop("timeout", self._timeout)
        call = self._stub.GenerateStream(self.build_request(prompt, **kwargs), timeout=timeout)
        try:
            for message in call:
                yield StreamChunk(text=message.text, token_ids=list(message.token_ids),
                                  finish_reason=_finish_name(message.finish_reason),
                                  message=message)
        finally:
            call.cancel()  # no-op once the stream has ended

    def tokenize(self, text: str, add_special_tokens: Optional[bool] = None) -> List[int]:
        request = attnres_pb2.TokenizeRequest(text=text)
        if add_special_tokens is not None:
            request.add_special_tokens = add_special_tokens
        return list(self._stub.Tokenize(request, timeout=self._timeout).token_ids)

    def detokenize(self, token_ids: Sequence[int],
                   skip_special_tokens: Optional[bool] = None) -> str:
        request = attnres_pb2.DetokenizeRequest(token_ids=list(token_ids))
        if skip_special_tokens is not None:
            request.skip_special_tokens = skip_special_tokens
        return self._stub.Detokenize(request, timeout=self._timeout).text

    def info(self) -> "attnres_pb2.ModelInfo":
        return self._stub.GetModelInfo(attnres_pb2.GetModelInfoRequest(), timeout=self._timeout)
