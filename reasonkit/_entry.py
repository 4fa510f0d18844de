"""The `rk` console script. `rk --version` is answered here without importing click or anything
else; every other command goes to reasonkit.cli."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) == 2 and sys.argv[1] in ("-V", "--version"):
        from reasonkit import __version__

        sys.stdout.write(f"rk {__version__}\n")
        return
    from reasonkit.cli import main as cli_main
    from reasonkit.cli.common import run_and_exit

    run_and_exit(cli_main)
