"""What each OpenAI-compatible vendor accepts and returns, as small declarative profiles.

`OpenAICompatProvider` consults its profile to send only what the vendor accepts (a
setting the vendor would reject is dropped with one warning at start) and to read what
it returns (reasoning kept out of the answer). Facts and their sources: PROTOCOLS.md
section C and docs/providers.md; where a vendor's support is unverified the profile
takes the safe side (does not send the parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class VendorProfile:
    name: str
    # Accepts `parallel_tool_calls`; the value sent when the setting is unset (None: omit).
    parallel_tool_calls: bool = True
    default_parallel_tool_calls: bool | None = None
    # `tool_choice` string values it accepts (a forced named tool is not used by Parley).
    tool_choice: frozenset[str] = frozenset({"auto", "none", "required"})
    # Accepts `"strict": true` on function definitions.
    strict_schemas: bool = True
    # Accepts `stream_options.include_usage` (else usage is read if the vendor sends it).
    stream_usage: bool = True
    # Delta fields carrying reasoning ("thinking") text: never part of the answer.
    reasoning_fields: tuple[str, ...] = ()
    # Reasoning inlined in `content` as <think>...</think> (served without a reasoning
    # parser): stripped from the answer.
    think_tags: bool = False
    # Tool calls may arrive as Hermes `<tool_call>` markup in `content` (a server without
    # a matching tool-call parser): parsed into calls, kept out of the answer.
    tool_call_markup: bool = False
    # How PARLEY_LLM_THINKING is sent (bot/llm/thinking.py): "" sends nothing.
    thinking: str = ""
    # Thinking is on unless turned off (auto means on), and a forced `tool_choice`
    # (required or a named function) is refused while it is.
    thinks_by_default: bool = False
    # The assistant-message field that carries a tool round's reasoning back in every
    # later request (DeepSeek, Kimi, GLM, Ark); "" keeps nothing; "*" keeps whichever of
    # `reasoning_fields` streamed, under its own name (the generic profile).
    reasoning_replay: str = ""
    # The vendor refuses a tool-call assistant message without that field: rounds it did
    # not make (another vendor's, or from before thinking) get it empty.
    reasoning_required: bool = False
    # OpenRouter: the `reasoning_details` array of a tool round goes back unchanged.
    reasoning_details: bool = False
    # MiniMax: the <think> block stays in the assistant message's content in history
    # (never shown to the user).
    think_replay: bool = False
    # The shape a tool-call id must have going to this vendor ("" any id it issued or
    # another vendor did; "alnum9": Mistral's nine letters and digits; "max40": OpenAI's
    # at most 40 characters).
    tool_call_ids: str = ""
    # Accepts fields beyond its own schema (Mistral answers 422 `extra_forbidden`).
    lenient: bool = True
    # The field for a token cap: OpenAI's GPT-5 and o-series refuse `max_tokens`.
    max_tokens_field: str = "max_tokens"
    # Usage may come inside the finishing choice (Kimi) rather than beside it.
    usage_in_choice: bool = False
    # Thinking takes only the default temperature (1): another value is not sent then.
    temperature_one_while_thinking: bool = False
    # Tool calls carry `extra_content.google.thought_signature`, sent back with the same
    # call (Gemini 3); a call without one gets Google's documented fallback.
    thought_signatures: bool = False
    # A 429 says how long to wait only in its body (`retryDelay` in `error.details`).
    retry_delay_in_body: bool = False


# An unknown host: reasoning in either common field, handed back under the name it came.
GENERIC = VendorProfile(
    "generic", reasoning_fields=("reasoning_content", "reasoning"), reasoning_replay="*"
)
PROFILES: dict[str, VendorProfile] = {
    "generic": GENERIC,
    # OpenAI: `max_tokens` is deprecated, and refused by GPT-5 and the o-series, which
    # take only the default temperature (openai_compat.py drops another value for them).
    # `max_completion_tokens` is sent for every model: the API reference gives it for all
    # chat models and `max_tokens` only as the deprecated older name. The profile is
    # detected for api.openai.com alone; Azure OpenAI refuses `max_completion_tokens`
    # under api-versions up to 2024-08-01-preview ("Unrecognized request argument",
    # openai-python#1724, litellm#8638), so Azure hosts get the generic profile, and
    # PARLEY_LLM_PROFILE=openai suits Azure only with a newer api-version.
    "openai": VendorProfile(
        "openai", max_tokens_field="max_completion_tokens", tool_call_ids="max40"
    ),
    # Qwen answers one tool call per response unless parallel_tool_calls=true; thinking
    # arrives in reasoning_content; `required` and strict are unverified, so not sent.
    # Qwen3.5 thinks by default (enable_thinking, streaming only) and then refuses a
    # forced tool_choice; `required` without thinking is accepted.
    "dashscope": VendorProfile(
        "dashscope",
        default_parallel_tool_calls=True,
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
        thinking="dashscope",
        thinks_by_default=True,
    ),
    # DeepSeek: no parallel_tool_calls parameter; strict only on its beta endpoint;
    # usage comes on the last chunk. V4 models think by default ({"thinking": {"type":
    # ...}}), refuse a forced tool_choice while thinking, and need a tool round's
    # reasoning_content back in every later request.
    "deepseek": VendorProfile(
        "deepseek",
        parallel_tool_calls=False,
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
        thinking="deepseek",
        thinks_by_default=True,
        reasoning_replay="reasoning_content",
        reasoning_required=True,
    ),
    # Kimi K2.x (Moonshot): thinks by default ({"thinking": {"type": ...}}); every
    # tool-call assistant message needs reasoning_content ("" for rounds it did not make);
    # ids `functions.<name>:<idx>` go back verbatim; usage inside the last choice;
    # temperature 1 and no forced tool_choice while thinking. parallel_tool_calls and
    # strict are unverified, so not sent.
    "kimi": VendorProfile(
        "kimi",
        parallel_tool_calls=False,
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
        thinking="deepseek",
        thinks_by_default=True,
        reasoning_replay="reasoning_content",
        reasoning_required=True,
        usage_in_choice=True,
        temperature_one_while_thinking=True,
    ),
    # GLM (Zhipu, Z.ai): thinks by default (`thinking.type`); interleaved thinking wants
    # the reasoning "kept and returned with the tool results" (not refused without it);
    # `sensitive` and `network_error` finishes. strict is unverified, so not sent.
    "glm": VendorProfile(
        "glm",
        parallel_tool_calls=False,
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
        thinking="deepseek",
        reasoning_replay="reasoning_content",
    ),
    # MiniMax M2.x: thinking inline as <think>...</think>, kept verbatim in history and
    # never shown; two system messages and a temperature outside (0, 1] are refused.
    "minimax": VendorProfile(
        "minimax",
        parallel_tool_calls=False,
        strict_schemas=False,
        think_tags=True,
        think_replay=True,
    ),
    # OpenRouter: reasoning in `reasoning` (shown as thinking) and `reasoning_details`
    # (a tool round's go back unchanged: Gemini behind it refuses the loop otherwise);
    # `: OPENROUTER PROCESSING` comments; a mid-stream error is a chunk with `error`.
    "openrouter": VendorProfile(
        "openrouter",
        strict_schemas=False,
        reasoning_fields=("reasoning",),
        reasoning_details=True,
    ),
    # Mistral: unknown fields are refused (422 extra_forbidden: stream_options,
    # max_completion_tokens, reasoning_content); tool-call ids exactly nine letters and
    # digits; usage in the last chunk anyway.
    "mistral": VendorProfile(
        "mistral",
        strict_schemas=False,
        stream_usage=False,
        tool_call_ids="alnum9",
        lenient=False,
    ),
    # Volcengine Ark (Doubao): `thinking.type` enabled|disabled|auto, reasoning_content
    # (handed back on tool rounds; not refused without it: unverified).
    "ark": VendorProfile(
        "ark",
        parallel_tool_calls=False,
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
        thinking="deepseek",
        reasoning_replay="reasoning_content",
    ),
    # SiliconFlow: `enable_thinking` (and `thinking_budget`) for the models that think,
    # reasoning_content; its errors are `{"code": 20015, "message": ...}`.
    "siliconflow": VendorProfile(
        "siliconflow",
        parallel_tool_calls=False,
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
        thinking="siliconflow",
    ),
    # vLLM: reasoning parsers emit `reasoning_content` (older) or `reasoning` (newer);
    # without a parser a thinking model inlines <think> tags in the content.
    "vllm": VendorProfile(
        "vllm",
        strict_schemas=False,
        reasoning_fields=("reasoning_content", "reasoning"),
        think_tags=True,
        tool_call_markup=True,
        thinking="vllm",
    ),
    # Ollama's compatible endpoint: no parallel_tool_calls or tool_choice, thinking in
    # `reasoning` (switched with reasoning_effort), each tool call whole in its own
    # chunk at index 0, and finish_reason "stop" with calls.
    "ollama": VendorProfile(
        "ollama",
        parallel_tool_calls=False,
        tool_choice=frozenset({"auto"}),
        strict_schemas=False,
        reasoning_fields=("reasoning",),
        think_tags=True,
        tool_call_markup=True,
        thinking="ollama",
    ),
    # Gemini's OpenAI-compatible endpoint: tool-call deltas without index, each call
    # whole, finish_reason "stop" after calls, thought signatures on calls, errors as a
    # JSON array, retryDelay only in a 429's body. parallel_tool_calls, strict and a
    # forced tool_choice are unverified there, so not sent.
    "gemini": VendorProfile(
        "gemini",
        parallel_tool_calls=False,
        tool_choice=frozenset({"auto", "none"}),
        strict_schemas=False,
        thinking="gemini",
        thought_signatures=True,
        retry_delay_in_body=True,
    ),
    # ERNIE on Baidu Qianfan (v2, OpenAI-compatible): ERNIE X1 streams reasoning_content;
    # parallel_tool_calls, strict and a forced tool_choice are unverified, so not sent.
    "ernie": VendorProfile(
        "ernie",
        parallel_tool_calls=False,
        tool_choice=frozenset({"auto", "none"}),
        strict_schemas=False,
        reasoning_fields=("reasoning_content",),
    ),
}


_HOSTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("api.moonshot.ai", "api.moonshot.cn"), "kimi"),
    (("open.bigmodel.cn", "api.z.ai"), "glm"),
    (("api.minimax.io", "api.minimaxi.com", "api.minimax.chat"), "minimax"),
    (("openrouter.ai",), "openrouter"),
    (("api.mistral.ai", "codestral.mistral.ai"), "mistral"),
    ((".volces.com", ".bytepluses.com"), "ark"),
    (("api.siliconflow.cn", "api.siliconflow.com"), "siliconflow"),
)


def detect_profile(base_url: str) -> VendorProfile:
    """The profile for an endpoint, from its host (generic when unknown)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host == "api.openai.com":
        return PROFILES["openai"]
    # Model Studio's workspace endpoints (`<workspace>.<region>.maas.aliyuncs.com`).
    if "dashscope" in host or host.endswith((".qwencloud.com", ".maas.aliyuncs.com")):
        return PROFILES["dashscope"]
    for names, profile in _HOSTS:
        if any(host == n or host.endswith(n if n[0] == "." else f".{n}") for n in names):
            return PROFILES[profile]
    if host.endswith("deepseek.com"):
        return PROFILES["deepseek"]
    if parts.port == 11434 or "ollama" in host:
        return PROFILES["ollama"]
    if host == "generativelanguage.googleapis.com":
        return PROFILES["gemini"]
    if host == "qianfan.baidubce.com":
        return PROFILES["ernie"]
    return GENERIC


