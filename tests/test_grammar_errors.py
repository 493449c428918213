"""Pinned error messages: the exact text a person sees (message, context line, caret, hint).

Each case is a small architecture with one mistake. The texts are compared in
full so that a change to any message is a deliberate change to this file.
"""

from __future__ import annotations

import pytest
from nasforge.grammar import (
    ArchError,
    ArchSyntaxError,
    ArchValidationError,
    NasforgeError,
    limits,
    ops,
    parse,
)
from nasforge.grammar.parser import _MISTAKES, _mistake_table

CNN = "cnn input 3x32x32 classes 10\n"
RNN = "rnn base 2\nN0: add tanh\nN1: mul relu\nN2: mul sigmoid\n"
DARTS = "cells darts input 3x32x32 classes 10\n"
NB201 = "cells nb201 input 3x32x32 classes 10\n"


def error_of(text: str, filename: str = "model.arch") -> ArchError:
    with pytest.raises(ArchError) as info:
        parse(text, filename)
    return info.value


def syntax_error(text: str) -> ArchSyntaxError:
    err = error_of(text)
    assert isinstance(err, ArchSyntaxError), str(err)
    return err


def validation_error(text: str) -> ArchValidationError:
    err = error_of(text)
    assert isinstance(err, ArchValidationError), str(err)
    return err


# --- syntax errors -------------------------------------------------------------------


def test_missing_arrow_before_anchors() -> None:
    err = syntax_error(CNN + "L1: conv 3x3 n36\nL2: conv 3x3 n48 L1\n")
    assert str(err) == (
        "model.arch:3:18: error: unexpected 'L1'; expected one of '<-', a filter count like n36, "
        "a name, a new line or ';', a stride like s2x2, the end of the text\n"
        "  L2: conv 3x3 n48 L1\n"
        "                   ^\n"
        "  hint: anchors come after '<-', as in 'L3: conv 3x3 n36 <- L1 L2'; "
        "two statements on one line need a ';' between them"
    )
    assert (err.line, err.column) == (3, 18)
    assert err.expected == (
        "'<-'",
        "a filter count like n36",
        "a name",
        "a new line or ';'",
        "a stride like s2x2",
        "the end of the text",
    )
    assert err.label == err.hint and err.label is not None
    assert err.label.startswith("anchors come after '<-'")


def test_hints_do_not_depend_on_how_many_statements_come_first() -> None:
    """The same mistake gets the same hint as the first, second or tenth layer."""
    layers = "".join(f"L{i}: conv 3x3 n36\n" for i in range(1, 10))
    for before in ("", "L1: conv 3x3 n36\n", layers):
        assert syntax_error(CNN + before + "L10 conv 3x3 n36\n").label == (
            "a layer starts with its label and a colon, as in 'L1: conv 3x3 n36'"
        )
        assert syntax_error(CNN + before + "L10: conv 3x3 n36 L1\n").label.startswith(
            "anchors come after '<-'"
        )


def test_every_common_mistake_example_gets_its_own_label() -> None:
    assert len(_mistake_table()) == sum(len(examples) for examples in _MISTAKES.values())
    for label, examples in _MISTAKES.items():
        for example in examples:
            assert syntax_error(example).label == label, example


def test_bad_size() -> None:
    err = syntax_error(CNN + "L1: conv 3 n36\n")
    assert str(err) == (
        "model.arch:2:10: error: unexpected '3'; expected a size like 3x3\n"
        "  L1: conv 3 n36\n"
        "           ^\n"
        "  hint: sizes are written HEIGHTxWIDTH, as in 'conv 3x3 n36'"
    )
    assert err.expected == ("a size like 3x3",)


def test_missing_header() -> None:
    err = syntax_error("L1: conv 3x3 n36\nL2: conv 3x3 n36 <- L1\n")
    assert str(err) == (
        "model.arch:1:1: error: unexpected 'L1'; expected one of 'cells', 'cnn', 'rnn', "
        "a new line or ';'\n"
        "  L1: conv 3x3 n36\n"
        "  ^\n"
        "  hint: an architecture starts with its family: cnn, rnn or cells"
    )
    assert err.expected == ("'cells'", "'cnn'", "'rnn'", "a new line or ';'")


