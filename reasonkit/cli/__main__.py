"""`python -m reasonkit.cli`: the `rk` command."""

from reasonkit.cli import main

main()
