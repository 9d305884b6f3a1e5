"""The one machine description: what tables, bundle results, ``bench`` and the benchmarks
record about the machine that timed something."""

import os
import platform

import onnxruntime

from mobile_nas.cost.latency.ondemand import MACHINE_FIELDS
from mobile_nas.cost.latency.runner import Machine, cpu_model, this_machine


def test_this_machine_and_its_json():
    m = this_machine()
    assert isinstance(m, Machine)
    assert (m.cpu, m.cpu_count, m.python, m.onnxruntime) == (
        cpu_model(), os.cpu_count(), platform.python_version(), onnxruntime.__version__)
    assert m.os.split()[0] == platform.system() and m.os.split()[-1] == platform.machine()
    assert list(m.to_json()) == ["device", "cpu", "os", "python", "onnxruntime", "cpu_count"]
    assert set(MACHINE_FIELDS) <= set(m.to_json())
    assert m.to_json("os", "cpu") == {"os": m.os, "cpu": m.cpu}
