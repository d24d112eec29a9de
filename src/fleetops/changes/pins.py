"""How a pinned workflow is written in the settings, `name@version#sha256:digest`.

Apart from `standard` (which reads the shipped workflows) so that reading the settings, which
every command does, checks a pin's form without loading the workflow library.
"""

from __future__ import annotations

import re

PIN = re.compile(
    r"^(?P<name>[a-z][a-z0-9-]{1,63})@(?P<version>\d+)#(?P<digest>sha256:[0-9a-f]{64})$"
)


def check_form(value: str) -> None:
    """Refuse a setting that tries to be a pin but is not one (a bare name is fine)."""
    if ("@" in value or "#" in value) and not PIN.fullmatch(value):
        raise ValueError(
            f"workflow setting {value!r} is neither a name nor a pin: write "
            "NAME@VERSION#sha256:DIGEST (`fleetops workflow pin NAME` prints it)"
        )