def profile_for(name: str, base_url: str) -> VendorProfile:
    return detect_profile(base_url) if name == "auto" else PROFILES[name]


class ThinkTagFilter:
    """Removes <think>...</think> from streamed text, tags split across chunks included."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self._inside = False
        self._held = ""
        self._after_close = False  # drop the newlines that follow </think>
        self.thought: list[str] = []  # what was inside the tags, for a vendor that wants it

    def block(self) -> str:
        """The think block as the model wrote it ("" when there was none)."""
        return f"{self.OPEN}{''.join(self.thought)}{self.CLOSE}" if self.thought else ""

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        if self._after_close:
            text = text.lstrip("\n")
            self._after_close = not text
        out: list[str] = []
        while text:
            tag = self.CLOSE if self._inside else self.OPEN
            found = text.find(tag)
            if found >= 0:
                (self.thought if self._inside else out).append(text[:found])
                text = text[found + len(tag) :]
                self._inside = not self._inside
                if not self._inside:
                    text = text.lstrip("\n")
                    self._after_close = not text
                continue
            # Hold back a suffix that may be the start of a tag split across chunks.
            keep = next((n for n in range(len(tag) - 1, 0, -1) if text.endswith(tag[:n])), 0)
            (self.thought if self._inside else out).append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return "".join(out)

    def flush(self) -> str:
        if self._inside:
            self.thought.append(self._held)
        held, self._held = ("" if self._inside else self._held), ""
        return held
