"""The `nasforge` command line: one click group, each command in its own small module.

A command is registered in COMMANDS as "module:attribute" and imported only when
it is run (or listed by --help), so `nasforge validate` never imports torch even
once `train` and `export` exist. To add a command, write `runtime/cli/NAME.py`
with a click command and add one line to COMMANDS.

Every NasforgeError that escapes a command becomes `nasforge: error: ...` on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib

import click
from nasforge.grammar.errors import ArchError, NasforgeError

COMMANDS: dict[str, str] = {
    "validate": "nasforge.runtime.cli.validate:validate",
    "compile": "nasforge.runtime.cli.compile:compile_command",
    "info": "nasforge.runtime.cli.info:info",
    "datasets": "nasforge.runtime.cli.datasets:datasets_command",
    "train": "nasforge.runtime.cli.train:train_command",
    "export": "nasforge.runtime.cli.export:export_command",
    "search": "nasforge.runtime.cli.search:search_command",
    "report": "nasforge.runtime.cli.report:report_command",
    "examples": "nasforge.runtime.cli.examples:examples_command",
    "dashboard": "nasforge.runtime.cli.dashboard:dashboard_command",
}

EXIT_ERROR = 2  # bad input of any kind; click uses 2 for usage errors too


class Failure(click.ClickException):
    """An error to show as `nasforge: error: MESSAGE` and exit 2."""

    exit_code = EXIT_ERROR

    def show(self, file: object = None) -> None:
        click.echo(f"nasforge: error: {self.format_message()}", err=True)


class ArchFailure(Failure):
    """A bad architecture: its message already reads `FILE:LINE:COL: error: ...`."""

    def show(self, file: object = None) -> None:
        click.echo(self.format_message(), err=True)


class LazyGroup(click.Group):
    """A group that imports each command's module only when the command is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ArchError as err:
            raise ArchFailure(str(err)) from None
        except NasforgeError as err:
            raise Failure(str(err)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nasforge", prog_name="nasforge")
def cli() -> None:
    """nasforge: neural architecture search built as a compiler."""


def main() -> None:
    """Console-script entry point (`nasforge`)."""
    try:
        cli(prog_name="nasforge")
    except ArchError as err:
        ArchFailure(str(err)).show()
        raise SystemExit(EXIT_ERROR) from None
    except NasforgeError as err:  # raised outside a command's invoke, e.g. while loading it
        Failure(str(err)).show()
        raise SystemExit(EXIT_ERROR) from None