def test_incomplete_cnn_header() -> None:
    err = syntax_error("cnn input 3x32x32\nL1: conv 3x3 n36\n")
    assert str(err) == (
        "model.arch:1:18: error: unexpected end of the line; expected 'classes'\n"
        "  cnn input 3x32x32\n"
        "                   ^\n"
        "  hint: the cnn header is 'cnn input CxHxW classes K', "
        "as in 'cnn input 3x32x32 classes 10'"
    )


def test_unexpected_character_lists_what_may_come_there() -> None:
    err = syntax_error(CNN + "L1: conv 3x3 n36 @\n")
    assert str(err) == (
        "model.arch:2:18: error: unexpected character '@'; expected one of '<-', "
        "a filter count like n36, a name, a new line or ';', a stride like s2x2, "
        "the end of the text\n"
        "  L1: conv 3x3 n36 @\n"
        "                   ^"
    )
    assert err.label is None and err.hint is None


def test_unexpected_unicode_character() -> None:
    err = syntax_error("cnn input 3\u00d732\u00d732 classes 10\n")
    assert str(err) == (
        "model.arch:1:11: error: unexpected '3'; expected an input shape like 3x32x32\n"
        "  cnn input 3\u00d732\u00d732 classes 10\n"
        "            ^\n"
        "  hint: the input shape is CHANNELSxHEIGHTxWIDTH, as in 3x32x32"
    )
    err = syntax_error("rnn base 2\nN0: add tänh\n")
    assert str(err) == (
        "model.arch:2:10: error: unexpected character 'ä'; expected one of "
        "a new line or ';', the end of the text\n"
        "  N0: add tänh\n"
        "           ^"
    )


def test_nul_byte() -> None:
    err = syntax_error(CNN + "L1: conv 3x3\x00 n36\n")
    assert str(err) == (
        "model.arch:2:13: error: unexpected character '\\x00'; expected one of '<-', "
        "a filter count like n36, a name, a new line or ';', a stride like s2x2, "
        "the end of the text\n"
        "  L1: conv 3x3\N{REPLACEMENT CHARACTER} n36\n"
        "              ^"
    )
    assert (err.line, err.column) == (2, 13)


def test_tabs_keep_the_caret_under_the_character() -> None:
    err = syntax_error(CNN + "L1:\tconv\t3x3\tn36 $\n")
    assert err.context() == "  L1:\tconv\t3x3\tn36 $\n     \t    \t   \t    ^"


def test_end_of_text() -> None:
    err = syntax_error("cnn input 3x32x32 classes")
    assert str(err) == (
        "model.arch:1:26: error: unexpected end of the text; expected a whole number\n"
        "  cnn input 3x32x32 classes\n"
        "                           ^"
    )
    assert err.expected == ("a whole number",)
    err = syntax_error(CNN + "L1: conv 3x3 n36\nL2: conv")
    assert str(err) == (
        "model.arch:3:9: error: unexpected end of the text; expected a size like 3x3\n"
        "  L2: conv\n"
        "          ^\n"
        "  hint: sizes are written HEIGHTxWIDTH, as in 'conv 3x3 n36'"
    )


def test_empty_text() -> None:
    for text in ("", "  \n\n", "# only a comment\n"):
        err = syntax_error(text)
        assert err.message.startswith("unexpected end of the text; expected one of 'cells', 'cnn'")
        assert err.label == "an architecture starts with its family: cnn, rnn or cells"
    assert str(syntax_error("")) == (
        "model.arch:1:1: error: unexpected end of the text; expected one of 'cells', 'cnn', "
        "'rnn', a new line or ';'\n"
        "  \n"
        "  ^\n"
        "  hint: an architecture starts with its family: cnn, rnn or cells"
    )


