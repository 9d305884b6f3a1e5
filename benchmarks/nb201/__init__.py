"""NAS-Bench-201 benchmarks' shared code: the tables (:mod:`.data`), the protocol and one
run (:mod:`.protocol`), the raw run store (:mod:`.store`), per-run metrics (:mod:`.metrics`),
statistics (:mod:`.statistics`) and the protocol's report (:mod:`.report`). The commands
are ``benchmarks/nb201_protocol.py`` and ``benchmarks/nb201_hand_design.py``."""
