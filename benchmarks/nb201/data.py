"""The NAS-Bench-201 tables as arrays by NB201 index: accuracy, device latency, MACs.

Data: ``../shared/data/nb201`` (read, never copied; see its SOURCE.md): NAS-Bench-201's
200-epoch test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120 for all 15,625 cells, and
batch-1 latency of every cell on 12 devices (HW-NAS-Bench via HELP; measured on CIFAR-10
inputs). MACs: fvcore counts of the ``nb201`` space's network (3x32x32 input, 10 classes:
the network the latencies were measured on), computed by
:func:`mobile_nas.search.costs.macs_params` (28 distinct values over the space).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _shared import REPO

DEFAULT_DATA = REPO.parent / "shared" / "data" / "nb201"
DATASETS = ("cifar10_test", "cifar100_test", "imagenet16_test")
DATASET_NAMES = {"cifar10_test": "CIFAR-10", "cifar100_test": "CIFAR-100",
                 "imagenet16_test": "ImageNet16-120"}


class Nb201Data:
    """NB201 accuracy (fraction), latency (ms) and MACs as arrays by NB201 index, and a
    :class:`~mobile_nas.search.table_evaluator.TabularBenchmark` per (device, dataset)."""

    def __init__(self, folder: str | Path) -> None:
        from mobile_nas.search.table_evaluator import read_value_csv
        from mobile_nas.space import get_space

        self.folder = Path(folder)
        if not (self.folder / "accuracy.csv").is_file():
            raise FileNotFoundError(f"NAS-Bench-201 data not found in {self.folder} (see "
                                    f"../shared/data/nb201/SOURCE.md)")
        self.space = get_space("nb201")
        texts = (self.folder / "archs.txt").read_text().split()
        self.keys = [self.space.decode(t).to_string() for t in texts]
        self.index_of = {k: i for i, k in enumerate(self.keys)}
        self.devices = sorted(p.stem[len("latency_"):]
                              for p in self.folder.glob("latency_*.csv"))
        self._read = read_value_csv
        self._acc: dict[str, np.ndarray] = {}
        self._lat: dict[str, np.ndarray] = {}
        self._macs: np.ndarray | None = None

    def _array(self, values: dict[str, float]) -> np.ndarray:
        return np.array([values[k] for k in self.keys], dtype=float)

    def accuracy(self, dataset: str) -> np.ndarray:
        if dataset not in self._acc:
            col = self._read(self.folder / "accuracy.csv", self.space, column=dataset)
            acc = self._array(col.values)
            self._acc[dataset] = acc / 100.0 if acc.max() > 1.0 else acc  # NB201: percent
        return self._acc[dataset]

    def latency(self, device: str) -> np.ndarray:
        if device not in self._lat:
            col = self._read(self.folder / f"latency_{device}.csv", self.space,
                             index_to_arch=dict(enumerate(self.keys)))
            self._lat[device] = self._array(col.values)
        return self._lat[device]

    def macs(self) -> np.ndarray:
        if self._macs is None:
            from mobile_nas.search.costs import macs_params

            self._macs = np.array([macs_params(self.space.decode(k))[0] for k in self.keys],
                                  dtype=float)
        return self._macs

    def target_ms(self, setting) -> float:
        """The latency target of a setting (``device``, ``percentile``): that percentile of
        the device's latency over all cells."""
        return float(np.percentile(self.latency(setting.device), setting.percentile))

    def optimum(self, setting) -> tuple[int, float]:
        """The NB201 index and accuracy of the best feasible cell of a setting."""
        acc = np.where(self.latency(setting.device) <= self.target_ms(setting),
                       self.accuracy(setting.dataset), -np.inf)
        i = int(np.argmax(acc))
        return i, float(acc[i])

    def bench(self, setting):
        """The tabular benchmark of a setting's (device, dataset)."""
        return self.benchmark(setting.device, setting.dataset)

    def benchmark(self, device: str, dataset: str):
        """A :class:`~mobile_nas.search.table_evaluator.TabularBenchmark`: ``dataset``'s
        accuracy and ``device``'s latency for every cell."""
        from mobile_nas.search.table_evaluator import TabularBenchmark

        acc, lat = self.accuracy(dataset), self.latency(device)
        return TabularBenchmark(space=self.space,
                                accuracy=dict(zip(self.keys, acc.tolist(), strict=True)),
                                latency_ms=dict(zip(self.keys, lat.tolist(), strict=True)),
                                source=f"{self.folder}: {dataset} + {device}")


def reference_point(data: Nb201Data, device: str, dataset: str) -> tuple[float, float, float]:
    """The fixed hypervolume reference of a (device, dataset): (median accuracy of the table,
    largest latency, largest MACs)."""
    return (float(np.median(data.accuracy(dataset))), float(data.latency(device).max()),
            float(data.macs().max()))
