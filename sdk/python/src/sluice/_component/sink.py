# componentize-py finds an exported resource's class in a top-level module
# named after its interface: `sink.Writer` here.
from sluice._wasm.sink import Writer  # noqa: F401
