"""`python -m nasforge.runtime.cli`: the same as the `nasforge` command."""

from . import main

main()
