"""Weight and state files: one way to write them atomically and to read them back safely.

A :class:`WeightFile` describes one kind of file (what it is called in messages, the error it
raises, its ``schema_version`` and ``kind``) and reads and writes it in either format:

* ``torch.save`` data (:meth:`WeightFile.save` / :meth:`WeightFile.load`): a dict of tensors
  and plain containers stamped with ``schema_version`` (and ``kind``), read with
  ``torch.load(weights_only=True)``, so a file that would run code on load is refused. Model
  checkpoints, training states, supernet training files, strategy states before
  safetensors.
* safetensors (:meth:`WeightFile.save_safetensors` / :meth:`WeightFile.load_safetensors`):
  named tensors plus metadata whose values are JSON-encoded, stamped with ``format`` (the
  ``kind``) and ``schema_version``; nothing is unpickled. Shipped supernets, strategy states.

Writes go through :func:`mobile_nas.atomic.atomic_path`. Every failure to read is the kind's
error with one line naming the file: missing, unreadable (corrupt, truncated, another
format), unsafe, of another kind or of another schema version.
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import warnings
import zipfile
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_nas.atomic import atomic_path
from mobile_nas.errors import MobileNasError

if TYPE_CHECKING:  # torch is imported on use: importing the sampler stays light
    import torch

#: In :func:`pack_tensors` output, ``{TENSOR_REF: name}`` stands for the tensor ``name``.
TENSOR_REF = "__tensor__"


@dataclass(frozen=True)
class WeightFile:
    """One kind of weight file. ``what`` names it in messages ("supernet file"); ``error``
    is raised for every unusable file; ``kind``, if set, must match the file's ``kind`` entry
    (torch) or ``format`` metadata (safetensors)."""

    what: str
    error: type[MobileNasError]
    schema_version: int
    kind: str | None = None

    # -- torch.save data ------------------------------------------------------------------
    def save(self, path: str | os.PathLike, data: dict[str, Any]) -> None:
        """Writes ``data`` (tensors and plain containers) with ``torch.save``, atomically,
        stamped with this kind's ``schema_version`` and ``kind``."""
        import torch

        stamp: dict[str, Any] = {"schema_version": self.schema_version}
        if self.kind is not None:
            stamp["kind"] = self.kind
        payload = {**data, **stamp}
        with self._writing(path) as tmp:
            torch.save(payload, tmp)

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Reads ``torch.save`` data with ``weights_only=True`` (on the CPU) and checks its
        kind and schema version."""
        import torch

        path = self._existing(path)
        try:
            # a file object: torch.load would treat a name ending in .safetensors differently
            with warnings.catch_warnings(), open(path, "rb") as fh:
                warnings.simplefilter("ignore")  # torch warns about pickle protocols on stderr
                data = torch.load(fh, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            text = str(exc).lower()
            if "not an allowed global" in text or "unsupported global" in text \
                    or foreign_globals(path):
                raise self.error(f"refusing {str(path)!r}: it contains objects that would run "
                                 f"code on load (only tensors and plain data are allowed)"
                                 ) from None
            raise self._unreadable(path, exc) from None
        except Exception as exc:  # noqa: BLE001  (the unpickler fails on bad bytes in many ways)
            raise self._unreadable(path, exc) from None
        self._check(path, data, data.get("kind") if isinstance(data, dict) else None)
        return data

    # -- safetensors ----------------------------------------------------------------------
    def save_safetensors(self, path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                         metadata: dict[str, Any]) -> None:
        """Writes ``tensors`` (copied to the CPU) and ``metadata`` (each value JSON-encoded,
        plus ``format`` and ``schema_version``) as safetensors, atomically."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
        meta = {**metadata, "format": self.kind, "schema_version": self.schema_version}
        with self._writing(path) as tmp:
            save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in meta.items()})

    def load_safetensors(self, path: str | os.PathLike
                         ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The tensors and the decoded metadata (a value that is not JSON stays a string)
        of a safetensors file; checks its format and schema version."""
        from safetensors import safe_open

        path = self._existing(path)
        try:
            with safe_open(str(path), framework="pt") as fh:
                raw = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:  # noqa: BLE001  (safetensors raises its own error types)
            raise self._unreadable(path, exc) from None
        meta = {k: _json_or_str(v) for k, v in raw.items()}
        self._check(path, meta, meta.get("format"))
        return tensors, meta

    # -- shared ---------------------------------------------------------------------------
    def _writing(self, path: str | os.PathLike) -> AbstractContextManager[Path]:
        path = Path(path)
        if not path.parent.is_dir():
            raise self.error(f"cannot write {self.what} {str(path)!r}: folder "
                             f"{str(path.parent)!r} does not exist")
        return atomic_path(path)

    def _existing(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if not path.is_file():
            raise self.error(f"{self.what} {str(path)!r} does not exist")
        return path

    def _unreadable(self, path: Path, exc: Exception) -> MobileNasError:
        return self.error(f"{str(path)!r} is not a readable {self.what} (corrupt, truncated or "
                          f"another format: {_detail(exc)})")

    def _check(self, path: Path, data: Any, kind: Any) -> None:
        if not isinstance(data, dict) or (self.kind is not None and kind != self.kind):
            raise self.error(f"{str(path)!r} is not a mobile-nas {self.what}")
        if data.get("schema_version") != self.schema_version:
            raise self.error(f"{self.what} {str(path)!r} has schema_version "
                             f"{data.get('schema_version')!r}; this mobile-nas reads "
                             f"{self.schema_version}")


def _detail(exc: Exception) -> str:
    """The first line of a low-level error (its type for pickle errors, whose text suggests
    loading the file unsafely), at most 120 characters."""
    if isinstance(exc, pickle.UnpicklingError) or not str(exc).strip():
        return type(exc).__name__
    line = str(exc).strip().splitlines()[0]
    return line if len(line) <= 120 else line[:117] + "..."


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def foreign_globals(path: str | os.PathLike) -> list[str]:
    """Callables outside torch/collections that a pickle would import; read with
    ``pickletools`` (nothing is executed). Empty when the file is not a readable pickle."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                raw = zf.read(name) if name else b""
        found, strings = [], []
        for op, arg, _ in pickletools.genops(raw):
            if isinstance(arg, str):
                strings.append(arg)
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001  (not a pickle at all: nothing to report)
        return []
    return [g for g in found if not g.startswith(("torch", "collections"))]


def pack_tensors(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Splits plain data with tensor leaves (dicts with str keys, lists, tuples, str, int,
    float, bool, None) into JSON-ready data, where each tensor becomes ``{TENSOR_REF: name}``
    (``name``: its path, like ``policy/cell.weight_ih``), and the tensors by name.
    Raises ``TypeError`` on anything else."""
    import torch

    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, name: str) -> Any:
        if isinstance(x, torch.Tensor):
            if name in tensors:
                raise TypeError(f"two tensors at state path {name!r}")
            tensors[name] = x
            return {TENSOR_REF: name}
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                raise TypeError(f"state keys must be strings (at {name or 'the top'!r}: "
                                f"{sorted(map(repr, x))[:3]})")
            return {k: walk(v, f"{name}/{k}" if name else k) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [walk(v, f"{name}/{i}") for i, v in enumerate(x)]
        if x is None or isinstance(x, str | bool | int | float):
            return x
        raise TypeError(f"state value of type {type(x).__name__} at {name!r} is neither "
                        f"plain data nor a tensor")

    return walk(tree, ""), tensors


def unpack_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack_tensors` (tuples come back as lists). Raises ``KeyError`` for
    a reference to a missing tensor."""
    if isinstance(tree, dict):
        if set(tree) == {TENSOR_REF}:
            return tensors[tree[TENSOR_REF]]
        return {k: unpack_tensors(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack_tensors(v, tensors) for v in tree]
    return tree
