"""One way for the tests to run the `nasforge` command line in-process."""

from __future__ import annotations

from click.testing import CliRunner, Result
from nasforge.runtime.cli import cli


def run(*args: object, stdin: str | None = None) -> Result:
    """`nasforge ARGS...` through click's test runner (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin, prog_name="nasforge")
