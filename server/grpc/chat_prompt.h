// prompt.chat written out as text by the served model's chat template, as Hugging Face
// transformers' apply_chat_template(tokenize=False) does: the template sees `messages` (a list of
// {"role", "content"}, with "tool_calls" on assistant messages that made calls and
// "tool_call_id" on tool results, as vLLM passes them), `add_generation_prompt`, `bos_token`,
// `eos_token`, `tools` (the list of {"type": "function", "function": {...}}, none without tools)
// and `documents` as none. With continue_final_message the text is then cut after the final
// message's content (CutAfterFinalMessage, models/chat_template.h), as transformers'
// continue_final_message=True cuts it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"
#include "server/grpc/serving_context.h"

namespace attnres {

// FAILED_PRECONDITION when the server has no chat template; INVALID_ARGUMENT, prefixed
// "prompt.chat: ", when the template refuses the conversation (its raise_exception message) or
// fails on it; INVALID_ARGUMENT, prefixed "prompt.chat.continue_final_message: ", when the final
// message to continue is not in the rendered text.
absl::StatusOr<std::string> RenderChat(const v1::Chat& chat, const ServingContext& ctx);

}  // namespace attnres