def test_arrow_without_layers() -> None:
    err = syntax_error(CNN + "L1: conv 3x3 n36\nL2: conv 3x3 n36 <-\n")
    assert str(err) == (
        "model.arch:3:20: error: unexpected end of the line; expected a layer like L1\n"
        "  L2: conv 3x3 n36 <-\n"
        "                     ^\n"
        "  hint: '<-' takes one or more earlier layers, as in '<- L1 L2'"
    )


def test_bad_cell_edge() -> None:
    err = syntax_error(DARTS + "normal:\n  S2 = add(sep3x3 S0)\n")
    assert str(err) == (
        "model.arch:3:19: error: unexpected 'S0'; expected '('\n"
        "    S2 = add(sep3x3 S0)\n"
        "                    ^\n"
        "  hint: a cell node combines edges, and an edge is an op applied to a state, "
        "as in 'S2 = add(sep3x3(S0), skip(S1))'"
    )
    assert err.expected == ("'('",)
    err = syntax_error(DARTS + "normal:\n  S2 = add(sep3x3(S0) skip(S1))\n")
    assert str(err) == (
        "model.arch:3:23: error: unexpected 'skip'; expected one of ')', ','\n"
        "    S2 = add(sep3x3(S0) skip(S1))\n"
        "                        ^\n"
        "  hint: a cell node combines edges, and an edge is an op applied to a state, "
        "as in 'S2 = add(sep3x3(S0), skip(S1))'"
    )


def test_bad_output_rule() -> None:
    err = syntax_error(DARTS + "normal:\n  S2 = add(skip(S0))\n  out = concat()\n")
    assert str(err) == (
        "model.arch:4:16: error: unexpected ')'; expected one of 'unused', a state like S0\n"
        "    out = concat()\n"
        "                 ^\n"
        "  hint: an output rule is 'out = S5' or 'out = concat(S2, S3)' or "
        "'out = concat(unused)'"
    )


def test_incomplete_tree_node() -> None:
    err = syntax_error("rnn base 2\nN0: add tanh\nN1: add\nN2: add tanh\n")
    assert str(err) == (
        "model.arch:3:8: error: unexpected end of the line; expected a name\n"
        "  N1: add\n"
        "         ^\n"
        "  hint: a tree node names a combine and an activation, as in 'N0: add tanh'"
    )


# --- validation errors -------------------------------------------------------------


def test_unknown_op_lists_the_choices() -> None:
    err = validation_error(DARTS + "normal:\n  S2 = add(sep9x9(S0))\n")
    names = ", ".join(ops.CELL_OPS)
    assert str(err) == (
        f"model.arch:3:12: error: unknown op 'sep9x9'; valid ops: {names}\n"
        "    S2 = add(sep9x9(S0))\n"
        "             ^"
    )
    assert err.choices == tuple(ops.CELL_OPS)
    assert "none, skip, conv1x1, conv3x3" in str(err)


def test_unknown_layer_kind_flag_combine_activation() -> None:
    err = validation_error(CNN + "L1: conv2d 3x3 n36\n")
    assert str(err) == (
        "model.arch:2:5: error: unknown layer kind 'conv2d'; valid layer kinds: "
        "conv, sep, maxpool, avgpool\n"
        "  L1: conv2d 3x3 n36\n"
        "      ^"
    )
    assert err.choices == tuple(ops.LAYER_KINDS)
    err = validation_error(CNN + "L1: conv 3x3 n36 dropout\n")
    assert err.message == "unknown flag 'dropout'; valid flags: nobn, lrn"
    assert err.choices == tuple(ops.LAYER_FLAGS) and (err.line, err.column) == (2, 18)
    err = validation_error(RNN.replace("N1: mul", "N1: sub") + "inject N0: add relu\ncell N1\n")
    assert err.message == "unknown combine 'sub'; valid combines: add, mul"
    assert err.choices == tuple(ops.RNN_COMBINES) and (err.line, err.column) == (3, 5)
    err = validation_error(RNN.replace("sigmoid", "softmax") + "inject N0: add relu\ncell N1\n")
    assert str(err) == (
        "model.arch:4:9: error: unknown activation 'softmax'; valid activations: "
        "identity, tanh, relu, sigmoid\n"
        "  N2: mul softmax\n"
        "          ^"
    )
    assert err.choices == tuple(ops.ACTIVATIONS)


