"""Training configuration: presets, ``base`` inheritance, ``--set`` overrides and the schema every config passes.

A config file is YAML. ``base: NAME`` (a packaged preset, or a file next to this one) is loaded first and the file's
keys are deep-merged over it: mappings merge key by key, lists and scalars replace, and a mapping tagged ``!replace``
replaces the base's mapping instead of merging into it. ``--set a.b.c=VALUE`` (VALUE parsed as YAML) then assigns.
The result is validated against :class:`TrainingConfig` (unknown keys and wrong types are errors that name the key
and the file or ``--set`` that set it) and handed on as a plain dict with every default filled in, except
``model``, ``model_changes`` and ``loss_weights``: those are merged later over the network defaults or a
checkpoint's architecture, so only the keys a config sets are passed on.
"""

from __future__ import annotations

import copy
import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lowres_ocr.train.schema import TrainingConfig

CONFIG_DIR = Path(__file__).parent / "configs"

Origins = dict[tuple, str]  # key path → "set in FILE" / "set by --set ..."


class ConfigError(ValueError):
    """A config that cannot be trained: the message names each bad key and where it was set."""


# -- reading files -------------------------------------------------------------------------------------
class _Replace(dict):
    """A mapping tagged ``!replace``: it replaces the base's mapping instead of merging into it."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!replace", lambda loader, node: _Replace(loader.construct_mapping(node, deep=True)))


def _plain(value: Any) -> Any:
    """A deep copy with ``!replace`` mappings turned back into plain dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def resolve_config_path(name: str | Path, near: Path | None = None) -> Path:
    """A YAML path (also tried next to ``near``, the including file's folder), or a packaged preset's name."""
    for path in ([near / name] if near is not None else []) + [Path(name), CONFIG_DIR / f"{name}.yaml"]:
        if path.is_file():
            return path
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"config {str(name)!r} is neither a file nor one of the packaged configs {names}")


def _forget(origins: Origins, path: tuple) -> None:
    for key in [k for k in origins if k[:len(path)] == path]:
        del origins[key]


def _mark(value: Any, path: tuple, origin: str, origins: Origins) -> None:
    """Record ``origin`` for ``path`` and every key or list item below it."""
    origins[path] = origin
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _mark(item, path + (key,), origin, origins)


def _merge_into(dst: dict[str, Any], src: dict[str, Any], prefix: tuple, origin: str, origins: Origins) -> None:
    for key, value in src.items():
        path = prefix + (key,)
        if isinstance(value, dict) and not isinstance(value, _Replace) and isinstance(dst.get(key), dict):
            origins[path] = origin
            _merge_into(dst[key], value, path, origin, origins)
        else:
            _forget(origins, path)
            dst[key] = _plain(value)
            _mark(value, path, origin, origins)


def _resolve(name: str | Path, origins: Origins, chain: tuple[Path, ...] = (), near: Path | None = None) -> dict[str, Any]:
    path = resolve_config_path(name, near).resolve()
    if path in chain:
        raise ConfigError(f"base: {' -> '.join(map(str, chain + (path,)))} is a cycle")
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader with one more tag)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"base: a preset name or a YAML file, got {base!r} (set in {path})")
    cfg = _resolve(base, origins, chain + (path,), path.parent) if base is not None else {}
    _merge_into(cfg, raw, (), f"set in {path}", origins)
    return cfg


# -- overrides -----------------------------------------------------------------------------------------
def apply_override(cfg: dict[str, Any], assignment: str, origins: Origins | None = None) -> None:
    """``a.b.c=value`` (value parsed as YAML) into ``cfg``; a number indexes a list (``data.train.0.weight=0.5``)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key.sub=value")
    key, raw = assignment.split("=", 1)
    where = f"set by --set {assignment}"
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: cannot parse {raw!r} as YAML ({where}): {err}") from None
    parts: list[Any] = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise ConfigError(f"{key}: {'.'.join(map(str, parts[:i]))} has no item {part} ({where})")
            parts[i] = part = int(part) % len(node)
        elif not isinstance(node, dict):
            raise ConfigError(f"{key}: {'.'.join(map(str, parts[:i]))} holds {node!r}, not a section ({where})")
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}  # a new section, or one a preset left null (e.g. ``model`` with init_from)
            node = node[part]
    if origins is not None:
        _forget(origins, tuple(parts))
        _mark(value, tuple(parts), where, origins)


# -- validation ----------------------------------------------------------------------------------------
def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The schema class inside ``Optional[...]`` / ``list[...]`` / ``Annotated[...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _keys_at(path: tuple) -> list[str]:
    """The keys the schema allows in the section at ``path``."""
    schema: type[BaseModel] | None = TrainingConfig
    for part in path:
        if isinstance(part, int):
            continue
        field = schema.model_fields.get(part) if schema is not None else None
        schema = _model_in(field.annotation) if field is not None else None
    return (list(schema.model_fields) if schema is not None else []) + (["base"] if not path else [])


def _key_path(loc: tuple, cfg: Any, error_type: str) -> tuple:
    """``loc`` without pydantic's union-member tags: only the keys and list indices the config has."""
    path: list[Any] = []
    node = cfg
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part]
        elif i == len(loc) - 1 and error_type in ("missing", "extra_forbidden"):
            pass
        else:
            continue
        path.append(part)
    return tuple(path)


