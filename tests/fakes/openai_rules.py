"""What each OpenAI-compatible vendor refuses, as `ScriptedOpenAIServer.refuse_as(vendor)`
applies it: `refusal(payload, vendor)` is the (status, message, code) of the 400 the real
service answers, or None when it would accept the request.

Sources (texts copied from the vendors' answers as their users report them):
- every vendor: an assistant message's tool calls answered by tool messages right after
  it (OpenAI's text; DashScope and DeepSeek enforce the same); `function.arguments` a
  string.
- openai: unknown request arguments ("Unrecognized request argument supplied: …"),
  which is how it answers the other vendors' thinking switches; `reasoning_content` on a
  message (modelled the same way: it is not part of its message schema).
- deepseek (api-docs.deepseek.com/guides/thinking_mode; opencode#24722, continue#11285,
  cloudwego/eino#994): thinking is on unless `thinking.type` is "disabled"; then an
  assistant message with tool calls and no `reasoning_content` is refused, and so is a
  forced `tool_choice`. `deepseek-reasoner` (the older rule) also refused
  `reasoning_content` on assistant messages without tool calls.
- dashscope (alibabacloud deep-thinking page; langchain4j#3974, eino#994,
  Qwen-Agent#941, presenton#184): Qwen3.5 thinks unless `enable_thinking` is false,
  which a non-streaming call must say; no forced
  `tool_choice` and no JSON mode while thinking, `thinking_budget` a positive integer
  (required by the models named in `DASHSCOPE_BUDGET_REQUIRED`).
- ollama (its /v1 compatibility layer): `reasoning_effort` one of high, medium, low,
  none.
- gemini (ai.google.dev/gemini-api/docs/thought-signatures and /openai; bug threads such
  as manthanabc/paws#103): in the current turn (after the last user message) the first
  call of every step must carry the thought signature Gemini issued, or the documented
  fallback; other vendors' fields are unknown names to its proto parser;
  `reasoning_effort` one of minimal, low, medium, high, none, and never with a
  `thinking_config` budget.
- ernie (Qianfan v2): the common rules; its error bodies carry string codes.
- openai, GPT-5 family and o-series (model name): `max_tokens` refused ("Unsupported
  parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'
  instead."), and any temperature but 1.
- kimi (MoonshotAI Kimi-K2 docs, tool_call_guidance; opencode#16318, continue#11711,
  deer-flow#3043): thinking on unless `thinking.type` is "disabled"; then a tool-call
  assistant message without `reasoning_content` is refused ("thinking is enabled but
  reasoning_content is missing in assistant tool call message at index N"), and so is a
  forced `tool_choice` or a temperature other than 1 (PROTOCOLS G; texts unverified).
- glm (docs.bigmodel.cn): `thinking.type` enabled|disabled; error code "1214" for a bad
  parameter. Reasoning missing from a tool round is not refused (only degrades).
- minimax (platform.minimax.io, M2 tool use): two system messages → "invalid chat
  setting (2013)"; temperature in (0, 1].
- openrouter (openrouter.ai/docs, reasoning tokens: preserving reasoning blocks): with
  Gemini behind it, a tool-call assistant message of the current turn without the
  `reasoning_details` it was given is refused ("Provider returned error", raw "Gemini
  models require OpenRouter reasoning details to be preserved").
- mistral (docs.mistral.ai API spec; langchain#24668, magentic#276): unknown fields are
  refused with 422 `extra_forbidden` (in the body and in messages); tool-call ids exactly
  nine of a-z, A-Z, 0-9.
- ark (Volcengine Ark chat API): `thinking.type` enabled|disabled|auto, else
  `InvalidParameter`.
- siliconflow (docs.siliconflow.cn chat completions): `enable_thinking` a boolean,
  `thinking_budget` 128 to 32768 (range unverified); errors `{"code": 20015, ...}`.
"""

from __future__ import annotations

import base64
import re
from typing import Any

