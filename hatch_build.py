"""Build hook: compile the message catalogs (bot/locale/*/LC_MESSAGES/parley.po → .mo).

The compiled catalogs are build output (ignored by git): every build compiles them next to
their catalogs (the editable install `make venv` makes included), and a wheel includes
them even though git ignores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        root = Path(self.root)
        for po_path in sorted(root.glob("bot/locale/*/LC_MESSAGES/parley.po")):
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file, locale=po_path.parents[1].name)
            mo_path = po_path.with_suffix(".mo")
            with mo_path.open("wb") as mo_file:
                write_mo(mo_file, catalog)
            # An editable install reads the tree, where the .mo now is; a wheel ships it.
            if version == "standard":
                build_data["force_include"][str(mo_path)] = str(mo_path.relative_to(root))
