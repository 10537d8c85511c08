# componentize-py finds an exported resource's class in a top-level module
# named after its interface: `filter.Transformer` here.
from sluice._wasm.filter import Transformer  # noqa: F401
