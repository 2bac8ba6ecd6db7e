"""Relative paths of a `.env` file are relative to that file's folder.

`parley --env-file /srv/parley/.env reminders list`, run from any folder, must open the
database the bot uses, not create an empty `data/parley.db` where the command was typed.
So a relative path that did not come from the process environment (one written in the
`.env` file, or a setting's default such as `sqlite:///data/parley.db`) is taken
relative to the folder of the `.env` file: the SQLite database, PARLEY_PROVIDERS_FILE,
PARLEY_MCP_CONFIG and PARLEY_SMTP_CA_FILE. A value from the process environment stays
relative to the current folder, as a shell user expects; absolute paths, `~/...` and
URLs of other databases are left as they are. Without a `.env` file nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

# Settings that name a file: variable name -> (group, field).
FILE_SETTINGS = {
    "PARLEY_PROVIDERS_FILE": ("llm", "providers_file"),
    "PARLEY_MCP_CONFIG": ("mcp", "config"),
    "PARLEY_SMTP_CA_FILE": ("email", "ca_file"),
}
DATABASE_SETTING = ("DATABASE_URL", ("database", "url"))


def anchor_paths(groups: dict[str, Any], env_file: Path, environ: Mapping[str, str]) -> None:
    """Rewrite, in place, the relative paths of `groups` (settings groups by name) that
    did not come from `environ` as paths under the folder of `env_file`."""
    folder = env_file.resolve().parent
    for name, (group_name, field) in FILE_SETTINGS.items():
        group = groups[group_name]
        value = getattr(group, field)
        if name in environ or not value:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            anchored = folder / path
            groups[group_name] = group.model_copy(
                update={field: anchored if isinstance(value, Path) else str(anchored)}
            )
    name, (group_name, field) = DATABASE_SETTING
    group = groups[group_name]
    if name not in environ:
        url = sqlite_url_under(getattr(group, field), folder)
        if url is not None:
            groups[group_name] = group.model_copy(update={field: url})


def sqlite_url_under(url: str, folder: Path) -> str | None:
    """The SQLite URL with its relative file made a path under `folder`; None when the
    URL is not SQLite, names no file or an absolute one (nothing to change)."""
    try:
        parsed = make_url(url)
    except Exception:  # an invalid URL is reported by the command that opens it
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None  # SQLite URI filenames carry their own rules
    path = Path(database).expanduser()
    if path.is_absolute():
        return None
    return parsed.set(database=str(folder / path)).render_as_string(hide_password=False)