Refusal = tuple[int, str, str | None]

OPENAI_ARGUMENTS = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "stream",
        "stream_options", "temperature", "max_tokens", "max_completion_tokens", "top_p",
        "n", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
        "top_logprobs", "user", "seed", "response_format", "reasoning_effort", "metadata",
        "store", "service_tier", "modalities", "audio", "prediction", "verbosity",
        "web_search_options", "safety_identifier", "prompt_cache_key",
    }
)  # fmt: skip
DEEPSEEK_REASONING_MISSING = (
    "The `reasoning_content` in the thinking mode must be passed back to the API."
)
DEEPSEEK_TOOL_CHOICE = "Thinking mode does not support this tool_choice"
DASHSCOPE_NOT_STREAMING = "parameter.enable_thinking must be set to false for non-streaming calls"
DASHSCOPE_TOOL_CHOICE = (
    "<400> InternalError.Algo.InvalidParameter: The tool_choice parameter does not support "
    "being set to required or object in thinking mode"
)
DASHSCOPE_JSON_MODE = "Json mode response is not supported when enable_thinking is true"
DASHSCOPE_MAX_BUDGET = 38912
DASHSCOPE_BUDGET_REQUIRED = ("qwen3.5-27b",)
OLLAMA_EFFORTS = ("high", "medium", "low", "none")


def refusal(payload: dict[str, Any], vendor: str, issued: set[str] | None = None) -> Refusal | None:
    """Why `vendor` would refuse this request body, or None. `issued`: the thought
    signatures a Gemini server handed out."""
    messages = payload.get("messages") or []
    problem = _tool_pairing(messages)
    if problem:
        return problem
    if vendor == "gemini":
        return _gemini(payload, messages, issued or set())
    if vendor == "openrouter":
        return _openrouter(messages, issued or set())
    check = _CHECKS.get(vendor)
    return check(payload, messages) if check else None


def _tool_pairing(messages: list[dict[str, Any]]) -> Refusal | None:
    for number, message in enumerate(messages):
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not calls:
            continue
        for position, call in enumerate(calls):
            arguments = (call.get("function") or {}).get("arguments")
            if not isinstance(arguments, str):
                return (
                    400,
                    f"Invalid type for 'messages[{number}].tool_calls[{position}].function."
                    f"arguments': expected a string, but got {type(arguments).__name__} instead.",
                    "invalid_type",
                )
        answered = set()
        for later in messages[number + 1 :]:
            if later.get("role") != "tool":
                break
            answered.add(later.get("tool_call_id"))
        missing = [call.get("id") for call in calls if call.get("id") not in answered]
        if missing:
            return (
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(str(m) for m in missing)}",
                None,
            )
    return None


