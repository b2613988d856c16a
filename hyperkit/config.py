"""Typed configs: YAML → nested dataclasses, ``key=value`` overrides, and import paths.

A recipe declares its config as nested dataclasses; :func:`load_config` reads a YAML file, applies
command-line overrides (``train.lr=3e-4``) and checks every value against the annotations, so a
typo or a wrong type fails at start-up with the dotted key, the file and the valid choices instead
of deep inside training. :func:`save_config` writes the resolved config next to a checkpoint. A config names a component
(target, data, family …) by a registered name or an import path; the registries
(:meth:`hyperkit.registry.Registry.get`, through :func:`import_path`) are the one way from such a
name to its builder.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Train:
    ...     lr: float = 1e-3
    ...     steps: int = 1000
    >>> from_dict(Train, {"lr": 1}, source="train.yaml")
    Train(lr=1.0, steps=1000)
    >>> from_dict(Train, {"lr": 1, "step": 5}, source="train.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hyperkit.config.ConfigError: train.yaml: unknown key 'step' (did you mean 'steps'?); ...
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import itertools
import os
import re
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")

__all__ = [
    "Check", "ConfigError", "check_values", "copy_config", "from_dict", "import_path",
    "load_config", "packaged_config", "packaged_configs", "parse_overrides", "read_yaml",
    "save_config", "signature_config", "to_dict", "to_yaml",
]


class ConfigError(ValueError):
    """A config value, key, file or spec is wrong; the message says where and what would fit."""


# --------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float.

    YAML 1.1 (PyYAML) only reads a float with a dot (``1.0e-3``), so ``lr: 3e-4`` would arrive as
    the string ``"3e-4"``; configs write learning rates that way all the time.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def read_yaml(path: str | os.PathLike, _seen: frozenset | None = None) -> dict:
    """Read a YAML config file into a plain dict, without any checking against a dataclass.

    The CLI uses this to read the top-level ``recipe`` key before it knows which config class
    applies. An empty file gives ``{}``. A top-level ``base: other.yaml`` (relative to this file)
    reads that file first and deep-merges this one over it, so a ``debug`` variant states only
    what it changes; ``base`` may also name a packaged config (``base: uhn/digits_mlp``), so a
    config copied out of the package, or written from scratch, builds on the packaged ones.

    Args:
        path: the YAML file.

    Raises:
        ConfigError: if the file is missing, is not valid YAML, or its top level is not a mapping.

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
        >>> _ = file.write_text("recipe: uhn\\ntrain: {lr: 3e-4}\\n")
        >>> read_yaml(file)
        {'recipe': 'uhn', 'train': {'lr': 0.0003}}
    """
    path = Path(path)
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {where} (resolved to {path.resolve()}); pass the path "
                          "of a YAML file, or a packaged config name such as uhn/digits_mlp-debug (`hyperkit ls`)")
    try:
        data = _load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got "
                          f"{type(data).__name__}; write `key: value` lines")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be the path of another YAML file, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file() and packaged_config(base) is not None:
        base_path = packaged_config(base)
    elif not base_path.is_file():
        same_file = [n for n in packaged_configs() if n.split("/")[-1] == Path(base).stem]
        hint = (f"packaged configs of that file name: {', '.join(same_file)}; write e.g. base: {same_file[-1]}"
                if same_file else f"name a YAML file relative to this one or a packaged config such as "
                                  f"uhn/digits_mlp{_did_you_mean(base, packaged_configs())} (`hyperkit ls`)")
        raise ConfigError(f"{path}: 'base: {base}' is neither a file ({base_path.resolve()} does not exist) "
                          f"nor a packaged config; {hint}. `hyperkit cp CONFIG FILE` writes a copy that "
                          "needs no base")
    if _seen and base_path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base: {base}' makes a cycle of base files")
    return _merge(read_yaml(base_path, _seen=(_seen or frozenset()) | {path.resolve()}), data)


def _packaged_folder() -> Path | None:
    # The folder of hyperkit.recipes' YAML files, found without importing the recipes (and torch).
    spec = importlib.util.find_spec("hyperkit.recipes")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) / "configs" if locations else None


def packaged_configs(recipe: str | None = None) -> list[str]:
    """Names of the configs that ship with hyperkit (``<recipe>/<variant>``), of one recipe or all.

    Example:
        >>> "uhn/digits_mlp" in packaged_configs()
        True
    """
    folder = _packaged_folder()
    if folder is None or not folder.is_dir():
        return []
    folders = [folder / recipe] if recipe else sorted(p for p in folder.iterdir() if p.is_dir())
    return [f"{f.name}/{path.stem}" for f in folders for path in sorted(f.glob("*.yaml"))]


def packaged_config(name: str | os.PathLike) -> Path | None:
    """The YAML file of the packaged config ``name`` (``uhn/digits_mlp``), or ``None``."""
    folder = _packaged_folder()
    text = str(name)
    if folder is None or ".." in Path(text).parts:
        return None
    path = folder / (text if text.endswith((".yaml", ".yml")) else f"{text}.yaml")
    return path if path.is_file() else None


def copy_config(source: str | os.PathLike, dest: str | os.PathLike, name: str | None = None,
                force: bool = False) -> Path:
    """Write a self-contained copy of a config to edit (``hyperkit cp``): its ``base:`` chain is
    resolved into one file, so the copy works from any folder.

    The copy keeps the comment lines that open ``source`` (what the config is for, the command that
    runs it) and names where it came from.

    Args:
        source: the YAML file to copy (a packaged config's file: :func:`packaged_config`).
        dest: the file to write, or an existing folder (the copy then takes ``source``'s file name).
        name: how the source is named in the copy's header (a packaged name). Default: its path.
        force: overwrite an existing ``dest`` file. Default: refuse.

    Raises:
        FileExistsError: ``dest`` exists and ``force`` is off.

    Example:
        >>> import tempfile
        >>> copy = copy_config(packaged_config("uhn/digits_mlp-debug"), tempfile.mkdtemp())
        >>> "base" in read_yaml(copy), read_yaml(copy)["recipe"]
        (False, 'uhn')
    """
    source, dest = Path(source), Path(dest)
    if dest.is_dir():
        dest = dest / source.name
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} exists; pass --force (force=True) to overwrite it, or name another file")
    data = read_yaml(source)
    opening = list(itertools.takewhile(lambda line: line.startswith("#"), source.read_text().splitlines()))
    if name:  # the packaged config's own command now runs the copy
        opening = [line.replace(f"hyperkit run {name}", f"hyperkit run {dest}") for line in opening]
    text = "\n".join(opening + [f"# copied from {name or source} by `hyperkit cp` (its base: chain resolved)",
                                 yaml.safe_dump(data, sort_keys=False, default_flow_style=False)])
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest


# --------------------------------------------------------------------------------------------
# dict → dataclass


def from_dict(cls: type[T], data: Mapping, source: str = "<dict>") -> T:
    """Build the (nested) dataclass ``cls`` from plain data, checking every value's type.

    Supported annotations: ``int`` (a bool is not an int), ``float`` (an int is accepted and
    converted), ``str``, ``bool``, ``Literal[...]``, ``Optional[X]`` / ``X | None``, ``list[X]``,
    ``tuple[X, ...]`` / ``tuple[X, Y]`` (a YAML list becomes a tuple), ``dict`` / ``dict[K, V]``,
    ``Any`` and nested dataclasses. String annotations (``from __future__ import annotations``) are
    resolved with :func:`typing.get_type_hints`. Missing keys take the dataclass defaults.

    Args:
        cls: the dataclass type to build.
        data: a mapping from field names to values (nested mappings for nested dataclasses).
        source: where ``data`` came from (a file path), named in error messages.
            Default: ``"<dict>"``.

    Raises:
        ConfigError: on an unknown key (with a "did you mean" and the valid keys), a missing
            required key, or a value of the wrong type (with the expected and the given type).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Data:
        ...     name: str = "digits"
        ...     batch_size: int = 64
        >>> from_dict(Data, {"batch_size": 32})
        Data(name='digits', batch_size=32)
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}; decorate it with "
                        "@dataclasses.dataclass")
    return _build_dataclass(cls, data, "", source)


