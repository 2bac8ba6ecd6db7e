"""Several providers at once, and failover that resumes a turn instead of restarting it.

`PARLEY_PROVIDERS_FILE` names a TOML file with one table per provider:

    [providers.qwen]
    base_url = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    api_key_env = "DASHSCOPE_API_KEY"
    model = "qwen-plus"
    # profile = "dashscope"   (optional: detected from the host)

    [providers.claude]
    kind = "anthropic"
    base_url = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"
    model = "claude-sonnet-4-5"

`PARLEY_PROVIDER` names the default table, `PARLEY_FALLBACK` the tables tried in order
when the current one fails after its own retries; one that failed is passed over for
`PARLEY_FAILOVER_COOLDOWN` seconds. Every other PARLEY_LLM_* setting
(timeouts, retries, streaming, thinking…) applies to each.

A channel's own model (set by admins in the console) may name a provider of the file:
`@claude` (its table's model) or `@claude:claude-opus-4-5`; that provider leads the
channel's calls, the rest of the chain behind it.

`FailoverProvider` is one `Provider` over that chain. A call goes to the first provider
not resting after a failure; when it fails before anything of its answer was shown
(unreachable, timed out, 5xx, 429 past its retries: `ProviderUnavailable` and
`ProviderRateLimited`, never a refused request; a stream cut off or failed in a way the
vendor calls transient, once asked again of the same provider), the same messages go to
the next one. Once some of the answer was shown there is no failover: the next model
would start its answer afresh, so the user would read the beginning twice, and a tool
call could be half streamed; the partial answer ends as interrupted or failed
(bot/answer.py) and the user is told.
The messages are the conversation so far, finished tool rounds included: the next
provider converts them into its own wire format and continues, so no tool runs again
and no approval is asked again (the engine never repeats a stored round). Reasoning
state travels only to the provider that wrote it: each provider of the file keeps its
state under "@<name>" and each converter sends only state under its own key, so neither
another vendor nor another table of the same profile (a second account) is sent it. A
`Failover` event tells the caller, which tells the user and counts it.
"""

from __future__ import annotations

import logging
import os
import time
import tomllib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard, get_args

from pydantic import SecretStr

from bot.config import LLMSettings, ProfileName
from bot.domain import ChatMessage
from bot.errors import (
    AnswerCutOff,
    ConfigError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    StreamFailed,
)
from bot.llm.base import (
    FAILED,
    Failover,
    Provider,
    ReasoningDelta,
    StreamEvent,
    ToolSpec,
    TurnFinished,
)

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024
MAX_PROVIDERS = 32
_KEYS = frozenset({"kind", "base_url", "api_key_env", "model", "profile"})
_PROFILES = frozenset(get_args(ProfileName))


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One table of the providers file."""

    name: str
    kind: str  # "openai" (any OpenAI-compatible endpoint) or "anthropic"
    base_url: str
    api_key_env: str
    model: str
    profile: str = "auto"


def load_providers_file(path: Path) -> dict[str, ProviderSpec]:
    """The file's providers by name; a ConfigError naming the file and the table for
    anything wrong in it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"PARLEY_PROVIDERS_FILE {path} cannot be read: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"PARLEY_PROVIDERS_FILE {path} is over {MAX_FILE_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"PARLEY_PROVIDERS_FILE {path} is not valid TOML: {exc}") from None
    tables = data.get("providers")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"PARLEY_PROVIDERS_FILE {path} has no [providers.<name>] table")
    if len(tables) > MAX_PROVIDERS:
        raise ConfigError(f"PARLEY_PROVIDERS_FILE {path} names over {MAX_PROVIDERS} providers")
    return {name: _spec(path, name, table) for name, table in tables.items()}


def _spec(path: Path, name: str, table: Any) -> ProviderSpec:
    where = f"PARLEY_PROVIDERS_FILE {path} [providers.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, str] = {}
    for key in ("base_url", "api_key_env", "model"):
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: `{key}` is required (a string)")
        values[key] = value.strip()
    if not values["base_url"].startswith(("http://", "https://")):
        raise ConfigError(f"{where}: `base_url` must start with http:// or https://")
    kind = table.get("kind", "openai")
    if kind not in ("openai", "anthropic"):
        raise ConfigError(f"{where}: `kind` must be openai or anthropic, not {kind!r}")
    profile = table.get("profile", "auto")
    if profile not in _PROFILES:
        raise ConfigError(f"{where}: `profile` must be one of {', '.join(sorted(_PROFILES))}")
    return ProviderSpec(name, kind, profile=profile, **values)


def settings_for(spec: ProviderSpec, llm: LLMSettings, environ: Mapping[str, str]) -> LLMSettings:
    """The single-provider settings of one table: its endpoint, key and model, with every
    other PARLEY_LLM_* setting shared."""
    key = environ.get(spec.api_key_env, "")
    if not key:
        raise ConfigError(
            f"{spec.api_key_env} is not set: provider {spec.name} of PARLEY_PROVIDERS_FILE "
            "reads its API key from it (local servers accept any non-empty key)"
        )
    update: dict[str, Any] = {"provider": spec.kind, "model": spec.model}
    if spec.kind == "anthropic":
        update |= {"anthropic_base_url": spec.base_url, "anthropic_api_key": SecretStr(key)}
    else:
        update |= {"base_url": spec.base_url, "api_key": SecretStr(key), "profile": spec.profile}
    return llm.model_copy(update=update)


