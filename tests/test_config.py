"""Settings: defaults, one-line errors that name the variable, `.env`, and `.env.example`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from bot.config import Settings, misnamed_settings
from bot.errors import ConfigError

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
ASSIGNMENT = re.compile(r"^(?P<commented>#\s?)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def test_defaults_load_from_an_empty_environment() -> None:
    settings = Settings.load()

    assert settings.llm.provider == "openai"
    assert settings.llm.api_key is None
    assert settings.llm.base_url == "https://api.openai.com/v1"
    assert settings.llm.model == "gpt-4o-mini"
    assert settings.llm.extra_body == {}
    assert settings.bot.default_timezone == "UTC"
    assert settings.database.url == "sqlite:///data/parley.db"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.log.level == "INFO"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PARLEY_HTTP_PORT", "abc"),
        ("PARLEY_HTTP_PORT", "70000"),
        ("PARLEY_DEFAULT_TIMEZONE", "Mars/Olympus_Mons"),
        ("PARLEY_LLM_EXTRA_BODY", '{"enable_thinking": false'),
        ("PARLEY_LLM_EXTRA_BODY", "[1, 2]"),
        ("PARLEY_LLM_TEMPERATURE", "3"),
        ("PARLEY_LLM_TIMEOUT", "0"),
        ("PARLEY_MAX_TOOL_ROUNDS", "0"),
        ("PARLEY_PROVIDER", "gemini"),
        ("PARLEY_LOG_LEVEL", "loud"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as caught:
        Settings.load()

    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert "\n" not in message
    assert "validation error" not in message.lower()


def test_a_secret_next_to_an_invalid_value_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-show-me")
    monkeypatch.setenv("PARLEY_LLM_MAX_RETRIES", "eleven")

    with pytest.raises(ConfigError) as caught:
        Settings.load()

    assert str(caught.value).startswith("PARLEY_LLM_MAX_RETRIES: ")
    assert "sk-do-not-show-me" not in str(caught.value)


def fields() -> list[tuple[str, str, FieldInfo, str]]:
    """(group, field name, field, variable name) of every setting, in declaration order."""
    declared = [
        (group, name, field)
        for group, group_cls in Settings.GROUPS.items()
        for name, field in group_cls.model_fields.items()
    ]
    names = Settings.env_names()
    assert len(names) == len(declared)
    return [(*item, env_name) for item, env_name in zip(declared, names, strict=True)]


def secret_fields() -> list[tuple[str, str, str]]:
    return [
        (group, name, env_name)
        for group, name, field, env_name in fields()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    ]


def test_there_are_secrets_to_protect() -> None:
    assert ("llm", "api_key", "OPENAI_API_KEY") in secret_fields()


@pytest.mark.parametrize(("group", "field", "env_name"), secret_fields())
def test_an_invalid_secret_never_appears_in_the_error(
    group: str, field: str, env_name: str
) -> None:
    overrides: dict[str, Any] = {group: {field: ["sk-live-0123456789"]}}

    with pytest.raises(ConfigError) as caught:
        Settings.load(env_file=None, **overrides)

    assert env_name in str(caught.value)
    assert "sk-live-0123456789" not in str(caught.value)


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        'PARLEY_MODEL=qwen-plus\nPARLEY_LLM_EXTRA_BODY={"enable_thinking": false}\n',
        encoding="utf-8",
    )

    settings = Settings.load()

    assert settings.llm.model == "qwen-plus"
    assert settings.llm.extra_body == {"enable_thinking": False}


def test_an_environment_variable_beats_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("PARLEY_MODEL=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("PARLEY_MODEL", "from-environment")

    assert Settings.load().llm.model == "from-environment"


def test_an_invalid_value_in_dotenv_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PARLEY_HTTP_PORT=eighty\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"^PARLEY_HTTP_PORT: "):
        Settings.load()


def env_example() -> list[tuple[bool, str, str]]:
    """(commented, name, value) of every `NAME=value` or `# NAME=value` line."""
    entries = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            entries.append((bool(match["commented"]), match["name"], match["value"]))
    return entries


# Lines of .env.example that docker-compose.yml reads, not Parley.
COMPOSE_ONLY = frozenset({"POSTGRES_PASSWORD"})


def test_env_example_lists_exactly_the_settings() -> None:
    listed = {name for _, name, _ in env_example()} - COMPOSE_ONLY
    known = set(Settings.env_names())

    assert {"missing": sorted(known - listed), "unknown": sorted(listed - known)} == {
        "missing": [],
        "unknown": [],
    }


def test_env_example_sets_each_name_at_most_once() -> None:
    active = [name for commented, name, _ in env_example() if not commented]

    assert len(active) == len(set(active))
    assert "OPENAI_API_KEY" in active


def dotenv_form(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def test_env_example_shows_each_default() -> None:
    shown: dict[str, set[str]] = {}
    for commented, name, value in env_example():
        if commented:
            shown.setdefault(name, set()).add(value.strip('"'))
    settings = Settings.load(env_file=None)

    missing = []
    for group, field, _, env_name in fields():
        default = getattr(getattr(settings, group), field)
        if default is not None and dotenv_form(default) not in shown.get(env_name, set()):
            missing.append(f"# {env_name}={dotenv_form(default)}")

    assert missing == [], "add these default lines to .env.example"


def test_every_line_of_env_example_is_valid_when_uncommented(tmp_path: Path) -> None:
    invalid = []
    for _, name, value in env_example():
        (tmp_path / ".env").write_text(f"{name}={value}\n", encoding="utf-8")
        try:
            Settings.load()
        except ConfigError as exc:
            invalid.append(f"{name}={value}: {exc}")

    assert invalid == []


# -- names that look like settings but are not (bot/config/names.py) --------------------


def test_a_mistyped_name_is_named_with_the_setting_it_meant(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PARLEY_MODLE=qwen-plus\nOPENAI_BASEURL=http://x\nSMTP_PASS=hunter2\n")

    assert misnamed_settings(env_file, {}) == [
        "PARLEY_MODLE is not a setting; did you mean PARLEY_MODEL? (in .env)",
        "OPENAI_BASEURL is not a setting; did you mean OPENAI_BASE_URL? (in .env)",
        "SMTP_PASS is not a setting; did you mean SMTP_PASSWORD? (in .env)",
    ]


def test_a_repeated_name_is_named_with_its_lines(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    # The DashScope case: two regions' blocks pasted whole; a quoted value over two lines
    # counts as one assignment, as pydantic-settings reads it.
    env_file.write_text(
        "OPENAI_BASE_URL=https://dashscope.aliyuncs.com/compatible-mode/v1\n"
        'PARLEY_SYSTEM_PROMPT="two\nlines"\n'
        "OPENAI_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1\n"
        "export OPENAI_BASE_URL=https://api.openai.com/v1\n"
    )

    assert misnamed_settings(env_file, {}) == [
        "OPENAI_BASE_URL is set 3 times in prod.env (lines 1, 4 and 5); the last one wins"
    ]


def test_names_read_elsewhere_are_not_named(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PARLEY_TELEGRAM_CONFIRM_TIMEOUT=60\n"  # an older name of PARLEY_CONFIRM_TIMEOUT
        "OPENAI_KEY_2=sk-x\n"  # a providers file's api_key_env
        "DASHSCOPE_API_KEY=sk-y\n"  # not a prefix of Parley's settings
        "POSTGRES_PASSWORD=z\n"  # docker-compose.yml's
    )
    environ = {
        "OPENAI_LOG": "debug",  # the OpenAI SDK reads these from the environment
        "OPENAI_ORG_ID": "org",
        "ANTHROPIC_AUTH_TOKEN": "t",
        "PARLEY_ENV_FILE": "/etc/parley/.env",
        "PARLEY_TEST_POSTGRES": "postgresql://localhost/test",
        "HOME": "/root",
    }

    assert misnamed_settings(env_file, environ, also_known=["OPENAI_KEY_2"]) == []


def test_a_name_only_the_sdk_reads_does_nothing_in_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_ORG_ID=org\n")

    assert misnamed_settings(env_file, {"SLACK_TOKEN": "xoxb"}) == [
        "OPENAI_ORG_ID is not a setting (in .env)",
        "SLACK_TOKEN is not a setting; did you mean SLACK_BOT_TOKEN? (in the environment)",
    ]


def test_the_key_variables_of_a_providers_file_are_known_names(tmp_path: Path) -> None:
    from bot.builders import misnamed

    providers = tmp_path / "providers.toml"
    providers.write_text(
        '[providers.qwen]\nbase_url = "https://dashscope.aliyuncs.com/compatible-mode/v1"\n'
        'api_key_env = "OPENAI_QWEN_KEY"\nmodel = "qwen-plus"\n'
    )
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"PARLEY_PROVIDERS_FILE={providers}\nPARLEY_PROVIDER=qwen\n"
        "OPENAI_QWEN_KEY=sk-x\nOPENAI_DEEPSEEK_KEY=sk-y\n"
    )

    assert misnamed(Settings.load(env_file=env_file), env_file) == [
        "OPENAI_DEEPSEEK_KEY is not a setting (in .env)"
    ]


def test_env_example_opens_with_a_first_run_block_it_does_not_repeat(tmp_path: Path) -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    first_run, reference = text.split("# Language model", 1)
    assert "# First run" in first_run
    block = [name for _, name, _ in (parse(line) for line in first_run.splitlines()) if name]
    assert {"OPENAI_API_KEY", "OPENAI_BASE_URL", "PARLEY_MODEL", "TELEGRAM_BOT_TOKEN"} <= set(block)
    assert len(block) == len(set(block))
    # Copied as it is, or with the first-run block filled in, no name is set twice and
    # every name is a setting.
    uncommented = re.sub(r"(?m)^# ([A-Z][A-Z0-9_]*=)", r"\1", first_run) + reference
    for content in (text, uncommented):
        (tmp_path / ".env").write_text(content, encoding="utf-8")
        assert misnamed_settings(tmp_path / ".env", {}) == []


def parse(line: str) -> tuple[bool, str, str]:
    match = ASSIGNMENT.match(line)
    return (bool(match["commented"]), match["name"], match["value"]) if match else (False, "", "")


# -- relative paths of a .env file (bot/config/paths.py) --------------------------------


def test_relative_paths_of_an_env_file_are_under_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "srv" / "parley"
    folder.mkdir(parents=True)
    (folder / "providers.toml").write_text("")
    env_file = folder / ".env"
    env_file.write_text(
        "DATABASE_URL=sqlite+aiosqlite:///data/parley.db?timeout=5\n"
        "PARLEY_PROVIDERS_FILE=providers.toml\n"
        "PARLEY_PROVIDER=qwen\n"
        "PARLEY_MCP_CONFIG=conf/mcp.toml\n"
        "PARLEY_SMTP_CA_FILE=/etc/ssl/private-ca.pem\n"
    )

    settings = Settings.load(env_file=env_file)

    assert settings.database.url == f"sqlite+aiosqlite:///{folder}/data/parley.db?timeout=5"
    assert settings.llm.providers_file == folder / "providers.toml"
    assert settings.mcp.config == str(folder / "conf" / "mcp.toml")
    assert settings.email.ca_file == Path("/etc/ssl/private-ca.pem")  # absolute: as written


def test_the_default_database_is_under_the_env_files_folder(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    env_file = tmp_path / "project" / ".env"
    env_file.write_text("PARLEY_MODEL=qwen-plus\n")

    assert Settings.load(env_file=env_file).database.url == (
        f"sqlite:///{tmp_path}/project/data/parley.db"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://parley:pw@127.0.0.1/parley",
        "sqlite:///:memory:",
        "sqlite:////var/lib/parley/parley.db",
    ],
)
def test_other_databases_are_left_as_written(tmp_path: Path, url: str) -> None:
    env_file = tmp_path / "elsewhere.env"
    env_file.write_text(f"DATABASE_URL={url}\n")

    assert Settings.load(env_file=env_file).database.url == url


def test_a_relative_path_from_the_environment_stays_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project").mkdir()
    env_file = tmp_path / "project" / ".env"
    env_file.write_text("DATABASE_URL=sqlite:///from-file.db\nPARLEY_MCP_CONFIG=mcp.toml\n")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-environment.db")
    monkeypatch.setenv("PARLEY_MCP_CONFIG", "servers.toml")

    settings = Settings.load(env_file=env_file)

    assert settings.database.url == "sqlite:///from-environment.db"
    assert settings.mcp.config == "servers.toml"