def _field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of the init fields of dataclass ``cls``, in declaration order."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:
        raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}; define "
                        "config dataclasses at module level so string annotations resolve") from exc
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _build_dataclass(cls: type[T], data: Any, prefix: str, source: str) -> T:
    if not isinstance(data, Mapping):
        what = f"'{prefix}'" if prefix else "the config"
        raise ConfigError(f"{source}: {what} must be a mapping of keys for {cls.__name__}, got "
                          f"{_describe_value(data)}")
    types_by_name = _field_types(cls)
    for key in data:
        if key not in types_by_name:
            raise _unknown_key_error(key, list(types_by_name), prefix, source)
    _check_required(cls, data, prefix, source)
    kwargs = {key: _convert(value, types_by_name[key], _join(prefix, key), source)
              for key, value in data.items()}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:  # raised by a __post_init__ check
        what = f"'{prefix}'" if prefix else cls.__name__
        raise ConfigError(f"{source}: invalid {what}: {exc}") from exc
    try:
        check_values(obj, prefix)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return obj


def _check_required(cls: type, data: Mapping, prefix: str, source: str) -> None:
    for f in dataclasses.fields(cls):
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.init and no_default and f.name not in data:
            raise ConfigError(f"{source}: missing required key '{_join(prefix, f.name)}' "
                              f"({cls.__name__} has no default for it); add it to the config")