def test_anchor_to_a_later_layer() -> None:
    err = validation_error(CNN + "L1: conv 3x3 n36\nL2: conv 3x3 n36\nL3: conv 3x3 n36 <- L1 L4\n")
    assert str(err) == (
        "model.arch:4:24: error: L3 cannot read L4: it can read L1 to L2\n"
        "  L3: conv 3x3 n36 <- L1 L4\n"
        "                         ^"
    )
    assert err.choices == ("L1", "L2")
    err = validation_error(CNN + "L1: conv 3x3 n36 <- L1\n")
    assert str(err) == (
        "model.arch:2:21: error: L1 cannot read L1: it can read only earlier ones, "
        "and there are none\n"
        "  L1: conv 3x3 n36 <- L1\n"
        "                      ^"
    )
    assert err.choices == ()


def test_duplicate_anchor() -> None:
    err = validation_error(CNN + "L1: conv 3x3 n36\nL2: conv 3x3 n36 <- L1 L1\n")
    assert str(err) == (
        "model.arch:3:24: error: L2 reads L1 twice\n"
        "  L2: conv 3x3 n36 <- L1 L1\n"
        "                         ^"
    )


def test_layer_numbered_out_of_order() -> None:
    err = validation_error(CNN + "L1: conv 3x3 n36\nL3: conv 3x3 n36 <- L1\n")
    assert str(err) == (
        "model.arch:3:1: error: layers are numbered in order: this is layer 2, "
        "so it must be labelled L2, not L3\n"
        "  L3: conv 3x3 n36 <- L1\n"
        "  ^"
    )


def test_conv_without_filters_and_pooling_with_bad_ones() -> None:
    err = validation_error(CNN + "L1: conv 3x3\n")
    assert str(err) == (
        "model.arch:2:1: error: L1 is a conv layer and needs a filter count, such as n36\n"
        "  L1: conv 3x3\n"
        "  ^"
    )
    # A pooling layer's filter count is optional (ENAS's pool branch projects to it first),
    # within the same limits as a conv's.
    assert parse(CNN + "L1: conv 3x3 n8\nL2: maxpool 2x2 n8 <- L1\n").layers[1].filters == 8
    err = validation_error(CNN + "L1: conv 3x3 n8\nL2: maxpool 2x2 n0\n")
    assert err.message == f"L2's filter count is 0; it must be between 1 and {limits.MAX_FILTERS}"
    err = validation_error(CNN + "L1: conv 3x3 n8\nL2: avgpool 2x2 lrn\n")
    assert err.message == (
        "L2 is an avgpool layer: the flags nobn, lrn apply to conv and sep layers only"
    )


def test_sizes_out_of_range() -> None:
    err = validation_error(CNN + "L1: conv 3x16 n36\n")
    assert str(err) == (
        f"model.arch:2:1: error: L1's kernel width is 16; it must be between 1 and "
        f"{limits.MAX_KERNEL}\n"
        "  L1: conv 3x16 n36\n"
        "  ^"
    )
    err = validation_error(CNN + "L1: conv 3x3 s9x1 n36\n")
    assert err.message == f"L1's stride height is 9; it must be between 1 and {limits.MAX_STRIDE}"
    err = validation_error(CNN + "L1: conv 3x3 n5000\n")
    assert err.message == (
        f"L1's filter count is 5000; it must be between 1 and {limits.MAX_FILTERS}"
    )
    err = validation_error("cnn input 3x2000x32 classes 10\nL1: conv 3x3 n36\n")
    assert str(err) == (
        f"model.arch:1:11: error: input height is 2000; it must be between 1 and "
        f"{limits.MAX_INPUT_SIZE}\n"
        "  cnn input 3x2000x32 classes 10\n"
        "            ^"
    )
    err = validation_error("cnn input 3x32x32 classes 10 lr 20\nL1: conv 3x3 n36\n")
    assert err.message == "lr is 20.0; it must be between 1e-06 and 10.0"


