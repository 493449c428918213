"""The published architectures (*.arch), installed as the package data of nasforge.examples
so that `nasforge examples` can list and copy them from a pip install as well."""
