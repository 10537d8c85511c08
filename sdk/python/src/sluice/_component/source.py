# componentize-py finds an exported resource's class in a top-level module
# named after its interface: `source.Reader` here.
from sluice._wasm.source import Reader  # noqa: F401
