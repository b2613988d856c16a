"""Recipes: one experiment per module, each with YAML configs under ``recipes/configs/<recipe>/``.

A config names its recipe in a top-level ``recipe:`` key. :func:`load_recipe` reads a config —
a file path or a packaged name such as ``uhn/digits_mlp`` — applies ``key=value`` overrides,
checks every value and returns the recipe, ready for :func:`hyperkit.engine.trainer.train`.

Example:
    >>> recipe = load_recipe("uhn/digits_mlp-debug", ["train.steps=5"])
    >>> recipe.name, recipe.config.train.steps
    ('uhn', 5)
    >>> "direct/digits_cnn" in list_configs()
    True
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from hyperkit.config import ConfigError, _did_you_mean, load_config, packaged_config, packaged_configs, read_yaml
from hyperkit.registry import Registry

if TYPE_CHECKING:
    from hyperkit.engine.trainer import Recipe

CONFIG_DIR = Path(__file__).parent / "configs"


def _load_builtin_recipes() -> None:
    # On the first lookup, not at import: `hyperkit ls` reads this package without loading torch.
    # The built-in targets come too: configs name them (target: {name: mlp_digits}).
    import hyperkit.targets  # noqa: F401
    from hyperkit.recipes import adapters, continual, direct, mothernet, multi_model, multi_task, recursive, uhn  # noqa: F401


RECIPES = Registry("recipe", _load_builtin_recipes)


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator: make a :class:`~hyperkit.engine.trainer.Recipe` runnable by its ``name``."""
    RECIPES.register(cls, name=cls.name)
    return cls


def list_configs(recipe: str | None = None) -> list[str]:
    """Packaged config names (``<recipe>/<variant>``), optionally of one recipe."""
    return packaged_configs(recipe)


def recipe_summaries() -> dict[str, str]:
    """``{recipe: the first paragraph of its module's docstring}`` for the packaged recipes, read from
    the source files without importing them (``hyperkit ls`` starts without torch)."""
    summaries = {}
    for folder in sorted(p for p in CONFIG_DIR.iterdir() if p.is_dir()):
        source = Path(__file__).parent / f"{folder.name}.py"
        doc = ast.get_docstring(ast.parse(source.read_text())) if source.is_file() else None
        paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
        summaries[folder.name] = paragraph.split(": ", 1)[-1]
    return summaries


def config_path(name: str | Path) -> Path:
    """The YAML file of a path, or of a packaged config name such as ``uhn/digits_mlp``."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = packaged_config(name)
    if packaged is not None:
        return packaged
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path  # read_yaml says what is wrong with it
    names = list_configs()
    raise ConfigError(f"no config file {str(name)!r} and no packaged config of that name"
                      f"{_did_you_mean(name, names)}; packaged configs: {', '.join(names)} (see `hyperkit ls`)")


def load_recipe(name: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override and check a config, and build its recipe (nothing is loaded or written yet).

    Raises:
        ConfigError: unknown recipe, unknown key, wrong type, invalid value — naming the key and file.
    """
    path = config_path(name)
    recipe_name = read_yaml(path).get("recipe")
    for item in overrides:
        if item.startswith("recipe="):
            recipe_name = item.split("=", 1)[1]
    if not isinstance(recipe_name, str):
        raise ConfigError(f"{path}: missing top-level key 'recipe'; registered recipes: {', '.join(RECIPES.names())}")
    try:
        cls = RECIPES.get(recipe_name)
    except KeyError as err:
        raise ConfigError(f"{path}: {err.args[0]}") from None
    return cls(load_config(cls.config_class, path, list(overrides)))  # checks every value


__all__ = ["CONFIG_DIR", "RECIPES", "config_path", "list_configs", "load_recipe", "recipe_summaries", "register_recipe"]