def test_too_many_layers() -> None:
    count = limits.MAX_LAYERS + 1
    text = CNN + "".join(f"L{i}: conv 1x1 n1\n" for i in range(1, count + 1))
    err = validation_error(text)
    assert err.message == (
        f"the number of layers is {count}; it must be between 1 and {limits.MAX_LAYERS}"
    )
    assert err.line == count + 1


def test_base_not_a_power_of_two() -> None:
    err = validation_error("rnn base 3\nN0: add tanh\n")
    assert str(err) == (
        "model.arch:1:10: error: base is 3; it must be a power of two from 2 to 64\n"
        "  rnn base 3\n"
        "           ^"
    )
    assert err.choices == ("2", "4", "8", "16", "32", "64")
    assert validation_error("rnn base 128\n").message.startswith("base is 128;")
    assert validation_error("rnn base 1\n").message.startswith("base is 1;")


def test_inject_and_cell_index_out_of_range() -> None:
    err = validation_error(RNN + "inject N5: add relu\ncell N1\n")
    assert str(err) == (
        "model.arch:5:8: error: inject cannot read N5: it can read N0 to N2\n"
        "  inject N5: add relu\n"
        "         ^"
    )
    assert err.choices == ("N0", "N1", "N2")
    err = validation_error(RNN + "inject N0: add relu\ncell N3\n")
    assert str(err) == (
        "model.arch:6:6: error: cell cannot read N3: it can read N0 to N2\n  cell N3\n       ^"
    )
    assert err.choices == ("N0", "N1", "N2")


def test_missing_inject_and_cell() -> None:
    err = validation_error(RNN + "cell N1\n")
    assert str(err) == (
        "model.arch:1:10: error: an rnn needs an 'inject' line saying where c_{t-1} joins, "
        "such as 'inject N0: add relu'\n"
        "  rnn base 2\n"
        "           ^"
    )
    err = validation_error(RNN + "inject N0: add relu\n")
    assert err.message == (
        "an rnn needs a 'cell' line saying which node's value becomes c_t, such as 'cell N1'"
    )


def test_tree_nodes_missing_extra_or_out_of_order() -> None:
    err = validation_error("rnn base 2\nN0: add tanh\nN1: mul relu\ninject N0: add relu\ncell N1\n")
    assert str(err) == (
        "model.arch:3:1: error: a base-2 tree has 3 nodes, N0 to N2; N2 is missing\n"
        "  N1: mul relu\n"
        "  ^"
    )
    err = validation_error(RNN + "N3: add tanh\ninject N0: add relu\ncell N1\n")
    assert err.message == "a base-2 tree has 3 nodes, N0 to N2; N3 is one too many"
    err = validation_error("rnn base 2\nN0: add tanh\nN2: mul relu\n")
    assert err.message == (
        "tree nodes are listed in order: this is node 1, so it must be labelled N1, not N2"
    )
    err = validation_error(RNN + "inject N0: add relu\ninject N1: add relu\ncell N1\n")
    assert (err.message, err.line, err.column) == (
        "an rnn has one 'inject' line; this is a second",
        6,
        8,
    )


def test_unknown_skeleton_option_and_section() -> None:
    err = validation_error("cells enas input 3x32x32 classes 10\n")
    assert str(err) == (
        "model.arch:1:7: error: unknown skeleton 'enas'; valid skeletons: nasnet, darts, nb201\n"
        "  cells enas input 3x32x32 classes 10\n"
        "        ^"
    )
    assert err.choices == tuple(ops.SKELETONS)
    err = validation_error("cells darts input 3x32x32 classes 10 width 3\n")
    assert str(err) == (
        "model.arch:1:38: error: unknown darts option 'width'; valid darts options: "
        "n, filters, stem\n"
        "  cells darts input 3x32x32 classes 10 width 3\n"
        "                                       ^"
    )
    assert err.choices == ("n", "filters", "stem")
    err = validation_error(DARTS + "normal:\n  S2 = add(skip(S0))\n  out = S2\nreduce:\n")
    assert str(err) == (
        "model.arch:5:1: error: unknown darts section 'reduce'; valid darts sections: "
        "normal, reduction\n"
        "  reduce:\n"
        "  ^"
    )
    assert err.choices == ("normal", "reduction")


