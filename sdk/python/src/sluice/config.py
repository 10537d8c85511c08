"""Typed config from dataclasses.

A plugin's config is a dataclass. Its JSON Schema comes from the type hints
(the host validates a job's config against it before the plugin runs), and
the JSON the host passes is turned back into an instance of it.

Supported hints: `str`, `int`, `float`, `bool`, `list[T]`, `dict[str, T]`,
`T | None` (optional), `Literal[...]` (an enum), `typing.Any`, and nested
dataclasses. A field's `metadata={"description": ...}` documents it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, Union

from .errors import ConfigError

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def json_schema(cls: type | None) -> dict:
    """The JSON Schema of config dataclass `cls` (any object when `None`)."""
    if cls is None:
        return {"type": "object"}
    return _schema_of(cls, set())


def plugin_schema(plugin: type) -> dict:
    """What `info()` gives the host for plugin class `plugin`: its
    config's JSON Schema, with the keys its saved state ignores
    (`state_ignores`) under `x-sluice-state-ignores`."""
    schema = json_schema(plugin.Config)
    if getattr(plugin, "state_ignores", None):
        schema["x-sluice-state-ignores"] = list(plugin.state_ignores)
    return schema


def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _schema_of(hint: Any, seen: set) -> dict:
    if hint is Any:
        return {}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if dataclasses.is_dataclass(hint):
        if hint in seen:
            raise TypeError(f"config dataclass {hint.__name__} refers to itself")
        seen = seen | {hint}
        hints = _hints(hint)
        properties, required = {}, []
        for f in dataclasses.fields(hint):
            prop = _schema_of(hints[f.name], seen)
            if "description" in f.metadata:
                prop["description"] = f.metadata["description"]
            has_default = (
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING
            )
            if has_default and f.default is not dataclasses.MISSING:
                try:
                    json.dumps(f.default)
                    prop["default"] = f.default
                except TypeError:
                    pass
            if not has_default and not _optional(hints[f.name]):
                required.append(f.name)
            properties[f.name] = prop
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        if hint.__doc__ and not hint.__doc__.startswith(hint.__name__ + "("):
            schema["description"] = hint.__doc__.strip()
        return schema
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return {"anyOf": [_schema_of(inner[0], seen), {"type": "null"}]}
        return {"anyOf": [_schema_of(a, seen) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": _schema_of(args[0], seen) if args else {}}
    if origin is dict:
        value = _schema_of(args[1], seen) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value}
    raise TypeError(f"config type {hint!r} has no JSON Schema: use str, int, float, bool, list, dict, Literal, or a dataclass")


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def load(cls: type | None, text: str) -> Any:
    """Config JSON as an instance of `cls` (a plain dict when `None`).

    The host has validated the JSON against the schema already; this only
    builds the objects, and fails with a `ConfigError` naming the path when
    something still does not fit.
    """
    try:
        value = json.loads(text) if text else {}
    except ValueError as e:
        raise ConfigError(f"config is not JSON: {e}") from None
    if cls is None:
        return value
    return _build(cls, value, "config")


def _build(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _SCALARS:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: expected {_SCALARS[hint]}, got {json.dumps(value)}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object")
        hints = _hints(hint)
        names = {f.name for f in dataclasses.fields(hint)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ConfigError(f"{path}: unknown key `{unknown[0]}`")
        kwargs = {}
        for f in dataclasses.fields(hint):
            if f.name in value:
                kwargs[f.name] = _build(hints[f.name], value[f.name], f"{path}.{f.name}")
            elif (
                f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ):
                if _optional(hints[f.name]):
                    kwargs[f.name] = None
                else:
                    raise ConfigError(f"{path}.{f.name} is required")
        return hint(**kwargs)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _build(a, value, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{path}: no type fits")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {', '.join(map(json.dumps, args))}")
        return value
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list")
        item = args[0] if args else Any
        return origin(_build(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object")
        item = args[1] if len(args) == 2 else Any
        return {k: _build(item, v, f"{path}.{k}") for k, v in value.items()}
    return value
