"""Object storage through the job's `blob` grant: a local directory, an
`s3://` or a `gs://` prefix. Paths are relative to the grant; the host
refuses anything outside it. Natively (tests), `sluice.blob.root` is a
local directory standing in for the grant.

Errors raise the typed `sluice` errors the host reports (a refused path
is a `ConfigError`, a dropped connection a `TransientError`).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass

IN_WASM = sys.platform == "wasi"

#: The directory standing in for the grant in native runs.
root: str = "."


@dataclass(frozen=True)
class ObjectInfo:
    path: str
    size: int
    modified_ms: int


def _host():
    from componentize_py_types import Err
    from wit_world.imports import blob

    from ._wasm import raise_error

    return blob, Err, raise_error


def _call(name: str, *args):
    blob, Err, raise_error = _host()
    try:
        return getattr(blob, name)(*args)
    except Err as e:
        raise_error(e.value)


def _local(path: str) -> str:
    full = os.path.normpath(os.path.join(root, path))
    if not (full + os.sep).startswith(os.path.normpath(root) + os.sep) and full != os.path.normpath(root):
        from .errors import ConfigError

        raise ConfigError(f"{path} is outside the blob grant")
    return full


def list(pattern: str = "**", start_after: str | None = None) -> "list[ObjectInfo]":
    """Objects whose paths match the glob `pattern`, in path order."""
    if IN_WASM:
        return [ObjectInfo(o.path, o.size, o.modified_ms) for o in _call("list", pattern, start_after)]
    found = []
    for base, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(base, f), root).replace(os.sep, "/")
            if fnmatch.fnmatch(rel, pattern) and (start_after is None or rel > start_after):
                st = os.stat(os.path.join(base, f))
                found.append(ObjectInfo(rel, st.st_size, int(st.st_mtime * 1000)))
    return sorted(found, key=lambda o: o.path)


def stat(path: str) -> ObjectInfo | None:
    if IN_WASM:
        o = _call("stat", path)
        return None if o is None else ObjectInfo(o.path, o.size, o.modified_ms)
    full = _local(path)
    if not os.path.isfile(full):
        return None
    st = os.stat(full)
    return ObjectInfo(path, st.st_size, int(st.st_mtime * 1000))


def read(path: str, offset: int = 0, length: int | None = None) -> bytes:
    """Bytes `offset .. offset + length` of an object (all of it by default)."""
    if IN_WASM:
        if length is None:
            info = stat(path)
            length = 0 if info is None else max(info.size - offset, 0)
        return _call("read", path, offset, length)
    with open(_local(path), "rb") as f:
        f.seek(offset)
        return f.read() if length is None else f.read(length)


def write(path: str, data: bytes | str) -> None:
    """Create or replace an object."""
    data = data.encode() if isinstance(data, str) else bytes(data)
    if IN_WASM:
        _call("write", path, data)
        return
    full = _local(path)
    os.makedirs(os.path.dirname(full) or ".", exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)


def rename(src: str, dst: str) -> None:
    if IN_WASM:
        _call("rename", src, dst)
        return
    os.replace(_local(src), _local(dst))


def delete(path: str) -> None:
    if IN_WASM:
        _call("delete", path)
        return
    try:
        os.remove(_local(path))
    except FileNotFoundError:
        pass
