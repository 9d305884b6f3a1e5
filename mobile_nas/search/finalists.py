"""Measured finalists: a search ends by timing its best candidates against a reference on the
machine at hand and names the most accurate one that measures within the target (DESIGN.md,
"Latency that holds").

The finalists are the ``top_k`` distinct architectures of the trials feasible by prediction,
by reward (:func:`finalist_records`). They are timed interleaved with the reference in
separate repeats (:func:`~mobile_nas.cost.latency.relative.time_against_reference`) and
chosen by :func:`~mobile_nas.cost.latency.relative.select_finalist`: the most accurate whose
measured ratio to the reference is within the target by more than the run's noise.

The reference is the target's (``0.9xfmnist28_mnasnet``); a millisecond target is read as a
factor of the space's first reference architecture (``target_ms`` / its predicted ms).
Finalists are timed on the machine at hand, with the table's protocol (threads, provider,
graph optimization, opset, precision) or as the search measured (:func:`timing_protocol`):
a ratio measured here holds here, whichever machine built the table (:func:`machine_note`
says so when they differ). They are not timed for a table imported from a device bundle (a
phone's latency is not this machine's) or a custom latency function: :func:`verify_search`
says why.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.ondemand import machine_mismatches, table_profile_settings
from mobile_nas.cost.latency.probe import DEFAULT_PROBE_SEED, probe_reference
from mobile_nas.cost.latency.relative import (
    FinalistChoice,
    FinalistRow,
    RelativeTiming,
    ResolvedTarget,
    reference_for_target_ms,
    select_finalist,
    time_against_reference,
)
from mobile_nas.cost.latency.settings import ProfileSettings
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.space.architecture import Architecture

#: Times candidates against a reference with a protocol (threads, provider, ...).
FinalistTimer = Callable[[Sequence[Architecture], Architecture, ProfileSettings],
                         RelativeTiming]


def time_finalists(candidates: Sequence[Architecture], reference: Architecture,
                   settings: ProfileSettings) -> RelativeTiming:
    """The default :data:`FinalistTimer`: onnxruntime with the threads, provider, graph
    optimization, opset and precision of ``settings`` (a table's protocol), wall clock."""
    return time_against_reference(candidates, reference, threads=settings.threads,
                                  provider=settings.provider, opt_level=settings.opt_level,
                                  precision=settings.precision, opset=settings.opset)


@dataclass(frozen=True)
class Verification:
    """What timing the finalists found, or why they were not timed (``skipped``).

    ``target``: the reference and the target factor the finalists were held to; ``timing``:
    the interleaved timing; ``choice``: the verdicts and the pick (``choice.chosen`` None
    when no finalist measured within the target: the search keeps its predicted best).
    """

    target: ResolvedTarget | None = None
    timing: RelativeTiming | None = None
    choice: FinalistChoice | None = None
    skipped: str | None = None
    #: the rounds before the last (``timing``/``choice``), none of whose finalists measured
    #: within the target (:func:`verify_finalists`)
    earlier: tuple[tuple[RelativeTiming, FinalistChoice], ...] = ()

    @property
    def chosen_arch(self) -> str | None:
        """The arch string of the pick, None if none (or not timed)."""
        return self.choice.chosen.arch if self.choice and self.choice.chosen else None

    def summary(self) -> str:
        """One line: the pick, that none measured within the target, or why not timed."""
        if self.choice is None:
            return f"finalists not timed: {self.skipped}"
        rounds = f" (round {len(self.earlier) + 1})" if self.earlier else ""
        if self.choice.chosen is None:
            return (f"{self.choice.summary()}{rounds}, {self.timed} timed in all; "
                    f"keeping the predicted best")
        return f"{self.choice.summary()}{rounds}"

    @property
    def timed(self) -> int:
        """How many finalists were timed, over all rounds."""
        return sum(len(c.verdicts) for _, c in self.earlier) + (
            len(self.choice.verdicts) if self.choice else 0)

    def to_json(self) -> dict[str, Any]:
        """The ``verified`` block of best.json."""
        if self.choice is None or self.target is None or self.timing is None:
            return {"skipped": self.skipped}
        t, timing = self.target, self.timing
        candidates = [{**v.to_json(), "ratios": list(c.ratios)}
                      for v, c in zip(self.choice.verdicts, timing.candidates, strict=True)]
        return {"reference": t.reference_name, "reference_arch": str(t.reference_arch),
                "target_factor": t.factor, "target_ms": t.target_ms,
                "reference_predicted_ms": t.reference_predicted_ms,
                "reference_ms_for_ratios": t.reference_ms,
                "reference_ms": list(timing.reference_ms), "candidates": candidates,
                "noise_pct": timing.noise_pct,
                "load_avg": list(timing.load_avg) if timing.load_avg else None,
                "chosen": self.chosen_arch, "summary": self.summary(),
                "earlier_rounds": [
                    {"candidates": [{**v.to_json(), "ratios": list(c.ratios)}
                                    for v, c in zip(ch.verdicts, tm.candidates, strict=True)],
                     "reference_ms": list(tm.reference_ms), "noise_pct": tm.noise_pct,
                     "load_avg": list(tm.load_avg) if tm.load_avg else None,
                     "summary": ch.summary()} for tm, ch in self.earlier],
                "protocol": {k: v for k, v in timing.to_json().items()
                             if k not in ("reference", "reference_ms", "candidates",
                                          "noise_pct", "load_avg")}}


def finalist_records(records: Sequence[dict[str, Any]], top_k: int) -> list[dict[str, Any]]:
    """The ``top_k`` distinct architectures among the feasible trial records (those a
    search writes to trials.csv), by reward (ties: the earlier trial); one record each, its
    best."""
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        if not r["feasible"]:
            continue
        have = best.get(r["arch"])
        if have is None or r["reward"] > have["reward"]:
            best[r["arch"]] = r
    ranked = sorted(best.values(), key=lambda r: (-r["reward"], r["number"]))
    return ranked[:top_k]


def source_words(latency_source: str) -> str:
    """Where a search's latency comes from, in words (``table:PATH`` → ``PATH``)."""
    if latency_source.startswith("table:"):
        return latency_source.removeprefix("table:")
    if latency_source.startswith("measured:"):
        return "this machine (measured)"
    return "a custom latency function"


def timing_protocol(latency_source: str, *, precision: str = "fp32"
                    ) -> tuple[ProfileSettings | None, str | None]:
    """``(settings, None)`` when finalists can be timed on this machine as the search's
    latency was (``latency_source``: ``table:PATH``, ``measured:...`` or another source, as
    :class:`~mobile_nas.search.costs.CostModel` names it); ``(None, why not)`` otherwise."""
    if latency_source.startswith("measured:"):
        return ProfileSettings(precision=precision), None
    if not latency_source.startswith("table:"):
        return None, ("latency comes from a custom function, not a latency table of this "
                      "machine")
    path = source_words(latency_source)
    try:
        table = LatencyTable.load(path)
        if table.metadata.get("source") == "mobile-nas lut import":
            return None, (f"latency table {path!r} was measured on another device (imported "
                          f"from a bundle); time the finalists there with a bundle of their "
                          f"networks (lut bundle --space {table.space} --arch ARCH)")
        return table_profile_settings(table), None
    except LatencyTableError as exc:
        return None, f"latency table {path!r}: {exc}"


def machine_note(latency_source: str) -> str | None:
    """One line when the finalists are timed on another machine than the one that built the
    table: the ratio measured here is what holds here (None when it is the same machine)."""
    if not latency_source.startswith("table:"):
        return None
    try:
        bad = machine_mismatches(LatencyTable.load(source_words(latency_source)))
    except LatencyTableError:
        return None
    if not bad:
        return None
    diff = ", ".join(f"{f} {h!r} (here {n!r})" for f, h, n in bad)
    return (f"finalists timed on this machine, not the one that built the table ({diff}): "
            f"their measured ratios hold here")


#: Rounds of finalists a search times at most (see :func:`verify_finalists`).
FINALIST_ROUNDS = 3


def verify_finalists(records: Sequence[dict[str, Any]], *, top_k: int,
                     target: ResolvedTarget, settings: ProfileSettings,
                     timer: FinalistTimer = time_finalists,
                     report: Callable[[str], None] | None = None,
                     rounds: int = FINALIST_ROUNDS) -> Verification:
    """Times the :func:`finalist_records` against ``target``'s reference with ``settings``
    and chooses among them (:func:`~mobile_nas.cost.latency.relative.select_finalist`;
    predicted ratios are the records' ``latency_ms`` over the reference's ms: probed where
    the target was, else predicted).

    When none of a round measures within the target, up to ``rounds`` rounds in all time the
    next best feasible candidates by reward that are still within the target once their
    predicted ratios are multiplied by the median measured / predicted ratio of every
    finalist timed so far (where that is above 1: the table was optimistic about the very
    networks the search prefers); a round with no such candidate ends it."""
    ranked = finalist_records(records, len(records))
    if not ranked:
        return Verification(target=target, skipped="no trial was feasible by prediction")
    space = target.reference_arch.space
    done: list[tuple[RelativeTiming, FinalistChoice]] = []
    timed: set[str] = set()
    errors: list[float] = []
    for round_ in range(max(1, rounds)):
        correction = max(1.0, statistics.median(errors)) if errors else 1.0
        batch = [r for r in ranked if r["arch"] not in timed and (
            round_ == 0 or float(r["latency_ms"]) / target.reference_ms * correction
            <= target.factor)][:top_k]
        if not batch:
            break
        archs = [Architecture.from_string(r["arch"], space) for r in batch]
        if report is not None:
            which = f"the best {len(archs)}" if round_ == 0 else (
                f"round {round_ + 1}, the next {len(archs)} best that meet the target at "
                f"x{correction:.3f} their prediction,")
            report(f"finalists: timing {which} against {target.reference_name}, interleaved "
                   f"({settings.threads} thread(s), {settings.provider}, "
                   f"{settings.precision})")
        timing = timer(archs, target.reference_arch, settings)
        rows = [FinalistRow(arch=r["arch"], accuracy=float(r["accuracy"]),
                            predicted_ratio=float(r["latency_ms"]) / target.reference_ms,
                            measured_ratio=c.ratio, measured_ms=c.median_ms)
                for r, c in zip(batch, timing.candidates, strict=True)]
        choice = select_finalist(rows, target.factor, timing.noise_pct)
        done.append((timing, choice))
        timed.update(r["arch"] for r in batch)
        errors += [row.measured_ratio / row.predicted_ratio for row in rows]
        if choice.chosen is not None:
            break
        if report is not None and round_ + 1 < rounds:
            report(choice.summary())
    last_timing, last_choice = done[-1]
    return Verification(target=target, timing=last_timing, choice=last_choice,
                        earlier=tuple(done[:-1]))


def probe_search_reference(target: ResolvedTarget, *, latency_source: str,
                           predict_ms: Callable[[Architecture], float], k: int,
                           seed: int = DEFAULT_PROBE_SEED, precision: str = "fp32",
                           timer: FinalistTimer | None = None,
                           report: Callable[[str], None] | None = None
                           ) -> tuple[ResolvedTarget, str | None]:
    """``target`` with its reference probed (:mod:`mobile_nas.cost.latency.probe`) by ``k``
    networks timed here with the finalists' protocol and timer, and None; or ``target``
    unchanged and why it was not probed (a table of another device, a custom latency)."""
    settings, why = timing_protocol(latency_source, precision=precision)
    if settings is None:
        return target, why
    run = timer or time_finalists
    if report is not None:
        report(f"probing {target.reference_name} with {k} networks timed interleaved with it "
               f"({settings.threads} thread(s), {settings.provider}, {settings.precision})")
    probe = probe_reference(target.reference_arch, predict_ms,
                            lambda probes, ref: run(probes, ref, settings), k=k, seed=seed)
    return target.with_probe(probe), None


def verify_search(records: Sequence[dict[str, Any]], *, top_k: int, space_name: str,
                  latency_source: str, predict_ms: Callable[[Architecture], float],
                  target: ResolvedTarget | None = None, target_ms: float | None = None,
                  precision: str = "fp32", timer: FinalistTimer | None = None,
                  report: Callable[[str], None] | None = None) -> Verification | None:
    """The finalist step of a search: None without a latency target (``target`` or
    ``target_ms``); a skipped :class:`Verification` where the finalists cannot be timed
    here (:func:`timing_protocol`) or the space has no reference for a millisecond target;
    else :func:`verify_finalists`."""
    if target is None and target_ms is None:
        return None
    settings, why = timing_protocol(latency_source, precision=precision)
    if settings is None:
        return Verification(target=target, skipped=why)
    note = machine_note(latency_source)
    if note and report is not None:
        report(note)
    if target is None and target_ms is not None:
        target = reference_for_target_ms(target_ms, space_name, predict_ms)
    if target is None:
        return Verification(skipped=f"space {space_name!r} has no reference architecture to "
                                    f"time the finalists against")
    return verify_finalists(records, top_k=top_k, target=target, settings=settings,
                            timer=timer or time_finalists, report=report)