def _openai(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    for key in payload:
        if key not in OPENAI_ARGUMENTS:
            return 400, f"Unrecognized request argument supplied: {key}", None
    if str(payload.get("model")).startswith(("gpt-5", "o1", "o3", "o4")):
        if "max_tokens" in payload:
            return (
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "unsupported_parameter",
            )
        if payload.get("temperature", 1) != 1:
            return (
                400,
                f"Unsupported value: 'temperature' does not support {payload['temperature']} "
                "with this model. Only the default (1) value is supported.",
                "unsupported_value",
            )
    for message in messages:
        for call in message.get("tool_calls") or []:
            if len(str(call.get("id"))) > 40:
                return (
                    400,
                    "Invalid 'messages[].tool_calls[].id': string too long. Expected a "
                    "string with maximum length 40.",
                    "string_above_max_length",
                )
    for number, message in enumerate(messages):
        if "reasoning_content" in message:
            return (
                400,
                f"Unrecognized request argument supplied: messages[{number}].reasoning_content",
                None,
            )
    return None


def _deepseek(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    thinking = payload.get("thinking")
    if thinking is not None and (
        not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled")
    ):
        return 400, "thinking.type must be one of enabled, disabled", "invalid_request_error"
    if not (isinstance(thinking, dict) and thinking.get("type") == "disabled"):
        choice = payload.get("tool_choice")
        if choice == "required" or isinstance(choice, dict):
            return 400, DEEPSEEK_TOOL_CHOICE, "invalid_request_error"
        legacy = payload.get("model") == "deepseek-reasoner"
        for message in messages:
            if message.get("role") != "assistant":
                continue
            if message.get("tool_calls") and not isinstance(message.get("reasoning_content"), str):
                return 400, DEEPSEEK_REASONING_MISSING, "invalid_request_error"
            if legacy and not message.get("tool_calls") and "reasoning_content" in message:
                return (
                    400,
                    "reasoning_content is not allowed in input messages without tool calls",
                    "invalid_request_error",
                )
    return None


def _dashscope(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    # Qwen3.5 models think unless told not to.
    thinking = payload.get("enable_thinking", True)
    if thinking is True and not payload.get("stream"):
        return 400, DASHSCOPE_NOT_STREAMING, "invalid_parameter_error"
    budget = payload.get("thinking_budget")
    if thinking is True:
        if budget is None and str(payload.get("model")) in DASHSCOPE_BUDGET_REQUIRED:
            budget = 0  # treated as 0 when missing, then refused
        if budget is not None and (
            not isinstance(budget, int) or not 0 < budget <= DASHSCOPE_MAX_BUDGET
        ):
            return (
                400,
                "<400> InternalError.Algo.InvalidParameter: The thinking_budget parameter must "
                f"be a positive integer and not greater than {DASHSCOPE_MAX_BUDGET}",
                "invalid_parameter_error",
            )
        choice = payload.get("tool_choice")
        if choice == "required" or isinstance(choice, dict):
            return 400, DASHSCOPE_TOOL_CHOICE, "invalid_parameter_error"
        if (payload.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            return 400, DASHSCOPE_JSON_MODE, "invalid_parameter_error"
    return None


def _ollama(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    effort = payload.get("reasoning_effort")
    if effort is not None and effort not in OLLAMA_EFFORTS:
        return (
            400,
            f'invalid reasoning value: \'{effort}\' (must be "high", "medium", "low", or "none")',
            None,
        )
    return None


GEMINI_SIGNATURE_MISSING = (
    "Function call is missing a thought_signature in functionCall parts. This is required "
    "for tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}` , position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
GEMINI_FALLBACKS = ("skip_thought_signature_validator", "context_engineering_is_the_way_to_go")
GEMINI_FOREIGN = ("thinking", "enable_thinking", "thinking_budget", "chat_template_kwargs",
                  "thinking_token_budget", "think")  # fmt: skip
GEMINI_EFFORTS = ("minimal", "low", "medium", "high", "none")


def _gemini(
    payload: dict[str, Any], messages: list[dict[str, Any]], issued: set[str]
) -> Refusal | None:
    for key in GEMINI_FOREIGN:
        if key in payload:
            return (
                400,
                f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.',
                None,
            )
    for number, message in enumerate(messages):
        if "reasoning_content" in message:
            return (
                400,
                'Invalid JSON payload received. Unknown name "reasoning_content" at '
                f"'messages[{number}]': Cannot find field.",
                None,
            )
    effort = payload.get("reasoning_effort")
    if effort is not None and effort not in GEMINI_EFFORTS:
        return 400, f"Invalid reasoning effort: {effort}", None
    google = ((payload.get("extra_body") or {}).get("google") or {}).get("thinking_config") or {}
    if effort is not None and "thinking_budget" in google:
        return 400, "reasoning_effort and thinking_budget cannot both be set", None
    users = [n for n, m in enumerate(messages) if m.get("role") == "user"]
    turn = users[-1] if users else -1
    contents = [m for m in messages if m.get("role") != "system"]
    for message in messages[turn + 1 :]:
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not calls:
            continue
        first = calls[0]
        signature = ((first.get("extra_content") or {}).get("google") or {}).get(
            "thought_signature"
        )
        if not isinstance(signature, str) or not signature:
            name = (first.get("function") or {}).get("name")
            position = contents.index(message) + 1
            return 400, GEMINI_SIGNATURE_MISSING.format(name=name, position=position), None
        if signature not in GEMINI_FALLBACKS and signature not in issued:
            return 400, "Thought signature is not valid.", None
    return None


KIMI_REASONING_MISSING = (
    "thinking is enabled but reasoning_content is missing in assistant tool call message "
    "at index {index}"
)


def _kimi(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    thinking = payload.get("thinking")
    if thinking is not None and (
        not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled")
    ):
        return 400, "invalid thinking type", "invalid_request_error"
    if isinstance(thinking, dict) and thinking.get("type") == "disabled":
        return None
    choice = payload.get("tool_choice")
    if choice == "required" or isinstance(choice, dict):
        return 400, "tool_choice 'required' is incompatible with thinking enabled", None
    if payload.get("temperature", 1) != 1:
        return 400, "invalid temperature: only 1 is allowed for this model", None
    for number, message in enumerate(messages):
        if (
            message.get("role") == "assistant"
            and message.get("tool_calls")
            and not isinstance(message.get("reasoning_content"), str)
        ):
            return 400, KIMI_REASONING_MISSING.format(index=number), "invalid_request_error"
    return None


def _thinking_type(payload: dict[str, Any], allowed: tuple[str, ...], code: str) -> Refusal | None:
    thinking = payload.get("thinking")
    if thinking is not None and (
        not isinstance(thinking, dict) or thinking.get("type") not in allowed
    ):
        return 400, f"thinking.type must be one of {', '.join(allowed)}", code
    return None


def _glm(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    return _thinking_type(payload, ("enabled", "disabled"), "1214")


def _ark(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    return _thinking_type(payload, ("enabled", "disabled", "auto"), "InvalidParameter")


def _minimax(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    if sum(1 for m in messages if m.get("role") == "system") > 1:
        return 400, "invalid chat setting (2013)", "2013"
    temperature = payload.get("temperature")
    if temperature is not None and not 0 < temperature <= 1:
        return 400, "invalid params, temperature must be in (0, 1] (2013)", "2013"
    return None


OPENROUTER_DETAILS_MISSING = "Gemini models require OpenRouter reasoning details to be preserved"


def _openrouter(messages: list[dict[str, Any]], issued: set[str]) -> Refusal | None:
    users = [n for n, m in enumerate(messages) if m.get("role") == "user"]
    for message in messages[(users[-1] if users else -1) + 1 :]:
        if message.get("role") != "assistant" or not message.get("tool_calls"):
            continue
        details = message.get("reasoning_details")
        items = details if isinstance(details, list) else []
        signed = [
            d.get("data")
            for d in items
            if isinstance(d, dict) and d.get("type") == "reasoning.encrypted"
        ]
        if not signed or any(s not in issued for s in signed):
            return 400, f"Provider returned error: {OPENROUTER_DETAILS_MISSING}", None
    return None


MISTRAL_ARGUMENTS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop",
        "random_seed", "response_format", "tools", "tool_choice", "presence_penalty",
        "frequency_penalty", "n", "prediction", "parallel_tool_calls", "prompt_mode",
        "safe_prompt", "metadata",
    }
)  # fmt: skip
MISTRAL_MESSAGE_FIELDS = frozenset(
    {"role", "content", "tool_calls", "tool_call_id", "name", "prefix"}
)
MISTRAL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")


def _mistral(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    for key in payload:
        if key not in MISTRAL_ARGUMENTS:
            return 422, f"body.{key}: Extra inputs are not permitted [extra_forbidden]", None
    for number, message in enumerate(messages):
        for key in message:
            if key not in MISTRAL_MESSAGE_FIELDS:
                return (
                    422,
                    f"body.messages.{number}.{key}: Extra inputs are not permitted "
                    "[extra_forbidden]",
                    None,
                )
        ids = [c.get("id") for c in message.get("tool_calls") or []]
        if message.get("role") == "tool":
            ids.append(message.get("tool_call_id"))
        for call_id in ids:
            if not MISTRAL_ID.match(str(call_id)):
                return (
                    400,
                    f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, with a length of 9.",
                    "invalid_request_error",
                )
    return None


def _siliconflow(payload: dict[str, Any], messages: list[dict[str, Any]]) -> Refusal | None:
    thinking = payload.get("enable_thinking")
    if thinking is not None and not isinstance(thinking, bool):
        return 400, "enable_thinking must be a boolean", "20015"
    budget = payload.get("thinking_budget")
    if budget is not None and (not isinstance(budget, int) or not 128 <= budget <= 32768):
        return 400, "thinking_budget must be between 128 and 32768", "20015"
    return None


_CHECKS = {
    "openai": _openai,
    "deepseek": _deepseek,
    "dashscope": _dashscope,
    "ollama": _ollama,
    "kimi": _kimi,
    "glm": _glm,
    "ark": _ark,
    "minimax": _minimax,
    "mistral": _mistral,
    "siliconflow": _siliconflow,
}


# -- Image parts (every vendor: OpenAI's rules, which DashScope and vLLM follow) ---------
#
# platform.openai.com/docs/guides/images-vision: an image is an `image_url` content part
# of a user message whose `url` is http(s) or a base64 data URL of PNG, JPEG, WebP or
# non-animated GIF; the texts are OpenAI's, as its users quote them.

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
NO_VISION = "Invalid content type. image_url is only supported by certain models."
_DATA_URL_EXAMPLE = "(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU=')"


def image_refusal(payload: dict[str, Any], *, vision: bool = True) -> Refusal | None:
    """Why the request's content parts would be refused (`vision`: the model sees)."""
    for number, message in enumerate(payload.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for position, part in enumerate(content):
            where = f"messages[{number}].content[{position}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    return 400, f"Invalid type for '{where}.text': expected a string.", None
                continue
            if kind != "image_url":
                return (
                    400,
                    f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.",
                    None,
                )
            if message.get("role") != "user":
                return (
                    400,
                    "Image URLs are only allowed for messages with role 'user', but this message "
                    f"with role '{message.get('role')}' contains an image URL.",
                    "invalid_value",
                )
            if not vision:
                return 400, NO_VISION, None
            problem = _data_url_problem(part.get("image_url"), where)
            if problem:
                return problem
    return None


def _data_url_problem(image_url: Any, where: str) -> Refusal | None:
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str):
        return 400, f"Missing required parameter: '{where}.image_url.url'.", None
    if url.startswith(("https://", "http://")):
        return None
    expected = (
        f"Invalid '{where}.image_url.url'. Expected a base64-encoded data URL with an "
        f"image MIME type {_DATA_URL_EXAMPLE}"
    )
    header, comma, data = url.partition(",")
    if not header.startswith("data:") or not comma:
        return 400, f"{expected}, but got a value without the 'data:' prefix.", "invalid_value"
    media_type, _, encoding = header.removeprefix("data:").partition(";")
    if media_type not in IMAGE_TYPES:
        return 400, f"{expected}, but got unsupported MIME type '{media_type}'.", "invalid_value"
    if encoding != "base64":
        return 400, "Invalid base64 image_url.", "invalid_value"
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return 400, "Invalid base64 image_url.", "invalid_value"
    webp = raw[:4] == b"RIFF" and raw[8:12] == b"WEBP"
    if not (
        raw.startswith(_IMAGE_MAGIC.get(media_type, ())) or (media_type == "image/webp" and webp)
    ):
        return (
            400,
            "You uploaded an unsupported image. Please make sure your image is valid.",
            "invalid_image_format",
        )
    return None
