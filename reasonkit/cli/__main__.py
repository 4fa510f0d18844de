"""`python -m reasonkit.cli`: the `rk` command (ending as the console script does)."""

from reasonkit.cli import main
from reasonkit.cli.common import run_and_exit

run_and_exit(main)