def test_missing_section() -> None:
    err = validation_error(DARTS + "normal:\n  S2 = add(skip(S0))\n  out = S2\n")
    assert str(err) == (
        "model.arch:1:7: error: a darts architecture has the sections 'normal:', "
        "'reduction:'; 'reduction:' is missing\n"
        "  cells darts input 3x32x32 classes 10\n"
        "        ^"
    )


def test_option_out_of_range_or_not_a_choice() -> None:
    err = validation_error("cells darts input 3x32x32 classes 10 n 99\n")
    assert str(err) == (
        "model.arch:1:38: error: option n is 99; it must be between 1 and 32\n"
        "  cells darts input 3x32x32 classes 10 n 99\n"
        "                                       ^"
    )
    err = validation_error("cells darts input 3x32x32 classes 10 stem mobile\n")
    assert err.message == "option stem is mobile; valid values: cifar, imagenet"
    assert err.choices == ("cifar", "imagenet")
    err = validation_error("cells darts input 3x32x32 classes 10 n six\n")
    assert err.message == "option n takes a whole number, not 'six'"
    err = validation_error("cells nb201 input 3x32x32 classes 10 n 5 n 5\n")
    assert (err.message, err.column) == ("option n is set twice", 42)


def test_huge_numbers() -> None:
    err = validation_error(CNN + "L1: conv 3x3 n99999999999999\n")
    assert str(err) == (
        "model.arch:2:14: error: a filter count has 14 digits; numbers have at most 9\n"
        "  L1: conv 3x3 n99999999999999\n"
        "               ^"
    )
    err = validation_error("cnn input 3x32x" + "9" * 5000 + " classes 10\nL1: conv 3x3 n36\n")
    assert err.message == "the input shape has 5000 digits; numbers have at most 9"
    err = validation_error(CNN + "L1: conv 3x3 n36\nL2: conv 3x3 n36 <- L1234567890123\n")
    assert err.message == "a layer number has 13 digits; numbers have at most 9"
    err = validation_error("cnn input 3x32x32 classes 10 lr 1" + "0" * 40 + "\nL1: conv 3x3 n36\n")
    assert err.message == "lr has 41 characters; numbers have at most 32"
    err = validation_error("cnn input 3x32x32 classes 10 lr 1e999\nL1: conv 3x3 n36\n")
    assert err.message == "lr is inf; it must be between 1e-06 and 10.0"


def test_too_long_text() -> None:
    text = CNN + "L1: conv 3x3 n36\n" + "#" * limits.MAX_SOURCE_CHARS
    err = validation_error(text)
    assert str(err) == (
        f"model.arch:1:1: error: the text has {len(text):,} characters; an architecture "
        "has at most 65,536\n"
        "  cnn input 3x32x32 classes 10\n"
        "  ^"
    )
    err = validation_error("x" * 1_000_000)
    assert str(err) == (
        "model.arch:1:1: error: the text has 1,000,000 characters; an architecture has at "
        "most 65,536\n"
        f"  {'x' * 100}...\n"
        "  ^"
    )


def test_long_lines_show_a_window_around_the_column() -> None:
    text = CNN.replace("\n", "; ") + "L1: conv 3x3 n36; L2: conv 3x3 n36 <-" + " L1" * 100 + " @"
    err = syntax_error(text)
    assert err.column == len(text)
    lines = str(err).splitlines()
    assert lines[1] == "  ..." + text[-100:]
    assert lines[2] == "  " + " " * 102 + "^"


