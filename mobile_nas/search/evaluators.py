"""EVALUATORS: the evaluators ``run_search`` builds by name (``SearchConfig.evaluator``), as
STRATEGIES holds the strategies.

A factory takes the search's config, space, run folder and torchrun job (or None), checks
its inputs at once (dataset, supernet file, split) and returns a builder that makes the
evaluator once the study is open (it may train a supernet). ``table`` is registered for
completeness of the names: its accuracies come from a CSV that ``run_search`` is handed as
``evaluator=`` (:func:`mobile_nas.search.table_evaluator.table_search_inputs`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_nas.device import describe_device, resolve_device
from mobile_nas.models.supernet import build_supernet, supernet_families
from mobile_nas.pretrained import pretrained_supernet_path, read_metadata
from mobile_nas.registry import Registry
from mobile_nas.search import presets
from mobile_nas.search.errors import SearchError, SearchSettingError
from mobile_nas.search.evaluator import Evaluator
from mobile_nas.search.proxy_evaluator import ProxyTrainEvaluator
from mobile_nas.search.supernet_evaluator import SupernetEvaluator
from mobile_nas.search.zero_cost import ZeroCostEvaluator
from mobile_nas.space.base import SearchSpace
from mobile_nas.train.data import DATASETS, load_dataset
from mobile_nas.train.supernet import load_supernet, supernet_split, train_supernet

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mobile_nas.search.runner import SearchConfig
    from mobile_nas.train.data import Dataset
    from mobile_nas.train.distributed import Distributed

#: Makes the evaluator once the study is open (messages and training come after every check).
EvaluatorBuilder = Callable[[], Evaluator]
#: (config, space, run folder, torchrun job or None) -> builder; raises SearchError at once.
EvaluatorFactory = Callable[["SearchConfig", SearchSpace, Path, "Distributed | None"],
                           EvaluatorBuilder]

EVALUATORS: Registry[EvaluatorFactory] = Registry("evaluator", SearchError)


def register_evaluator(name: str) -> Callable[[EvaluatorFactory], EvaluatorFactory]:
    """Decorator: registers an evaluator factory under ``name`` (refused twice)."""

    def register(factory: EvaluatorFactory) -> EvaluatorFactory:
        return EVALUATORS.register(name, factory)

    return register


def _device(config: SearchConfig, distributed: Distributed | None) -> torch.device:
    """A bad or absent device fails before any work; rank 0 of a job scores on its own
    GPU. The preset is checked here too (every evaluator reads it)."""
    presets.get_preset(config.preset)
    return distributed.device if distributed is not None else resolve_device(config.device)


def search_dataset(config: SearchConfig, space: SearchSpace) -> Dataset:
    """The dataset a search validates on, at the space's input size."""
    return load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size,
                        seed=config.split_seed, image_shape=space.input_shape)


def _fitting_dataset(config: SearchConfig, space: SearchSpace) -> Dataset:
    """:func:`search_dataset`, refused when its images or classes do not fit the space."""
    dataset = search_dataset(config, space)
    if tuple(dataset.input_shape) != tuple(space.input_shape) or \
            len(dataset.classes) != space.num_classes:
        raise SearchSettingError("dataset", "dataset {value!r} ({shape}, {classes} classes) "
                                 "does not fit space {space!r} ({space_shape}, {space_classes} "
                                 "classes); {others[0]} synflow reads no data and scores any "
                                 "space", value=config.dataset, others=("evaluator",),
                                 shape=dataset.input_shape, classes=len(dataset.classes),
                                 space=space.name, space_shape=space.input_shape,
                                 space_classes=space.num_classes)
    return dataset


def train_fresh_supernet(config: SearchConfig, space: SearchSpace, dataset: Dataset,
                         out_dir: Path, distributed: Distributed | None
                         ) -> tuple[nn.Module, Path]:
    """RUN_DIR/supernet.pt trained (or resumed, or reused) with the preset's settings."""
    supernet = build_supernet(space)
    path = out_dir / "supernet.pt"
    device = distributed.device if distributed is not None else resolve_device(config.device)
    train_config = presets.get_preset(config.preset).supernet_config(space.family)
    train_supernet(supernet, dataset, train_config, checkpoint_path=path,
                   progress=config.progress, device=device, amp=config.amp,
                   distributed=distributed)
    return supernet, path


def shipped_supernet(config: SearchConfig, space: SearchSpace, val_size: int
                     ) -> tuple[nn.Module | None, str]:
    """(the space's pretrained supernet, a line saying so) when this run validates on the
    split it was trained beside (same dataset, split seed and validation size); (None, why)
    otherwise, and then a supernet is trained."""
    path = pretrained_supernet_path(space.name)
    if path is None:
        return None, ""
    meta = read_metadata(path)
    wanted = {"dataset": config.dataset, "split_seed": config.split_seed,
              "val_size": val_size}
    differs = [f"{k} {meta.get(k)!r} (this run: {v!r})" for k, v in wanted.items()
               if meta.get(k) != v]
    if config.data_dir is None and not differs:
        tau = meta.get("fidelity", {}).get("kendall_tau", float("nan"))
        return load_supernet(path, space), (
            f"shipped {path.name} (Kendall tau {tau:.2f} against stand-alone training; "
            f"--train-supernet trains a fresh one)")
    if differs:
        return None, (f"not using the shipped one, it was trained with {', '.join(differs)}; "
                      f"training a fresh one")
    return None, "not using the shipped one with --data-dir; training a fresh one"


