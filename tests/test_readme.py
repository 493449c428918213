"""The README's and docs/'s console examples stay true.

Every `nasforge SUBCOMMAND --option ...` line in a ```console or ```bash block must name a
command and options that exist (click introspection of the CLI group, choice values
included); every repository file an example names must exist in a clone; every `make
TARGET` must be a Makefile target; every relative link must point at a file. The examples
of the commands that need no torch and print the same text everywhere (`validate`,
`info`) are run, and their shown output must be what they print.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from nasforge.runtime.cli import cli

ROOT = Path(__file__).resolve().parent.parent
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = ("console", "bash")
PROMPT = re.compile(r"^(?:\w+)?\$ ")  # `$ `, or `head$ ` in the cluster guide
NASFORGE = ("nasforge", ".venv/bin/nasforge")
RUN_AND_COMPARE = ("validate", "info")  # no torch, the same output on every machine
REPO_DIRS = ("examples/", "benchmarks/", "tests/", "docs/", "grammar/", "controller/")


@dataclass(frozen=True)
class Example:
    guide: str
    line: int  # 1-based line of the prompt in the guide
    command: str  # with continuation lines joined
    output: str  # the lines shown after it, up to the next prompt or the block's end


def _blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(first line number, info string, lines) of every fenced block."""
    blocks, inside, info, start, lines = [], False, "", 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if inside:
                blocks.append((start, info, lines))
                inside = False
            else:
                inside, info, start, lines = True, line[3:].strip(), number + 1, []
        elif inside:
            lines.append(line)
    assert not inside, "an unclosed code fence"
    return blocks


def _examples(path: Path) -> list[Example]:
    examples = []
    for start, info, lines in _blocks(path.read_text(encoding="utf-8")):
        if info not in SHELL_BLOCKS:
            continue
        i = 0
        while i < len(lines):
            match = PROMPT.match(lines[i])
            if not match:
                i += 1
                continue
            first, command = i, lines[i][match.end() :]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            output = []
            while i < len(lines) and not PROMPT.match(lines[i]):
                output.append(lines[i])
                i += 1
            examples.append(Example(path.name, start + first, command, "\n".join(output)))
    return examples


EXAMPLES = [example for guide in GUIDES for example in _examples(guide)]


def _simple_commands(command: str) -> list[list[str]]:
    """The words of each command of a line, split at pipes, `&&` and `;`; comments dropped."""
    words = shlex.split(command, comments=True)
    commands, current = [], []
    for word in words:
        if word in ("|", "&&", ";"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [c for c in commands if c]


def _nasforge_calls() -> list[tuple[Example, list[str]]]:
    return [
        (example, words[1:])
        for example in EXAMPLES
        for words in _simple_commands(example.command)
        if words[0] in NASFORGE
    ]


def _command(name: str) -> click.Command | None:
    return cli.get_command(click.Context(cli), name)


def _check_options(command: click.Command, args: list[str], where: str) -> None:
    params = {opt: param for param in command.params for opt in param.opts}
    names = {*params, "--help", "-h"}
    for index, arg in enumerate(args):
        if not arg.startswith("-") or arg == "-":
            continue
        name, _, inline = arg.partition("=")
        assert name in names, f"{where}: `{command.name}` has no option {name}"
        param = params.get(name)
        if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
            value = inline or (args[index + 1] if index + 1 < len(args) else "")
            assert value in param.type.choices, f"{where}: {name} {value!r} is not a choice"


def test_the_guides_have_console_examples() -> None:
    calls = _nasforge_calls()
    assert len(calls) >= 10
    used = {args[0] for _, args in calls if args and not args[0].startswith("-")}
    documented = {"validate", "compile", "info", "train", "export", "search", "report"}
    assert documented <= used, f"no console example of {sorted(documented - used)}"


@pytest.mark.parametrize(
    "example, args", _nasforge_calls(), ids=lambda v: v.command if isinstance(v, Example) else ""
)
def test_each_nasforge_example_names_a_command_and_options_that_exist(
    example: Example, args: list[str]
) -> None:
    where = f"{example.guide}:{example.line}"
    if not args or args[0].startswith("-"):
        _check_options(cli, args, where)
        return
    command = _command(args[0])
    assert command is not None, f"{where}: there is no command `nasforge {args[0]}`"
    _check_options(command, args[1:], where)


def _names_a_repository_file(word: str) -> bool:
    """A path a clone holds (outputs under out/ and absolute paths are made by the user)."""
    if word.startswith(REPO_DIRS):
        return True
    return word.endswith((".arch", ".toml")) and not word.startswith(("out/", "/"))


def test_every_repository_file_an_example_names_exists() -> None:
    named = [
        (example, word)
        for example in EXAMPLES
        for words in _simple_commands(example.command)
        for word in words
        if _names_a_repository_file(word)
    ]
    assert len(named) >= 5
    missing = [f"{e.guide}:{e.line}: {word}" for e, word in named if not (ROOT / word).exists()]
    assert not missing


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9_-]*):", makefile, flags=re.MULTILINE))


def test_every_make_target_the_guides_name_exists() -> None:
    targets = _make_targets()
    named = set()
    for guide in GUIDES:
        named |= {
            (guide.name, t) for t in re.findall(r"\bmake ([a-z][a-z0-9_-]*)", guide.read_text())
        }
    assert {"demo", "test"} <= {t for _, t in named}
    assert not [f"{g}: make {t}" for g, t in sorted(named) if t not in targets]


def test_every_relative_link_points_at_a_file() -> None:
    broken = []
    for guide in GUIDES:
        for target in re.findall(r"\]\(([^)\s]+)\)", guide.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (guide.parent / path).exists():
                broken.append(f"{guide.name}: {target}")
    assert not broken


def test_the_readme_activates_the_venv_before_its_first_bare_nasforge() -> None:
    commands = [e.command for e in EXAMPLES if e.guide == "README.md"]
    activate = commands.index("source .venv/bin/activate")
    first_bare = next(i for i, c in enumerate(commands) if c.split()[0] == "nasforge")
    assert activate < first_bare


def _compared() -> list[tuple[Example, list[str]]]:
    calls = []
    for example in EXAMPLES:
        commands = _simple_commands(example.command)
        if commands[0][0] in NASFORGE and commands[0][1] in RUN_AND_COMPARE:
            calls.append((example, commands))
    return calls


def test_examples_are_run_for_validate_and_info() -> None:
    assert {commands[0][1] for _, commands in _compared()} == set(RUN_AND_COMPARE)


@pytest.mark.parametrize(
    "example, commands", _compared(), ids=lambda v: v.command if isinstance(v, Example) else ""
)
def test_validate_and_info_examples_print_what_the_guide_shows(
    example: Example, commands: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, commands[0][1:], prog_name="nasforge")
    lines = result.output.splitlines()
    for pipe in commands[1:]:
        assert pipe[0] == "tail" and pipe[1].startswith("-"), f"cannot run `{' '.join(pipe)}`"
        lines = lines[-int(pipe[1][1:]) :]
    assert "\n".join(lines) == example.output, f"{example.guide}:{example.line}"
