"""A fake timing backend: sessions whose every run advances a fake nanosecond clock by a
scripted amount, so table builds, the sentinel and calibrations give exact numbers (no real
timing anywhere)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np

from mobile_nas.cost.latency.profiler import TimingBackend
from mobile_nas.cost.latency.settings import ProfileSettings
from mobile_nas.space.layers import LayerKey

MS = 1_000_000  # nanoseconds


def layer_ms(key: LayerKey) -> float:
    """The fake time of one layer: a fixed function of its key (multiples of 0.001 ms)."""
    return round(0.001 * (key.cin + key.cout) + 0.002 * key.kernel, 3)


class FakeMachine:
    """One fake clock shared by every session; ``slow(timing)`` is the factor applied to
    every run during the ``timing``-th interleaved timing of a build (counted by the
    sentinel, which runs ``warmup + rounds * runs_per_round`` times in each timing)."""

    def __init__(self, settings: ProfileSettings, *, sentinel_ms: float = 1.0,
                 slow: Callable[[int], float] = lambda timing: 1.0,
                 layer: Callable[[LayerKey], float] = layer_ms) -> None:
        self.ns = 0
        self.per_timing = settings.warmup + settings.rounds * settings.runs_per_round
        self.slow, self.layer = slow, layer
        self.sentinel = FakeSession(self, sentinel_ms, counts=True)
        self.sentinel_calls = 0
        self.opened: list[str] = []

    def clock(self) -> int:
        return self.ns

    @property
    def timing(self) -> int:
        return max(self.sentinel_calls - 1, 0) // self.per_timing

    def backend(self) -> TimingBackend:
        def layer_session(key: LayerKey, settings: ProfileSettings) -> FakeSession:
            self.opened.append(key.id)
            return FakeSession(self, self.layer(key))

        return TimingBackend(layer_session=layer_session,
                             sentinel_session=lambda settings: self.sentinel,
                             timer=self.clock)


class FakeSession:
    def __init__(self, machine: FakeMachine, ms: float, counts: bool = False) -> None:
        self.machine, self.ms, self.counts = machine, ms, counts

    def get_inputs(self):
        return [SimpleNamespace(name="x", shape=[1, 3, 2, 2], type="tensor(float)")]

    def run(self, outputs, feed):
        m = self.machine
        if self.counts:
            m.sentinel_calls += 1
        m.ns += round(self.ms * m.slow(m.timing) * MS)
        return [np.zeros((1, 1), np.float32)]


def linear_measure(space, table_of: Callable[[], object], *, overhead_ms: float,
                   scale: float, per_layer_ms: float = 0.0,
                   disturb: dict[int, float] | None = None,
                   calls: list | None = None) -> Callable[[Sequence], list[float]]:
    """A fake end-to-end measurement: ``overhead + scale * sum + per_layer * L`` of each
    network's layer entries in ``table_of()`` (the table statistic), times ``disturb[i]`` for
    the i-th network of a call."""

    def measure(archs):
        table = table_of()
        if calls is not None:
            calls.append([a.to_string() for a in archs])
        out = []
        for i, a in enumerate(archs):
            keys = space.runtime_layers(a)
            s = sum(table.entries[k.id].value(table.statistic) for k in keys)
            ms = overhead_ms + scale * s + per_layer_ms * len(keys)
            out.append(ms * (disturb or {}).get(i, 1.0))
        return out

    return measure


def local_table(space, keys, settings: ProfileSettings, *, factor: float = 1.0,
                calibration=None, **metadata):
    """A table "timed on this machine" (its metadata is :func:`~.profiler.table_metadata`
    of ``settings``) whose entries are ``factor`` times the fake machine's times of ``keys``
    (a table built when the machine ran ``factor`` times slower)."""
    from mobile_nas.cost.latency import LatencyTable, LayerLatency
    from mobile_nas.cost.latency.profiler import table_metadata

    n = settings.rounds * settings.runs_per_round
    entries = {k.id: LayerLatency(median_ms=factor * layer_ms(k), iqr_ms=0.0, n=n,
                                  min_ms=factor * layer_ms(k)) for k in keys}
    return LatencyTable(space=space.name, entries=entries, calibration=calibration,
                        metadata=table_metadata(settings, source="test", **metadata))


class FakeClock:
    """A nanosecond clock that :class:`FakeNet` runs advance; ``drift(repeat)`` scales all
    runs of the ``repeat``-th block of ``per_repeat`` runs (one interleaved timing of
    :func:`~mobile_nas.cost.latency.relative.time_against_reference`: the machine speeding
    up and slowing down between repeats)."""

    def __init__(self, per_repeat: int = 1, drift: Callable[[int], float] = lambda r: 1.0
                 ) -> None:
        self.ns, self.runs, self.per_repeat, self.drift = 0, 0, per_repeat, drift

    def __call__(self) -> int:
        return self.ns


class FakeNet:
    """A whole network on a :class:`FakeClock`: every run takes ``ms`` (times the clock's
    drift and its own ``jitter(repeat)``)."""

    def __init__(self, clock: FakeClock, ms: float,
                 jitter: Callable[[int], float] = lambda r: 1.0) -> None:
        self.clock, self.ms, self.jitter = clock, ms, jitter

    def get_inputs(self):
        return [SimpleNamespace(name="x", shape=[1, 1, 2, 2], type="tensor(float)")]

    def run(self, outputs, feed):
        c = self.clock
        repeat = c.runs // c.per_repeat
        c.runs += 1
        c.ns += round(self.ms * c.drift(repeat) * self.jitter(repeat) * MS)
        return [np.zeros(1, np.float32)]


def distinct_archs(space, n: int, seed: int) -> list:
    """``n`` distinct random architectures of ``space`` (seeded)."""
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {}
    while len(out) < n:
        a = space.sample(rng)
        out.setdefault(a.to_string(), a)
    return list(out.values())