@register_evaluator("supernet")
def _supernet(config: SearchConfig, space: SearchSpace, out_dir: Path,
              distributed: Distributed | None) -> EvaluatorBuilder:
    """The weight-sharing supernet (given, shipped for the space, or trained into
    RUN_DIR/supernet.pt, resumed or reused) with batch-norm recalibration."""
    device = _device(config, distributed)
    preset = presets.get_preset(config.preset)
    if space.family not in supernet_families():
        raise SearchSettingError("evaluator", "no weight-sharing supernet for space {space!r}; "
                                 "use {what} proxy or table", value=config.evaluator,
                                 space=space.name)
    dataset = _fitting_dataset(config, space)
    supernet = load_supernet(config.supernet, space) if config.supernet else None
    if config.supernet:
        trained_beside = supernet_split(config.supernet, space)
        if trained_beside is not None and trained_beside != dataset.split:
            raise SearchSettingError(
                "supernet", "supernet {value!r} was trained beside split {trained}; this run "
                "validates on {split}, images it may have trained on (pass the same "
                "{others[0]}/{others[1]}, or {others[2]})", value=config.supernet,
                others=("dataset", "split_seed", "train_supernet"), trained=trained_beside,
                split=dataset.split)
    source, why = str(config.supernet or ""), ""
    if supernet is None and not config.train_supernet:
        supernet, why = shipped_supernet(config, space, len(dataset.val))
        source = "shipped" if supernet is not None else ""

    def build() -> SupernetEvaluator:  # runs once the study is open: messages come after
        nonlocal supernet, source        # every input check
        if config.progress:
            print(f"device: {describe_device(device)} (training and scoring; latency is "
                  f"onnxruntime's)", file=sys.stderr)
            if why:
                print(f"supernet: {why}", file=sys.stderr)
        if supernet is None:
            supernet, path = train_fresh_supernet(config, space, dataset, out_dir,
                                                  distributed)
            source = f"trained: {path}"
            if distributed is not None and distributed.enabled:
                source += f" ({distributed.world_size} processes, {distributed.backend})"
        return SupernetEvaluator(supernet=supernet, dataset=dataset,
                                 calib_batches=preset.calib_batches,
                                 calib_batch_size=preset.calib_batch_size,
                                 val_images=preset.val_images, seed=config.split_seed,
                                 source=source,
                                 device=device)

    return build


@register_evaluator("proxy")
def _proxy(config: SearchConfig, space: SearchSpace, out_dir: Path,
           distributed: Distributed | None) -> EvaluatorBuilder:
    """Each architecture trained alone for the preset's few proxy epochs."""
    device = _device(config, distributed)
    preset = presets.get_preset(config.preset)
    dataset = _fitting_dataset(config, space)
    return lambda: ProxyTrainEvaluator(space=space, dataset=dataset,
                                       epochs=preset.proxy_epochs,
                                       train_images=preset.proxy_train_images,
                                       val_images=preset.val_images,
                                       seed=config.split_seed,
                                       device=str(device), amp=config.amp)


@register_evaluator("naswot")
def _naswot(config: SearchConfig, space: SearchSpace, out_dir: Path,
            distributed: Distributed | None) -> EvaluatorBuilder:
    """NASWOT (Mellor et al. 2021): a zero-cost score of the untrained network on one
    batch."""
    _device(config, distributed)
    dataset = _fitting_dataset(config, space)
    return lambda: ZeroCostEvaluator(space=space, dataset=dataset, proxy="naswot",
                                     seed=config.split_seed)


@register_evaluator("synflow")
def _synflow(config: SearchConfig, space: SearchSpace, out_dir: Path,
             distributed: Distributed | None) -> EvaluatorBuilder:
    """synflow (Tanaka et al. 2020): data-free, so it scores any space and reads no
    dataset (the dataset's name is still checked)."""
    _device(config, distributed)
    if config.dataset not in DATASETS and not config.dataset.startswith("folder:"):
        raise SearchSettingError("dataset", "unknown dataset {value!r}; known: {allowed} "
                                 "({others[0]} synflow reads none of them)",
                                 value=config.dataset, others=("evaluator",),
                                 allowed=f"{', '.join(DATASETS)}, folder:PATH")
    return lambda: ZeroCostEvaluator(space=space, dataset=None, proxy="synflow",
                                     seed=config.split_seed)


@register_evaluator("table")
def _table(config: SearchConfig, space: SearchSpace, out_dir: Path,
           distributed: Distributed | None) -> EvaluatorBuilder:
    """Accuracies looked up in a CSV: the table is handed to ``run_search`` as
    ``evaluator=``, so reaching this factory means it was not."""
    built = ", ".join(n for n in EVALUATORS.names() if n != "table")
    raise SearchError(f"evaluator 'table' needs run_search(..., evaluator=...) (see "
                      f"mobile_nas.search.table_evaluator.table_search_inputs); built in: "
                      f"{built}")
