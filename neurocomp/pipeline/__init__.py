"""The pipeline as library calls — one per command, each taking any build through one code path:

* :func:`compile_model` (``neurocomp compile``): import -> calibrate -> quantize -> place -> (learn)
  -> evaluate -> (energy) -> write a build directory;
* :func:`load_build`, :class:`Build`: read one back;
* :func:`run_build` (``run``), :func:`verify_build` (``verify``), :func:`energy_of_build`
  (``energy``), :func:`hardware_in_the_loop` (``hil``).
"""
from neurocomp.pipeline.build import Build, load_build
from neurocomp.pipeline.compile import compile_model
from neurocomp.pipeline.energy import energy_of_build
from neurocomp.pipeline.hil import hardware_in_the_loop
from neurocomp.pipeline.run import run_build
from neurocomp.pipeline.verify import verify_build

__all__ = ["Build", "load_build", "compile_model", "run_build", "verify_build", "energy_of_build",
           "hardware_in_the_loop"]
