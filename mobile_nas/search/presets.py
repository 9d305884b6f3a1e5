"""Budgets for the supernet evaluator: ``quick`` (minutes on 2 CPU cores) and ``default``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mobile_nas.registry import Registry
from mobile_nas.search.strategy import StrategyError
from mobile_nas.train.supernet import SupernetTrainConfig


@dataclass(frozen=True)
class Preset:
    """Supernet training settings and how each architecture is scored."""

    name: str
    supernet: SupernetTrainConfig
    calib_batches: int
    calib_batch_size: int
    val_images: int
    val_size: int = 5000  # images held out of the training split for validation
    proxy_epochs: int = 1  # --evaluator proxy: each architecture trained alone
    proxy_train_images: int = 5000
    #: supernet settings that differ by space family (see CELL_SUPERNET)
    family_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def supernet_config(self, family: str) -> SupernetTrainConfig:
        """The supernet training settings for a space of ``family``."""
        return replace(self.supernet, **self.family_overrides.get(family, {}))


#: Cell supernets learn far slower than the mobile one (each step runs a differently wired
#: network): with SGD at lr 0.1 their loss diverged, at 0.01-0.025 and with AdamW 3e-3 they
#: were still at 10-20% accuracy after 100 steps of 64 images, while one fixed path trained
#: the same way reached 74%. They get AdamW and more steps.
CELL_SUPERNET = {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.05}


def _cells(steps: int) -> dict[str, dict[str, Any]]:
    return {family: {**CELL_SUPERNET, "steps": steps} for family in ("nasnet", "nb201")}


#: preset name → :class:`Preset` (``--preset``)
PRESETS: Registry[Preset] = Registry("preset", StrategyError)


def register_preset(preset: Preset) -> Preset:
    """Registers ``preset`` under its name (refuses duplicates)."""
    return PRESETS.register(preset.name, preset)


# ~15k training images seen by the supernet when one is trained (fmnist28 on Fashion-MNIST
# uses the shipped one). Scoring on 2,000 validation images: with 500 the quick supernet
# ranked seed-0 stand-alone accuracy at Kendall tau 0.10 [-0.09, 0.28], with 2,000 at 0.17 (52
# architectures; benchmarks/results/supernet_fidelity.md); the shipped supernet 0.44 with 500
# and 0.475 with 2,000
register_preset(Preset("quick", SupernetTrainConfig(steps=240, batch_size=64, lr=0.1,
                                                    warmup_steps=20),
                       calib_batches=4, calib_batch_size=128, val_images=2000,
                       proxy_epochs=1, proxy_train_images=2000,
                       family_overrides=_cells(800)))
# ~6 epochs of Fashion-MNIST through the supernet (tens of minutes)
register_preset(Preset("default", SupernetTrainConfig(steps=2500, batch_size=128, lr=0.1,
                                                      warmup_steps=100),
                       calib_batches=4, calib_batch_size=128, val_images=2000,
                       proxy_epochs=3, proxy_train_images=10000,
                       family_overrides=_cells(6000)))


def preset_names() -> list[str]:
    """The registered presets (``--preset`` choices), sorted."""
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    """The registered preset ``name``; :class:`StrategyError` names the known ones."""
    return PRESETS.get(name)
