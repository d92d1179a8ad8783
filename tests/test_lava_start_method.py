"""Lava's message infrastructure sets multiprocessing's start method when first imported and fails if
anything fixed it before (a tqdm progress bar, Brian2, numba). Every Lava entry point goes through
:func:`neurocomp.backends.lava.ensure_lava_runtime`; this runs the real sequence in a fresh
interpreter (this test process may have imported Lava already)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import multiprocessing, numpy as np
    from tqdm import tqdm
    bar = tqdm(total=2, disable=False)          # creates a lock: fixes the start method
    bar.update(2); bar.close()
    assert multiprocessing.get_start_method(allow_none=True) is not None
    from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection, RateEncoding
    from neurocomp.backends.lava import run_lava
    from neurocomp.backends.batch_engine import simulate
    net = Network("t", Input("in", 3, RateEncoding()), [Population("out", LoihiLIF(2, 4095, 0, 10, 0, 0))],
                  [Projection("w", "in", "out", LoihiDense(np.array([[200, 0, 0], [0, 200, 200]]), 8, 0, 3))],
                  "out", 4)
    spikes = np.random.default_rng(0).random((2, 4, 3)) < 0.7
    lava, cpu = run_lava(net, spikes), simulate(net, spikes)
    assert np.array_equal(lava.counts["out"], cpu.counts["out"]), (lava.counts, cpu.counts)
    print("LAVA-RAN", lava.counts["out"].sum())
""")


@pytest.mark.slow
def test_lava_runs_after_a_progress_bar_fixed_the_start_method():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LAVA-RAN" in out.stdout
