"""Zero-cost proxies: scores of an untrained network from one batch, no training.

* **NASWOT** (Mellor et al., ICML 2021, "Neural Architecture Search without Training"): the
  log-determinant of the kernel ``K[i, j] = N - hamming(c_i, c_j)`` between the binary codes
  ``c`` of which rectifier units are active for each image of a batch; networks that separate
  the images of a batch well score high.
* **synflow** (Tanaka et al., NeurIPS 2020; used as a NAS proxy by Abdelfattah et al., ICLR
  2021): with every weight replaced by its absolute value and an all-ones input, the sum over
  parameters of ``|θ · ∂R/∂θ|`` where ``R`` is the sum of the outputs (data-free).

Both are computed on a freshly initialised network in evaluation mode for batch norm
(``synflow``) or training mode (``naswot``, as in the paper), seeded so a score is a function
of the architecture. They cost one forward (and for synflow one backward) pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mobile_nas.models import build_model
from mobile_nas.search.evaluator import Evaluator, EvaluatorError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.train.data import Dataset, batches

#: Activations whose sign pattern is a NASWOT code (the gate is "output > 0").
RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU)
PROXIES = ("naswot", "synflow")


def naswot_score(model: nn.Module, images: torch.Tensor) -> float:
    """Mellor et al.'s log|det K_H| of ``model`` on one batch of ``images``."""
    codes: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        codes.append((output.detach().flatten(1) > 0).float())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, RECTIFIERS)]
    try:
        model.train()
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        raise ValueError("the network has no rectifier units to read codes from")
    c = torch.cat(codes, dim=1).double()
    kernel = c @ c.t() + (1 - c) @ (1 - c).t()  # N_units - hamming distance
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def synflow_score(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Tanaka et al.'s synaptic flow of ``model`` (data-free). Converts ``model`` to float64
    in place (score a fresh copy); its weights keep their signs."""
    model = model.double().eval()
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            signs[name] = torch.sign(p)
            p.abs_()
    model.zero_grad()
    out = model(torch.ones((1, *input_shape), dtype=torch.float64))
    out.sum().backward()
    score = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters()
                if p.grad is not None)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            p.mul_(signs[name])
    return score


class ZeroCostEvaluator(Evaluator):
    """Scores architectures with a zero-cost proxy (``naswot`` or ``synflow``; higher ranks
    higher). ``naswot`` reads ``batch_size`` fixed training images; ``synflow`` none (its
    ``dataset`` may be None: the input is the space's shape)."""

    def __init__(self, *, space: SearchSpace, dataset: Dataset | None, proxy: str = "naswot",
                 batch_size: int = 128, seed: int = 0) -> None:
        super().__init__(space=space)
        if proxy not in PROXIES:
            raise EvaluatorError(f"unknown zero-cost proxy {proxy!r}; known: "
                                 f"{', '.join(PROXIES)}")
        self.proxy, self.seed = proxy, seed
        self.images: torch.Tensor | None = None
        self.input_shape = tuple(space.input_shape)
        if dataset is not None:
            subset = dataset.train.subset(batch_size, seed=seed + 1)
            self.images = next(iter(batches(subset, batch_size, mean=dataset.mean,
                                            std=dataset.std)))[0]
            self.input_shape = tuple(self.images.shape[1:])
        elif proxy == "naswot":
            raise EvaluatorError("naswot scores a batch of images; it needs a dataset")
        self.cache: dict[Architecture, float] = {}

    def evaluate(self, arch: Architecture) -> float:
        if arch not in self.cache:
            with torch.random.fork_rng():  # seed the initialisation, not the caller's stream
                torch.manual_seed(self.seed)
                model = build_model(arch)
            self.cache[arch] = (naswot_score(model, self.images)
                                if self.proxy == "naswot" and self.images is not None
                                else synflow_score(model, self.input_shape))
        return self.cache[arch]

    def describe(self) -> dict[str, Any]:
        return {"name": f"zero-cost:{self.proxy}",
                "batch_size": 0 if self.images is None else len(self.images),
                "seed": self.seed}
