"""nasforge: neural architecture search built as a compiler.

The code lives in four subpackages, each installed from its own folder of the
source tree (pyproject.toml's package-dir): nasforge.grammar (the language),
nasforge.codegen (IR -> PyTorch), nasforge.controller (spaces and strategies) and
nasforge.runtime (training, search, export, the CLI); nasforge.examples holds the
published architectures. This module only names the version (pyproject.toml reads
it from here), so importing any subpackage stays as cheap as before.
"""

__version__ = "0.1.0"
