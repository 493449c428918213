"""Lowering of a cells architecture: cell classes, the network that stacks them, and its cost.

Three skeletons, each as its reference implementation builds it:

- ``nasnet``: TensorFlow slim ``nets/nasnet`` (``_build_nasnet_base``, ``_cell_base``,
  ``_apply_conv_operation``, ``_combine_unused_states``).
- ``darts``: the DARTS reference code, ``cnn/model.py`` (``NetworkCIFAR``,
  ``NetworkImageNet``) with the ops of ``cnn/operations.py``.
- ``nb201``: NAS-Bench-201's ``TinyNetwork`` and ``InferCell``.

The plan is what both the template and the cost model read. A cell class is
planned once per cell kind; its widths are written in terms of its constructor
arguments (``c``, and for NASNet ``c0``, the width of S0, which differs from
``c`` only when S0 is the stem's raw output); the instances carry the numbers.

Where the language allows more than a reference implementation does, these
rules apply (each is also stated in the generated file where it shows):

1. Every op maps its input width to the cell width ``c``. An op reading a
   state of another width (a ``concat`` node, or NASNet's raw S0) changes the
   width the way its reference does: separable, dilated and plain convolutions
   take the input width natively; NASNet's identity becomes ReLU -> 1x1 conv ->
   BN and its pools get a 1x1 conv -> BN after them (slim); DARTS and
   NAS-Bench-201 identities become a 1x1 conv -> BN and their pools get a
   ReLU -> 1x1 conv -> BN before them (NAS-Bench-201's FactorizedReduce and
   POOLING); ``none`` gives zeros of the output's width.
2. A ``concat`` node concatenates its edges' outputs on channels (width
   ``len(edges) * c``).
3. Output rule: NASNet brings every output state to the last node's height
   and width as slim's ``_combine_unused_states`` does (a factorized reduction
   when the size differs, a 1x1 conv -> BN when only the width does; the ReLU
   is not part of it). DARTS concatenates the listed states as they are, except
   that a reduction cell's inputs S0/S1 in its output are halved by a
   factorized reduction (DARTS itself would fail there).
4. Ops that slim's released code does not implement (plain, paired and dilated
   convolutions, zero) use the DARTS definitions in every skeleton, padded evenly;
   pooling windows of any size pad by ``kernel // 2`` at stride 1. NASNet's own
   strided ops (separable convs, pools) pad as TensorFlow's SAME, computed from
   the input's size (one pixel more after than before where the total is odd; an
   average counts only input pixels), as slim does; DARTS and NAS-Bench-201 pad
   evenly, as their references do.
5. Sizes: a cell is at least 2 channels wide (a factorized reduction splits its
   output in two); DARTS' ImageNet stem halves ``filters`` to at least 1;
   NASNet's ImageNet stem conv pads an axis shorter than 3 by one; the
   auxiliary heads clamp their windows to the feature map and read the
   flattened result, so any input size builds. NAS-Bench-201's reduction
   shortcut pools with ``ceil_mode=True`` so odd sizes match the strided conv.
6. Drop-path (an override of the nasnet and darts files) has a fixed
   probability, applied in training after every op but the identity (slim
   skips its 'none' op even where it is a strided 1x1 conv; DARTS skips
   Identity modules only). slim scales it by depth and training progress and
   DARTS by epoch: a training loop may set each DropPath's `p` the same way.
   NAS-Bench-201 has no drop-path.
7. Network outputs: the logits; with ``aux_head=True`` in training mode, the
   pair ``(logits, aux_logits)`` (NAS-Bench-201's TinyNetwork returns
   ``(features, logits)``; this file returns the logits only).
8. Batch norm: NASNet with the ImageNet stem (slim's mobile and large configs)
   sets epsilon 1e-3 on every batch norm, as slim and timm do; the CIFAR stem and
   the other skeletons keep PyTorch's 1e-5 (slim's cifar_config, DARTS,
   NAS-Bench-201). Momentum stays PyTorch's 0.1 everywhere: it only steers
   training (slim's ImageNet decay 0.9997 would be 3e-4).

The package, one job a module: ``plan_types`` (the plan dataclasses), ``modules``
(the registry: what each op becomes, which op classes it needs, what it costs),
``cell`` (a cell class: nodes, edges, output rule), ``nasnet`` / ``darts`` /
``nb201`` (each skeleton's stacking, a row of ``plan.SKELETONS``), ``stacking``
(what the skeletons share), ``plan`` (``plan_cells``), ``counter`` and ``cost``
(``cost_cells``).
"""

from .cost import cost_cells
from .plan import plan_cells

__all__ = ["cost_cells", "plan_cells"]
