"""Names that look like Parley's settings but are not, and names set twice in `.env`.

pydantic-settings ignores an unknown name (`extra="ignore"`), so `PARLEY_MODLE=qwen-plus`
would silently leave the default model in force, and of a name set twice in `.env` the
last line silently wins. `misnamed_settings` finds both, in the `.env` file and in the
process environment, and says each in one line with the closest real name; `parley run`
logs them and `parley doctor` shows them as a check.

Only names with one of the settings' own prefixes (PARLEY_, OPENAI_, SLACK_…) are
looked at: the environment holds many other programs' variables. Names that are read,
but not as settings, are known too: every alias of a setting, the variables a providers
file names for its keys, the CLI's and the tests' own, and those the OpenAI and Anthropic
SDKs read from the process environment (their clients read them, not Parley; written in
`.env` they do nothing, so there they are named like any other).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv.parser import parse_stream
from pydantic import AliasChoices

from bot.config.settings import Settings

# Read by the `parley` command itself, by docker-compose.yml, or by the test suite and
# the benchmarks, not by `Settings`.
OTHER_PARLEY_NAMES = frozenset({"PARLEY_ENV_FILE", "PARLEY_PUBLISH_ADDRESS"})
OTHER_PARLEY_PREFIXES = ("PARLEY_TEST_", "PARLEY_BENCH_")

# What the openai and anthropic SDKs read from the process environment (their clients'
# sources: `os.environ.get(...)`), so a deployment may set them there for the SDK.
SDK_NAMES = frozenset(
    {
        "OPENAI_ADMIN_KEY", "OPENAI_API_TYPE", "OPENAI_API_VERSION", "OPENAI_CUSTOM_HEADERS",
        "OPENAI_LOG", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_WEBHOOK_SECRET",
        "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS",
        "ANTHROPIC_LOG", "ANTHROPIC_BEDROCK_BASE_URL", "ANTHROPIC_BEDROCK_MANTLE_BASE_URL",
        "ANTHROPIC_VERTEX_BASE_URL", "ANTHROPIC_VERTEX_PROJECT_ID", "ANTHROPIC_FOUNDRY_API_KEY",
        "ANTHROPIC_FOUNDRY_BASE_URL", "ANTHROPIC_FOUNDRY_RESOURCE",
        "ANTHROPIC_WEBHOOK_SIGNING_KEY",
    }
)  # fmt: skip
SDK_PREFIXES = ("ANTHROPIC_GOOGLE_CLOUD_", "ANTHROPIC_OPEN_TELEMETRY", "ANTHROPIC_AWS_")


def setting_names() -> list[str]:
    """Every name a setting is read under (its first name and any older ones)."""
    names: list[str] = []
    for group_cls in Settings.GROUPS.values():
        for field in group_cls.model_fields.values():
            alias = field.validation_alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            names.extend(str(choice) for choice in choices)
    return names


def setting_prefixes(names: Iterable[str]) -> tuple[str, ...]:
    """The first word of every setting's name: PARLEY_, OPENAI_, SLACK_, …"""
    return tuple(sorted({name.split("_", 1)[0] + "_" for name in names}))


def env_file_lines(path: Path) -> list[tuple[str, int]]:
    """(name, line number) of every assignment in a .env file, parsed as pydantic-settings
    parses it (python-dotenv), so a quoted value over several lines counts once."""
    with path.open(encoding="utf-8") as stream:
        return [
            (binding.key, binding.original.line)
            for binding in parse_stream(stream)
            if binding.key is not None
        ]


def misnamed_settings(
    env_file: Path | None,
    environ: Mapping[str, str],
    *,
    also_known: Iterable[str] = (),
) -> list[str]:
    """One line per name that is not a setting (with the closest one, if any) and per
    name set more than once in `env_file`. `also_known`: further names read elsewhere
    (a providers file's `api_key_env`)."""
    names = setting_names()
    known = {*names, *OTHER_PARLEY_NAMES, *also_known}
    prefixes = setting_prefixes(names)
    problems: list[str] = []
    seen: dict[str, list[int]] = {}
    if env_file is not None:
        for name, line in env_file_lines(env_file):
            seen.setdefault(name, []).append(line)
    where = env_file.name if env_file is not None else ".env"

    def unknown(name: str, *, in_environment: bool) -> bool:
        if not name.startswith(prefixes) or name in known or name.startswith(OTHER_PARLEY_PREFIXES):
            return False
        return not (in_environment and (name in SDK_NAMES or name.startswith(SDK_PREFIXES)))

    for name in seen:
        if unknown(name, in_environment=False):
            problems.append(_not_a_setting(name, names, f"in {where}"))
    for name in sorted(environ):
        if name not in seen and unknown(name, in_environment=True):
            problems.append(_not_a_setting(name, names, "in the environment"))
    for name, lines in seen.items():
        if len(lines) > 1:
            numbers = ", ".join(str(n) for n in lines[:-1]) + f" and {lines[-1]}"
            times = "twice" if len(lines) == 2 else f"{len(lines)} times"
            problems.append(
                f"{name} is set {times} in {where} (lines {numbers}); the last one wins"
            )
    return problems


def _not_a_setting(name: str, names: list[str], where: str) -> str:
    close = closest(name, names)
    hint = f"; did you mean {close}?" if close else ""
    return f"{name} is not a setting{hint} ({where})"


def closest(name: str, names: list[str]) -> str | None:
    """The setting `name` most likely meant. The words after the prefix are compared
    among settings of the same prefix (PARLEY_ alone would make PARLEY_X look like
    PARLEY_MODEL); failing that, among the words after any prefix, more strictly
    (OPENAI_MODEL: PARLEY_MODEL); a setting behind a stray prefix is found whole."""
    prefix, _, rest = name.partition("_")
    if rest in names:
        return rest
    same = {n.partition("_")[2]: n for n in names if n.startswith(prefix + "_")}
    close = difflib.get_close_matches(rest, list(same), n=1, cutoff=0.6)
    if close:
        return same[close[0]]
    every = {n.partition("_")[2]: n for n in reversed(names)}
    close = difflib.get_close_matches(rest, list(every), n=1, cutoff=0.8)
    return every[close[0]] if close else None