def build_one(settings: LLMSettings, name: str) -> Provider:
    """The provider of one table; its reasoning state is kept under "@<name>", so two
    tables of one vendor (two accounts, two regions) never hand each other theirs."""
    if settings.provider == "anthropic":
        from bot.llm.anthropic import AnthropicProvider

        return AnthropicProvider.from_settings(settings, state_key=f"@{name}")
    from bot.llm.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider.from_settings(settings, state_key=f"@{name}")


def chain_names(llm: LLMSettings, specs: Mapping[str, ProviderSpec]) -> list[str]:
    """PARLEY_PROVIDER then PARLEY_FALLBACK, each a table of the file, none twice."""
    fallback = llm.fallback_names
    names = [llm.provider, *fallback]
    for setting, name in [("PARLEY_PROVIDER", llm.provider)] + [
        ("PARLEY_FALLBACK", n) for n in fallback
    ]:
        if name not in specs:
            raise ConfigError(
                f"{setting} names {name!r}, which PARLEY_PROVIDERS_FILE does not define "
                f"(it has {', '.join(sorted(specs))})"
            )
    if len(set(names)) != len(names):
        raise ConfigError("PARLEY_PROVIDER and PARLEY_FALLBACK name a provider twice")
    return names


def build_from_file(
    llm: LLMSettings, environ: Mapping[str, str] | None = None
) -> tuple[Provider, dict[str, LLMSettings]]:
    """The provider the engine uses (a `FailoverProvider` when there is a fallback) and
    the settings of every provider of the file, by name (for the doctor)."""
    if llm.providers_file is None:
        raise ConfigError("PARLEY_PROVIDERS_FILE is not set")
    specs = load_providers_file(llm.providers_file)
    environ = os.environ if environ is None else environ
    names = chain_names(llm, specs)
    each = {name: settings_for(spec, llm, environ) for name, spec in specs.items()}
    built = {name: build_one(settings, name) for name, settings in each.items()}
    chain = [(name, built[name]) for name in names]
    return FailoverProvider(chain, rest=llm.failover_cooldown_seconds, others=built), each


class FailoverProvider:
    """One `Provider` over a chain of named providers (module docstring)."""

    def __init__(
        self,
        chain: Sequence[tuple[str, Provider]],
        *,
        rest: float,
        others: Mapping[str, Provider] | None = None,
    ):
        if not chain:
            raise ValueError("a failover chain needs a provider")
        self.chain = list(chain)
        # Every provider of the file, the chain's and the ones only a channel names.
        self.providers = {**dict(self.chain), **(others or {})}
        self.model = self.chain[0][1].model
        self._rest = rest
        self._resting: dict[str, float] = {}  # name -> monotonic time it may lead again

    @property
    def names(self) -> list[str]:
        """Every provider's name, the default first (what a channel may name)."""
        return list(self.providers)

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str = ""
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(messages, tools, model)

    async def _stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], model: str
    ) -> AsyncIterator[StreamEvent]:
        chain = self.chain
        if model.startswith("@"):
            chain, model = self._led_by(model)
        first = chain[0][0]
        now = time.monotonic()
        ready = [entry for entry in chain if self._resting.get(entry[0], 0.0) <= now]
        # All resting: try them all again, in order, rather than fail without asking.
        order = ready or chain
        for position, (name, provider) in enumerate(order):
            last = position == len(order) - 1
            announced = name == first
            for attempt in (1, 2):
                final = last and attempt == 2
                shown = False
                # A channel's own model is a name for the default provider only.
                events = (
                    provider.stream(messages, tools, model=model)
                    if model and name == first
                    else provider.stream(messages, tools)
                )
                try:
                    async for event in events:
                        if not shown and not final and _failed_early(event):
                            raise StreamFailed(f"the answer failed ({event.finish_reason})")
                        if not announced:
                            announced = True
                            yield Failover(first, name)
                        if not isinstance(event, ReasoningDelta):
                            shown = True
                        yield event
                except ProviderError as exc:
                    if shown or not _fails_over(exc):
                        raise
                    if attempt == 1 and isinstance(exc, AnswerCutOff | StreamFailed):
                        # Nothing shown: asking the same provider again costs the user
                        # nothing, as bot/answer.py does for a single provider.
                        log.warning("provider %s failed (%s): asking again", name, exc)
                        continue
                    if last:
                        raise
                    self._resting[name] = time.monotonic() + self._rest
                    log.warning(
                        "provider %s failed (%s: %s): trying %s",
                        name,
                        type(exc).__name__,
                        exc,
                        order[position + 1][0],
                    )
                    break
                self._resting.pop(name, None)
                return

    def _led_by(self, choice: str) -> tuple[list[tuple[str, Provider]], str]:
        """The chain for a channel whose model is `@name` or `@name:model`, and the model
        to ask for ("" : the table's own)."""
        name, _, model = choice[1:].partition(":")
        provider = self.providers.get(name)
        if provider is None:
            log.warning(
                "a channel names provider %r, which the providers file does not define: "
                "using the default",
                name[:64],
            )
            return self.chain, ""
        return [(name, provider), *((n, p) for n, p in self.chain if n != name)], model

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


def _fails_over(exc: ProviderError) -> bool:
    # Unreachable, timed out, 5xx, 429 past its retries, a stream cut or failed: another
    # provider may answer. A refused request (400, auth, context too long) would be
    # refused by the next one too, or needs the operator.
    return isinstance(exc, ProviderUnavailable | ProviderRateLimited)


def _failed_early(event: StreamEvent) -> TypeGuard[TurnFinished]:
    """A transient failure the vendor reports as the finish of its answer (OpenRouter's
    `error`, GLM's `network_error`…) before any of the answer came: handled as a failed
    stream (`StreamFailed`)."""
    return isinstance(event, TurnFinished) and event.outcome == FAILED and event.transient