def test_nb201_dense_rule() -> None:
    err = validation_error(
        NB201 + "cell:\n  S1 = add(conv3x3(S0))\n  S2 = add(conv3x3(S1))\n  out = S2\n"
    )
    assert str(err) == (
        "model.arch:4:3: error: in a nb201 cell every node adds one edge from each earlier "
        "state, in order: S2 = add(op(S0), op(S1)); use 'none' for a missing edge\n"
        "    S2 = add(conv3x3(S1))\n"
        "    ^"
    )
    err = validation_error(
        NB201 + "cell:\n  S1 = add(conv3x3(S0))\n  S2 = add(skip(S0), none(S1))\n"
        "  out = concat(S1, S2)\n"
    )
    assert str(err) == (
        "model.arch:5:16: error: a nb201 cell outputs its last node: out = S2\n"
        "    out = concat(S1, S2)\n"
        "                 ^"
    )


def test_unused_node() -> None:
    err = validation_error(
        DARTS + "normal:\n  S2 = add(skip(S0), skip(S1))\n  S3 = add(skip(S0), skip(S1))\n"
        "  out = S3\nreduction:\n  S2 = add(skip(S0))\n  out = S2\n"
    )
    assert str(err) == (
        "model.arch:3:3: error: S2 is computed but never used: read it in a later node "
        "or list it in out\n"
        "    S2 = add(skip(S0), skip(S1))\n"
        "    ^"
    )


def test_cell_structure_errors() -> None:
    err = validation_error(NB201 + "cell:\n")
    assert str(err) == (
        "model.arch:2:1: error: the 'cell:' section has no nodes; add one such as "
        "'S1 = add(skip(S0))'\n"
        "  cell:\n"
        "  ^"
    )
    err = validation_error(NB201 + "cell:\n  S1 = add(conv3x3(S0))\n")
    assert err.message == (
        "the 'cell:' section has no output rule; add one such as 'out = concat(unused)'"
    )
    err = validation_error(NB201 + "cell:\n  S2 = add(conv3x3(S0))\n  out = S2\n")
    assert err.message == (
        "cell states are numbered in order: S0 is the cell's input, so this node must be S1, not S2"
    )
    reduction = "reduction:\n  S2 = add(skip(S0))\n  out = S2\n"
    err = validation_error(DARTS + "normal:\n  S3 = add(skip(S0))\n  out = S3\n" + reduction)
    assert err.message == (
        "cell states are numbered in order: S0 to S1 are the cell's inputs, so this node must "
        "be S2, not S3"
    )
    err = validation_error(NB201 + "cell:\n  S1 = add(conv3x3(S0))\n  out = S4\n")
    assert (err.message, err.line, err.column, err.choices) == (
        "out cannot read S4: it can read S0 to S1",
        4,
        9,
        ("S0", "S1"),
    )
    err = validation_error(DARTS + "normal:\n  S2 = add(skip(S5))\n  out = S2\n" + reduction)
    assert (err.message, err.choices) == ("S2 cannot read S5: it can read S0 to S1", ("S0", "S1"))
    err = validation_error(NB201 + "  S1 = add(conv3x3(S0))\n")
    assert err.message == "a node or output rule must follow a section header such as 'cell:'"
    err = validation_error(NB201 + "cell:\n  S1 = add(conv3x3(S0))\n  out = S1\ncell:\n")
    assert (err.message, err.line) == ("the section 'cell:' appears twice", 5)
    err = validation_error(DARTS + "normal:\n  S2 = add(skip(S0))\n  out = add(S2)\n")
    assert (err.message, err.choices) == (
        "an output rule concatenates: out = concat(...), not add(...)",
        ("concat",),
    )
    err = validation_error(DARTS + "normal:\n  S2 = add(skip(S0))\n  out = concat(unused, S2)\n")
    assert err.message == "'unused' stands alone: out = concat(unused)"


def test_error_class_tree() -> None:
    assert issubclass(ArchSyntaxError, ArchError)
    assert issubclass(ArchValidationError, ArchError)
    assert issubclass(ArchError, NasforgeError)
    assert issubclass(NasforgeError, Exception)


def test_default_filename_and_check_false() -> None:
    with pytest.raises(ArchValidationError) as info:
        parse("rnn base 3\n")
    assert str(info.value).startswith("<arch>:1:10: error: base is 3;")
    # check=False parses without validating: the base is only checked by validate().
    assert parse("rnn base 3\n", check=False).base == 3