_SCALARS = (int, float, str, bool, type(None))


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against annotation ``tp`` and return it in the annotated form."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else _build_dataclass(tp, value, key, source)
    if origin is Literal:
        return _check_literal(value, typing.get_args(tp), key, source)
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, tp, key, source)
    if tp in (list, tuple, dict) or origin in (list, tuple, dict, Mapping, Sequence):
        return _convert_container(value, tp, key, source)
    if tp in _SCALARS:
        return _convert_scalar(value, tp, key, source)
    raise TypeError(f"config field '{key}' has unsupported annotation {_describe_type(tp)}; use "
                    "int, float, str, bool, Literal, Optional, list, tuple, dict or a dataclass")


def _convert_scalar(value: Any, tp: type, key: str, source: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # YAML reads `lr: 1` as an int; any int is a valid float
    if tp is int and isinstance(value, bool):
        raise _type_error(value, tp, key, source)  # bool subclasses int, but true is not 1 here
    if value is None if tp is type(None) else isinstance(value, tp):
        return value
    hint = ""
    if tp is str and isinstance(value, (int, float, bool)):
        hint = f"; quote it (\"{value}\") if you meant the text"
    raise _type_error(value, tp, key, source, hint)


def _check_literal(value: Any, choices: tuple, key: str, source: str) -> Any:
    # Compare types too: `True == 1`, but `1` is not a valid choice for Literal[True].
    if any(type(value) is type(choice) and value == choice for choice in choices):
        return value
    listed = ", ".join(repr(choice) for choice in choices)
    hint = _did_you_mean(value, [c for c in choices if isinstance(c, str)]) \
        if isinstance(value, str) else ""
    raise ConfigError(f"{source}: '{key}' must be one of {listed}; got {value!r}{hint}")


def _convert_union(value: Any, tp: Any, key: str, source: str) -> Any:
    arms = typing.get_args(tp)
    if value is None and type(None) in arms:
        return None
    others = [arm for arm in arms if arm is not type(None)]
    if len(others) == 1 and others[0] not in _SCALARS:
        # Optional[section]: the section's own error (e.g. a nested unknown key) is clearer.
        return _convert(value, others[0], key, source)
    for arm in others:
        try:
            return _convert(value, arm, key, source)
        except ConfigError:
            continue
    raise _type_error(value, tp, key, source)


def _convert_container(value: Any, tp: Any, key: str, source: str) -> Any:
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _type_error(value, tp, key, source)
        if not args:  # free-form, e.g. kwargs for a builder: copied so the config owns its data
            return copy.deepcopy(dict(value))
        return {_convert(k, args[0], f"{key} (key {k!r})", source):
                _convert(v, args[1], _join(key, str(k)), source) for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise _type_error(value, tp, key, source)
    items = _convert_items(value, tp, key, source)
    return tuple(items) if origin is tuple else list(items)


def _convert_items(value: Sequence, tp: Any, key: str, source: str) -> list:
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if not args:
        return copy.deepcopy(list(value))
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ConfigError(f"{source}: '{key}' expects {len(args)} items "
                              f"({_describe_type(tp)}), got {len(value)}: {value!r}")
        pairs = enumerate(zip(value, args, strict=True))
        return [_convert(v, arg, f"{key}[{i}]", source) for i, (v, arg) in pairs]
    return [_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]


# --------------------------------------------------------------------------------------------
# error messages


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _did_you_mean(name: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key_error(key: Any, valid: list[str], prefix: str, source: str) -> ConfigError:
    level = f"under '{prefix}'" if prefix else "at the top level"
    return ConfigError(f"{source}: unknown key '{_join(prefix, str(key))}'"
                       f"{_did_you_mean(key, valid)}; valid keys {level}: {', '.join(valid)}")


def _describe_type(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(choice) for choice in typing.get_args(tp))
    if typing.get_origin(tp) in (Union, types.UnionType):  # Optional[X] and X | None read alike
        return " | ".join(_describe_type(arm) for arm in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "").replace("NoneType", "None")


def _describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _type_error(value: Any, tp: Any, key: str, source: str, hint: str = "") -> ConfigError:
    return ConfigError(f"{source}: '{key}' expects {_describe_type(tp)}, got "
                       f"{_describe_value(value)}{hint}")


# --------------------------------------------------------------------------------------------
# dataclass → dict / YAML


def to_dict(cfg: Any) -> dict:
    """Turn a config dataclass into plain YAML-safe data (nested dicts, lists, scalars).

    Tuples become lists (YAML has no tuple); :func:`from_dict` turns them back for fields annotated
    as tuples, so ``from_dict(type(cfg), to_dict(cfg)) == cfg``. Only ``init`` fields are written,
    since only those can be passed back.

    Args:
        cfg: a dataclass instance.

    Raises:
        ConfigError: if a value (e.g. a tensor in a free-form dict) cannot be written as YAML.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Model:
        ...     hidden: tuple[int, ...] = (64, 64)
        >>> to_dict(Model())
        {'hidden': [64, 64]}
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"to_dict needs a dataclass instance, got {cfg!r}")
    return _to_plain(cfg, "")


def _to_plain(value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name), _join(key, f.name))
                for f in dataclasses.fields(value) if f.init}
    if isinstance(value, Mapping):
        return {k: _to_plain(v, _join(key, str(k))) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"config value '{key}' is a {type(value).__name__}, which YAML cannot "
                      "store; keep configs to numbers, strings, bools, lists and dicts")


def to_yaml(cfg: Any) -> str:
    """The config as YAML text, keys in declaration order (for logs and TensorBoard text).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Train:
        ...     steps: int = 10
        ...     lr: float = 3e-4
        >>> print(to_yaml(Train()), end="")
        steps: 10
        lr: 0.0003
    """
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML, atomically, creating the parent folder if needed.

    The text goes to a temporary file in the same folder and is then renamed over ``path``
    (``os.replace``), so a crash mid-write never leaves a truncated config next to a checkpoint.

    Args:
        cfg: a dataclass instance.
        path: the destination file, e.g. ``runs/uhn/config.yaml``.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Train:
        ...     lr: float = 3e-4
        >>> file = save_config(Train(), pathlib.Path(tempfile.mkdtemp()) / "config.yaml")
        >>> load_config(Train, file)
        Train(lr=0.0003)
    """
    path = Path(path)
    text = to_yaml(cfg)  # before touching the disk: an unserialisable value leaves nothing behind
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a config is as readable as any file
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------------
# overrides and loading


def parse_overrides(items: Iterable[str]) -> dict:
    """Parse ``key=value`` items into a nested dict; values are read as YAML.

    Dotted keys nest (``train.lr=3e-4`` → ``{"train": {"lr": 0.0003}}``); values are parsed with a
    YAML loader, so numbers, bools, ``null`` and lists (``target.hidden=[64,64]``) work. A later
    item wins over an earlier one for the same key.

    Args:
        items: the override strings, e.g. from the command line.

    Raises:
        ConfigError: on an item without ``=``, an empty key part, a value that is not valid YAML,
            or a key that is both a value and a section (``a=1 a.b=2``).

    Example:
        >>> parse_overrides(["train.lr=3e-4", "data.name=mnist", "target.hidden=[64,64]"])
        {'train': {'lr': 0.0003}, 'data': {'name': 'mnist'}, 'target': {'hidden': [64, 64]}}
    """
    if isinstance(items, str):
        raise TypeError(f"parse_overrides takes a list of 'key=value' strings, got the string "
                        f"{items!r}; wrap it in a list")
    result: dict = {}
    for item in items:
        parts, value = _split_override(item)
        _set_nested(result, parts, value, item)
    return result


def _split_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} has no '='; write key=value, e.g. train.lr=3e-4")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r} has an empty key part in {key.strip()!r}; write "
                          "dotted keys like train.lr=3e-4")
    try:
        return parts, _load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({exc}); quote "
                          "strings with special characters") from exc