def _where(path: tuple, origins: Origins) -> str:
    """Where ``path`` was set: its own origin, else the last origin of a key below it, else its nearest section's."""
    if path in origins:
        return origins[path]
    below = [v for k, v in origins.items() if k[:len(path)] == path]
    if below:
        return below[-1]
    for n in range(len(path) - 1, 0, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return "not set"


def _describe(path: tuple, errors: list[dict[str, Any]], origins: Origins) -> str:
    """One line for the errors pydantic found at ``path`` (several when a union's members all failed)."""
    dotted = ".".join(map(str, path))
    kind = errors[0]["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(path[-1]), _keys_at(path[:-1]), n=1)
        hint = f"; did you mean {'.'.join(map(str, path[:-1] + (close[0],)))}?" if close else ""
        return f"{dotted}: unknown key ({_where(path, origins)}){hint}"
    if kind == "missing":
        return f"{dotted}: required key missing (section {_where(path[:-1], origins)})"
    expected = " or ".join(dict.fromkeys(e["msg"] for e in errors))
    return f"{dotted}: {expected}, got {errors[0]['input']!r} ({_where(path, origins)})"


def validate_config(cfg: dict[str, Any], origins: Origins | None = None) -> dict[str, Any]:
    """``cfg`` checked against :class:`TrainingConfig`, as a plain dict with its defaults filled in."""
    try:
        checked = TrainingConfig.model_validate(cfg)
    except ValidationError as err:
        found: dict[tuple, list[dict[str, Any]]] = {}
        for error in err.errors():
            found.setdefault(_key_path(error["loc"], cfg, error["type"]), []).append(error)
        raise ConfigError("\n".join(_describe(path, errors, origins or {}) for path, errors in found.items())) from None
    out = checked.model_dump()
    check_config(out)
    return out


def check_config(cfg: dict[str, Any]) -> None:
    """Refuse combinations that cannot work, before the trainer has side effects.

    - ``loss_weights.feature`` unless the recognizer is frozen. Measured: against a trainable encoder the MSE is cut by
      shrinking both sides' features (validation fell from 78.5 % to 68 % in 100 steps); it needs the fixed HR features
      of a frozen recognizer.
    - ``reinit`` without ``init_from``: there is no loaded checkpoint to reset parts of.
    - ``loss_weights.distill`` with an attention decoder: the teacher is the PP-OCR CTC recognizer.
    """
    if (cfg.get("loss_weights") or {}).get("feature") and "recognizer" not in (cfg["train"].get("freeze") or []):
        raise ConfigError("loss_weights.feature needs train.freeze to include 'recognizer': against a trainable "
                          "encoder the feature MSE collapses the features instead of improving the SR path")
    if (cfg.get("loss_weights") or {}).get("distill") and ((cfg.get("model") or {}).get("decoder") == "attention"
                                                           or (cfg.get("model_changes") or {}).get("decoder") == "attention"):
        raise ConfigError("loss_weights.distill needs a CTC model: the teacher is the pretrained PP-OCR CTC recognizer")
    if cfg.get("reinit") and not cfg.get("init_from"):
        raise ConfigError("reinit needs init_from: it resets parts of a loaded checkpoint")


def resolve_config(name: str | Path, overrides: list[str] | None = None,
                   output_dir: str | Path | None = None) -> tuple[dict[str, Any], Origins]:
    """The merged, not yet validated config and where each key was set."""
    origins: Origins = {}
    cfg = _resolve(name, origins)
    for assignment in overrides or []:
        apply_override(cfg, assignment, origins)
    if output_dir is not None:
        cfg["output_dir"] = str(output_dir)
        _mark(cfg["output_dir"], ("output_dir",), "set by --output-dir", origins)
    return cfg, origins


def load_config(name: str | Path, overrides: list[str] | None = None,
                output_dir: str | Path | None = None) -> dict[str, Any]:
    """Preset or file ``name`` with its bases, ``overrides`` and ``output_dir`` applied, validated."""
    return validate_config(*resolve_config(name, overrides, output_dir))


def merge_model_config(model_cfg: dict[str, Any] | None) -> dict[str, Any]:
    from lowres_ocr.network import DEFAULT_MODEL
    from lowres_ocr.network.model import merge

    return merge(DEFAULT_MODEL, model_cfg)
