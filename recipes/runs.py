"""Results out of a run: the trained module, its config and the networks it generated.

:func:`load_run` rebuilds a run folder's trained module from its ``config.yaml`` and a checkpoint
(the moving average when the run used ``train.ema_decay``) and asks the recipe for the
standalone networks it yields (:meth:`~hyperkit.engine.trainer.Recipe.targets`).
:func:`export_run` (``hyperkit export``) writes all of it to one file that
``torch.load(weights_only=True)`` reads — tensors, dicts, lists, numbers and strings, no pickled
classes — and :func:`load_exported` reads it back: a standalone network needs only its target
builder, not the run's data. The user guide is ``docs/results.md``.

This module stands on the recipes' floor (it rebuilds a run through :data:`RECIPES`); the library
reaches it only by name, through ``hyperkit.load_run`` / ``hyperkit.load_exported`` /
``hyperkit.Run`` (the lazy table in ``hyperkit/__init__.py``).

Example:
    >>> import tempfile
    >>> from hyperkit.engine.trainer import train
    >>> from hyperkit.recipes import load_recipe
    >>> out = tempfile.mkdtemp()
    >>> _ = train(load_recipe("uhn/digits_mlp-debug", [f"out={out}", "train.steps=4", "train.warmup_steps=0",
    ...                                                "init.steps=0", "train.progress=false"]))
    >>> run = load_run(out)
    >>> x = torch.randn(5, 1, 8, 8)
    >>> run, torch.allclose(run.targets["target"](x), run.module(x))
    (Run(recipe='uhn', step=4, targets=['target']), True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from hyperkit.config import from_dict, read_yaml, to_dict
from hyperkit.engine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, trained_weights
from hyperkit.engine.trainer import Network, Recipe
from hyperkit.recipes import RECIPES, load_recipe
from hyperkit.registry import create_target

__all__ = ["FORMAT", "VERSION", "Run", "export_run", "find_checkpoint", "load_exported", "load_run", "rebuild"]

# The export file's "format" and "version" keys; a reader refuses a newer version than it knows.
FORMAT, VERSION = "hyperkit.export", 1
CPU = torch.device("cpu")


@dataclass(repr=False)
class Run:
    """A trained run; every module is on CPU in eval mode.

    Args:
        module: the trained module as its recipe builds it (a generator with its target
            templates; for ``direct`` the target itself); ``None`` from :func:`load_exported`
            without ``module=True``.
        config: the recipe's config dataclass.
        targets: the standalone networks by name: ``target`` for ``direct``, ``uhn`` and
            ``recursive``, the task names for ``multi_task``, the member names for
            ``multi_model`` (in the order of the module's ``targets``); none for ``mothernet``.
        recipe: the recipe's name.
        step: the training step the weights are from.
        inputs: per target, how raw data becomes its inputs (:meth:`hyperkit.tasks.Task.input_format`).
    """

    module: nn.Module | None
    config: Any
    targets: dict[str, nn.Module]
    recipe: str
    step: int = 0
    inputs: dict[str, dict] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Run(recipe={self.recipe!r}, step={self.step}, targets={list(self.targets)})"


def load_run(folder: str | Path, checkpoint: str | Path | None = None) -> Run:
    """The trained module, config and standalone networks of a run folder, on CPU in eval mode.

    The recipe is rebuilt from ``folder/config.yaml`` (its ``setup`` loads the run's data, as
    training did) and filled from the checkpoint's module state — the moving average when the
    run used ``train.ema_decay``.

    Args:
        folder: the run folder (the ``out`` of ``hyperkit run``).
        checkpoint: a checkpoint file, or the name of one in ``folder/checkpoints``
            (default: the newest).

    Raises:
        FileNotFoundError: no ``config.yaml``, no checkpoint, or no such checkpoint.
    """
    recipe, module, state, _ = _restore(Path(folder), checkpoint)
    with torch.no_grad():
        networks = recipe.targets(module)
    return _run(module, recipe.config, networks, recipe.name, state["step"])


def export_run(folder: str | Path, path: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Write what a run produced to ``path`` and a readable record of it to ``path.yaml``
    (``hyperkit export``); :func:`load_exported` reads it back.

    The file is one dict that ``torch.load(path, weights_only=True)`` reads: ``format``
    (``"hyperkit.export"``), ``version``, ``recipe``, ``step``, ``source`` (the checkpoint),
    ``ema`` (whether the weights are the moving average), ``config`` (the resolved config),
    ``module`` (the trained module's state dict) and ``targets``: per name ``builder``,
    ``arguments``, ``inputs`` and ``state``, so that ``create_target(builder, **arguments)``
    followed by ``load_state_dict(state)`` gives the network back. The ``.yaml`` record holds
    the same without the tensors. A recipe with a format of its own keeps it: ``mothernet`` writes
    the classifier's model file (:meth:`hyperkit.recipes.mothernet.MotherNetRecipe.export`).

    Args:
        folder: the run folder.
        path: the file to write (parent folders are created).
        checkpoint: as in :func:`load_run` (default: the newest).

    Returns:
        ``path``.
    """
    folder, path = Path(folder), Path(path)
    if path.suffix == ".yaml":
        raise ValueError(f"{path}: the export's record goes to a .yaml file beside it; name the export "
                         f"{path.with_suffix('.pt')}")
    checkpoint = find_checkpoint(folder, checkpoint)
    recipe_class = RECIPES.get(str(read_yaml(folder / "config.yaml").get("recipe")))
    if hasattr(recipe_class, "export"):  # a format of its own (mothernet: the classifier file)
        return Path(recipe_class.export(folder, path, checkpoint))
    recipe, module, state, checkpoint = _restore(folder, checkpoint)
    with torch.no_grad():
        networks = recipe.targets(module)
    record = {"format": FORMAT, "version": VERSION, "recipe": recipe.name, "step": state["step"],
              "source": f"{folder.name}/checkpoints/{checkpoint.name}", "ema": "ema" in state,
              "targets": {name: {"builder": n.builder, "arguments": n.arguments, "inputs": n.inputs}
                          for name, n in networks.items()},
              "config": to_dict(recipe.config)}
    targets = {name: {**record["targets"][name], "state": n.module.state_dict()} for name, n in networks.items()}
    save_checkpoint(path, **{**record, "module": module.state_dict(), "targets": targets})
    # JSON's round trip turns tuples into lists, which YAML's safe dumper can write.
    path.with_suffix(".yaml").write_text(yaml.safe_dump(json.loads(json.dumps(record)), sort_keys=False))
    return path


def load_exported(path: str | Path, module: bool = False) -> Run:
    """The networks of a file written by ``hyperkit export``, on CPU in eval mode.

    The standalone networks are rebuilt from their builders alone (:func:`rebuild`). A
    ``mothernet`` export (a classifier file) gives the MotherNet as ``module``.

    Args:
        path: the exported file; read with ``torch.load(weights_only=True)``.
        module: also rebuild the trained module (the generator); this runs the recipe's
            ``setup``, which loads the run's data as training did.

    Raises:
        ValueError: a file that is not an export, or one from a newer hyperkit.
    """
    path = Path(path)
    state = torch.load(path, map_location=CPU, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return _load_classifier_file(state, path)
    if state["version"] > VERSION:
        raise ValueError(f"{path} is export version {state['version']}; this hyperkit reads up to "
                         f"{VERSION}: update hyperkit")
    recipe_class = RECIPES.get(state["recipe"])
    config = from_dict(recipe_class.config_class, state["config"], source=str(path))
    trained = None
    if module:
        trained = recipe_class(config).setup(CPU)
        trained.load_state_dict(state["module"])
    networks = {name: Network(rebuild(entry), entry["builder"], entry["arguments"], entry["inputs"])
                for name, entry in state["targets"].items()}
    return _run(trained, config, networks, state["recipe"], state["step"])


def rebuild(entry: dict) -> nn.Module:
    """A standalone network from its entry in an export's ``targets``:
    ``create_target(builder, **arguments)``, then ``load_state_dict(state)``; in eval mode."""
    network = create_target(entry["builder"], **entry["arguments"])
    network.load_state_dict(entry["state"])
    return network.eval()


def find_checkpoint(folder: str | Path, checkpoint: str | Path | None = None) -> Path:
    """``checkpoint`` (a path, or a file name in ``folder/checkpoints``), or the run's newest.

    Raises:
        FileNotFoundError: ``folder`` has no ``config.yaml`` or no such checkpoint.
    """
    folder = Path(folder)
    if not (folder / "config.yaml").is_file():
        raise FileNotFoundError(f"{folder} holds no config.yaml: give a run folder (the out= of `hyperkit run`)")
    checkpoints = folder / "checkpoints"
    if checkpoint is None:
        newest = latest_checkpoint(checkpoints)
        if newest is None:
            raise FileNotFoundError(f"no checkpoint in {checkpoints}; a run writes one at its last step and "
                                    "every train.checkpoint_every steps")
        return newest
    path = Path(checkpoint)
    if not path.is_file() and (checkpoints / path).is_file():
        path = checkpoints / path
    if not path.is_file():
        present = sorted(p.name for p in checkpoints.glob("step_*.pt"))
        raise FileNotFoundError(f"no checkpoint {checkpoint}; {checkpoints} holds {', '.join(present) or 'none'}")
    return path


def _restore(folder: Path, checkpoint: str | Path | None) -> tuple[Recipe, nn.Module, dict, Path]:
    """The run's recipe, its module holding the trained weights (CPU, eval mode), the
    checkpoint's contents and its path."""
    path = find_checkpoint(folder, checkpoint)
    recipe = load_recipe(folder / "config.yaml", [f"out={folder}"])
    module = recipe.setup(CPU)
    state = load_checkpoint(path)
    module.load_state_dict(trained_weights(state))
    return recipe, module.eval(), state, path


def _run(module: nn.Module | None, config: Any, networks: dict[str, Network], recipe: str, step: int) -> Run:
    if module is not None:
        module.eval()
    return Run(module, config, {name: n.module.eval() for name, n in networks.items()}, recipe, step,
               {name: n.inputs for name, n in networks.items()})


def _load_classifier_file(state: Any, path: Path) -> Run:
    """A MotherNet file (the export of a ``mothernet`` run, or ``save_pretrained``'s)."""
    if not (isinstance(state, dict) and {"arguments", "model"} <= state.keys()):
        raise ValueError(f"{path} is not a file of `hyperkit export`: it has no 'format': {FORMAT!r} "
                         "and is no MotherNet file either")
    from hyperkit.tabular.classifier import (
        build_model,  # scikit-learn: imported for these files only
    )

    model = build_model(state["arguments"])
    model.load_state_dict(state["model"])
    info = state.get("info", {})
    name = info.get("config", {}).get("recipe", "mothernet")
    config = from_dict(RECIPES.get(name).config_class, info["config"], source=str(path)) if "config" in info else None
    return Run(model.eval(), config, {}, name, info.get("step", 0))
