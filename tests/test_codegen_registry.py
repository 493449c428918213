"""The module registry and the families tables: one row per thing, and every row is used.

The registry (codegen/cells/modules.py) is the only place that says what a cell op
becomes; each module has exactly one template macro that builds it, and every op of
the op table lowers to a module of the registry in every skeleton.
"""

from __future__ import annotations

import itertools
import re

import pytest
from nasforge.codegen.cells.modules import HELPERS, MODULES, edge_module
from nasforge.codegen.cells.plan import SKELETONS
from nasforge.codegen.families import FAMILIES
from nasforge.codegen.render import TEMPLATES, environment
from nasforge.grammar import ops
from nasforge.grammar.ir import Arch
from nasforge.grammar.printer import _PRINTERS
from nasforge.grammar.validate import _VALIDATORS


def _macros(template: str) -> set[str]:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return set(re.findall(r"\{% macro (\w+)\(", text))


def test_every_module_has_one_macro_and_every_macro_a_module():
    assert _macros("_edge_modules.py.jinja") == set(MODULES)


def test_every_macro_builds_code_that_names_only_known_helpers():
    module = environment().get_template("_edge_modules.py.jinja").module
    for name, entry in MODULES.items():
        code = str(getattr(module, name)("c_in", "c_out", 3, 2, 1))
        called = set(re.findall(r"(?<![.\w])([A-Z]\w*)\(", code))
        assert called <= set(entry.helpers), (name, code)
        assert set(entry.helpers) <= set(HELPERS), name


@pytest.mark.parametrize("skeleton", sorted(ops.SKELETONS))
def test_every_op_lowers_to_a_registry_module(skeleton):
    seen = set()
    for op, stride, differs in itertools.product(ops.CELL_OPS.values(), (1, 2), (False, True)):
        module = edge_module(skeleton, op, stride, differs)
        assert module in MODULES, (op.name, stride, differs)
        seen.add(module)
    assert seen  # each skeleton lowers through the registry


def test_every_skeleton_of_the_op_table_has_a_row():
    assert set(SKELETONS) == set(ops.SKELETONS)
    for code in SKELETONS.values():
        assert set(code.helpers) <= set(HELPERS)


def test_the_families_tables_cover_the_same_ir_classes():
    classes = set(Arch.__args__)
    assert set(FAMILIES) == classes
    assert set(_PRINTERS) == classes
    assert set(_VALIDATORS) == classes
