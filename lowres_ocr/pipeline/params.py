"""``-p KEY=VALUE`` pipeline arguments, typed by the parameter types of the compiled pipeline package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class ParameterError(ValueError):
    """A ``-p`` argument that is malformed, names no pipeline parameter, or does not fit its type."""


def parameter_types(package: Path) -> dict[str, str]:
    """Parameter name → type (``STRING``, ``NUMBER_INTEGER``, ``NUMBER_DOUBLE``, ``BOOLEAN``, ...) of a package."""
    spec = next(yaml.safe_load_all(package.read_text()))
    params = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: str(p.get("parameterType", "STRING")) for name, p in params.items()}


def convert(name: str, value: str, kind: str) -> Any:
    """``value`` as the parameter's type; an empty string stays a string for STRING parameters."""
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
        if kind == "BOOLEAN":
            if value.lower() in _TRUE + _FALSE:
                return value.lower() in _TRUE
            raise ValueError(value)
        if kind in ("LIST", "STRUCT"):
            import json

            return json.loads(value)
    except ValueError:
        want = {"NUMBER_INTEGER": "an integer", "NUMBER_DOUBLE": "a number", "BOOLEAN": "true or false",
                "LIST": "a JSON list", "STRUCT": "a JSON object"}[kind]
        raise ParameterError(f"-p {name}={value!r}: {name} takes {want}") from None
    return value


def typed_arguments(items: list[str], types: dict[str, str]) -> dict[str, Any]:
    """``["train_steps=10", "baseline_report="]`` → ``{"train_steps": 10, "baseline_report": ""}``."""
    arguments: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ParameterError(f"-p {item!r} must be KEY=VALUE")
        if name not in types:
            raise ParameterError(f"-p {item!r}: the pipeline has no parameter {name!r} "
                                 f"(parameters: {', '.join(sorted(types))})")
        arguments[name] = convert(name, value, types[name])
    return arguments
