"""What ``help(conveyor)`` and ``repr()`` show a user: the public names, not private modules."""

from __future__ import annotations

import pydoc
import re

import conveyor


def test_help_opens_with_what_conveyor_is_and_every_public_name() -> None:
    text = pydoc.render_doc(conveyor, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    description = text[text.index("DESCRIPTION") : text.index("PACKAGE CONTENTS")]
    assert "asyncio.Queue, drop-in and faster" in text.splitlines()[3]
    missing = [name for name in conveyor.__all__ if not re.search(rf"\b{name}\b", description)]
    assert missing == []
    # Plain text for a terminal, not Sphinx markup, anywhere in it.
    assert not re.search(r":(class|func|meth|attr|exc|mod|data|obj):`", text)


def test_public_names_show_the_module_users_import() -> None:
    private = [
        f"{name}: {obj.__module__}"
        for name in conveyor.__all__
        if (obj := getattr(conveyor, name)).__module__.startswith("conveyor._")
    ]
    assert private == []
    assert repr(conveyor.Queue) == "<class 'conveyor.Queue'>"
    assert repr(conveyor.open_queue).startswith("<function open_queue")
    assert conveyor.open_queue.__module__ == "conveyor"
