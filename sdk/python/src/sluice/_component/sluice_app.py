# The app module `sluice plugin build` hands to componentize-py. It imports
# the author's module (through `sluice_entry`, written by the build), which
# calls `sluice.export(...)`, then offers the matching export class under
# the name componentize-py looks for (`Source`, `Filter` or `Sink`).
import sluice_entry  # noqa: F401

from sluice.plugin import exported, kind_of

_kind = kind_of(exported())
if _kind == "source":
    from sluice._wasm.source import Source  # noqa: F401
elif _kind == "filter":
    from sluice._wasm.filter import Filter  # noqa: F401
else:
    from sluice._wasm.sink import Sink  # noqa: F401