def _set_nested(target: dict, parts: list[str], value: Any, item: str) -> None:
    for depth, part in enumerate(parts[:-1]):
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r} sets a key inside '{'.'.join(parts[:depth + 1])}'"
                              f", which an earlier override set to {node!r}; drop one of them")
        target = node
    target[parts[-1]] = value


def _check_override_path(cls: type, parts: list[str], item: str) -> None:
    """Check an override's dotted key against the dataclass fields (free-form dicts allow any)."""
    tp: Any = cls
    for depth, part in enumerate(parts):
        tp = _unwrap_optional(tp)
        prefix = ".".join(parts[:depth])
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            types_by_name = _field_types(tp)
            if part not in types_by_name:
                raise _unknown_key_error(part, list(types_by_name), prefix, f"override {item!r}")
            tp = types_by_name[part]
        elif tp is Any or tp in (dict, object) or typing.get_origin(tp) in (dict, Mapping):
            return
        else:
            raise ConfigError(f"override {item!r}: '{prefix}' is a {_describe_type(tp)} value, "
                              f"not a section, so it has no key {part!r}")


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        others = [arm for arm in typing.get_args(tp) if arm is not type(None)]
        if len(others) == 1:
            return others[0]
    return tp


def _merge(base: dict, update: Mapping) -> dict:
    """Deep-merge ``update`` into a copy of ``base``: dicts merge, any other value replaces."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(cls: type[T], path: str | os.PathLike, overrides: Sequence[str] = ()) -> T:
    """Read a YAML config, apply ``key=value`` overrides and build the checked dataclass.

    A top-level ``recipe`` key (which the CLI reads to pick the recipe) is dropped when ``cls`` has
    no ``recipe`` field. Overrides deep-merge into the file's values, so ``target.hidden=[64]``
    keeps the file's other ``target`` keys.

    Args:
        cls: the recipe's config dataclass.
        path: the YAML file.
        overrides: ``key=value`` strings with dotted keys (``train.lr=3e-4``). Default: none.

    Raises:
        ConfigError: if the file is missing or not YAML, an override names an unknown key (with
            the valid choices), or any value fails :func:`from_dict`'s checks.

    Example:
        >>> import tempfile, pathlib
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Train:
        ...     steps: int = 1000
        ...     lr: float = 1e-3
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "train.yaml"
        >>> _ = file.write_text("steps: 10\\n")
        >>> load_config(Train, file, ["lr=3e-4"])
        Train(steps=10, lr=0.0003)
    """
    data = read_yaml(path)
    if "recipe" not in _field_types(cls):
        data.pop("recipe", None)
    update = parse_overrides(overrides)  # first: it rejects a bare string and items without '='
    for item in overrides:
        try:
            _check_override_path(cls, _split_override(item)[0], item)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    source = str(path) if not overrides else f"{path} (with overrides {list(overrides)})"
    return from_dict(cls, _merge(data, update), source=source)


# --------------------------------------------------------------------------------------------
# value checks and configs derived from signatures


@dataclasses.dataclass(frozen=True)
class Check:
    """A declared check of one config value (scikit-learn's ``_parameter_constraints`` habit).

    A config dataclass lists its checks once, in a class attribute ``checks = {field: Check or
    tuple of Checks}``; :func:`from_dict` (so every YAML file, override and export) runs them
    after the types, and :func:`check_values` runs them on a dataclass built by hand. A subclass's
    ``checks`` add to its bases'.

    Args:
        test: ``test(value, config) -> bool``, true for a valid value (``config``: the whole
            dataclass, for checks between fields).
        message: the error after the key, formatted with ``value`` and the config's fields by
            name: ``"must be >= 0, got {value}"``.
    """

    test: Callable[[Any, Any], bool]
    message: str

    def error(self, key: str, value: Any, config: Any) -> str | None:
        if self.test(value, config):
            return None
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        return f"{key} {self.message.format(**{**fields, 'value': value})}"


def at_least(low: float) -> Check:
    """``value >= low``, said as "must be at least ``low``"."""
    return Check(lambda value, _: value >= low, f"must be at least {low}, got {{value}}")


NON_NEGATIVE = Check(lambda value, _: value >= 0, "must be >= 0, got {value}")
POSITIVE = Check(lambda value, _: value > 0, "must be positive, got {value}")


def check_values(config: Any, prefix: str = "") -> None:
    """Run the declared :class:`Check` s of dataclass ``config`` (not of the dataclasses inside it,
    which :func:`from_dict` checks as it builds them).

    Raises:
        ConfigError: naming the first failing key as ``prefix.key``.

    Example:
        >>> @dataclasses.dataclass
        ... class Decay:
        ...     rate: float = 0.0
        ...     checks = {"rate": NON_NEGATIVE}
        >>> check_values(Decay(rate=-1.0), "train")
        Traceback (most recent call last):
        hyperkit.config.ConfigError: train.rate must be >= 0, got -1.0
    """
    declared: dict[str, Any] = {}
    for cls in reversed(type(config).__mro__):
        declared.update(vars(cls).get("checks", {}))
    for name, checks in declared.items():
        for check in checks if isinstance(checks, tuple) else (checks,):
            error = check.error(_join(prefix, name), getattr(config, name), config)
            if error:
                raise ConfigError(error)


def signature_config(name: str, fn: Callable[..., Any], *, skip: Iterable[str] = (),
                     defaults: Mapping[str, Any] | None = None, types: Mapping[str, Any] | None = None,
                     doc: str | None = None, module: str | None = None) -> type:
    """A config dataclass whose fields are ``fn``'s keyword parameters, with their defaults and
    annotations: the callable's signature is the one source of truth of its config section.

    Args:
        name: the class name.
        fn: the callable (a function, or a class's ``__init__``).
        skip: parameters that are not config keys (what the code passes: specs, seed …).
        defaults: this config's own defaults where they differ from ``fn``'s.
        types: annotations to use instead of ``fn``'s (e.g. a ``Literal`` the YAML checks by name).
        doc: the class docstring. module: its ``__module__`` (the defining module, for messages).

    Example:
        >>> def scale(x, factor: float = 2.0, *, bias: float = 0.0): ...
        >>> Scale = signature_config("Scale", scale, skip=["x"], defaults={"bias": 1.0})
        >>> Scale(), from_dict(Scale, {"factor": 3})
        (Scale(factor=2.0, bias=1.0), Scale(factor=3.0, bias=1.0))
    """
    skip, defaults, types = set(skip) | {"self"}, dict(defaults or {}), dict(types or {})
    hints = typing.get_type_hints(fn)
    fields = []
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.name in skip or parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            continue
        default = defaults.pop(parameter.name, parameter.default)
        if default is parameter.empty:
            raise TypeError(f"{name}: parameter {parameter.name!r} of {fn.__qualname__} has no default; "
                            "give one in defaults= or skip it")
        spec = (dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d))
                if isinstance(default, (list, dict, set)) else dataclasses.field(default=default))
        fields.append((parameter.name, types.pop(parameter.name, hints.get(parameter.name, Any)), spec))
    if defaults or types:
        raise TypeError(f"{name}: {sorted({**defaults, **types})} are not parameters of {fn.__qualname__}")
    cls = dataclasses.make_dataclass(name, fields)
    cls.__doc__, cls.__module__ = doc, module or fn.__module__
    return cls


# --------------------------------------------------------------------------------------------
# import paths

def import_path(path: str) -> Any:
    """The object a dotted import path names: ``my_targets.res_mlp``, ``package.module.builder``.

    The longest prefix of ``path`` that is a module is imported — with the working folder on the
    import path, so a user's ``my_targets.py`` beside their config is found — and the rest is read
    as attributes. Importing a module runs its registrations (``@register_target`` …), so the
    names it registers work too from then on. This is the one resolver behind every registry
    (:meth:`hyperkit.registry.Registry.get`).

    Raises:
        LookupError: no module of that path imports, or it lacks the attribute; the message says
            what was tried. An error raised *inside* a module that exists (a typo in the user's
            file, a missing dependency of it) is raised as it is, with its traceback.

    Example:
        >>> import_path("fractions.Fraction")
        <class 'fractions.Fraction'>
        >>> import_path("fractions.Fractoin")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        LookupError: ... module 'fractions' (...) has no attribute 'Fractoin' ...
    """
    folder = os.getcwd()
    if folder not in sys.path and "" not in sys.path:
        sys.path.insert(0, folder)  # as `python -m` does; the console script's path lacks it
    parts, tried = path.split("."), []
    for split in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name == err.name or name.startswith(err.name + ".")):
                raise  # the module exists but something it imports does not
            tried.append(f"no module {name!r}")
            continue
        for depth, attribute in enumerate(parts[split:]):
            if not hasattr(obj, attribute):
                owner = ".".join(parts[:split + depth])
                tried.append(f"module {owner!r} ({getattr(sys.modules.get(owner), '__file__', owner)}) has no "
                             f"attribute {attribute!r}" + _did_you_mean(attribute, [a for a in dir(obj)
                                                                                     if not a.startswith("_")]))
                break
            obj = getattr(obj, attribute)
        else:
            return obj
        break
    raise LookupError(f"{path!r} does not import: {'; '.join(tried) or 'it names no module'} (searched the "
                      f"working folder {folder} and the installed packages)")
