"""The neurocomp intermediate representation: a spiking network as plain data.

No torch, Lava or Brian2 objects live here, only numpy arrays and frozen dataclasses, so every
pipeline stage (front ends, passes, backends, energy) can be built and tested alone. One node family
per module (NIR's layout):

* :mod:`~neurocomp.ir.neurons` — float :class:`LIF` and Loihi fixed-point :class:`LoihiLIF`; the adaptive-threshold
  :class:`ATRLIF` / :class:`LoihiATRLIF`;
* :mod:`~neurocomp.ir.synapses` — :class:`Dense` / :class:`LoihiDense`;
* :mod:`~neurocomp.ir.plasticity` — :class:`STDP`, :class:`SupervisedDepression`, :class:`LoihiLearning`;
* :mod:`~neurocomp.ir.encodings` — :class:`RateEncoding`, :class:`LatencyEncoding`, :class:`CurrentEncoding`
  (graded input) and :func:`encode`;
* :mod:`~neurocomp.ir.graph` — :class:`Input`, :class:`Population`, :class:`Projection`, :class:`Network`;
* :mod:`~neurocomp.ir.serialize` — one ``.npz`` per network.

The same node set serves two numeric worlds: float (Lava's float LIF semantics, ``u = u*(1-du) + a``,
``v = v*(1-dv) + u + bias``, spike on ``v > vth``, reset ``v = 0``) and Loihi fixed point (integers
exactly as Lava's bit-accurate process models take them).
"""
from neurocomp.ir.encodings import (CurrentEncoding, Encoding, LatencyEncoding, RateEncoding, encode, is_graded,
                                    rate_probabilities)
from neurocomp.ir.graph import Input, Network, Population, Projection
from neurocomp.ir.neurons import ATRLIF, LIF, LoihiATRLIF, LoihiLIF, Neuron
from neurocomp.ir.plasticity import (LEARNING_DEPENDENCIES, LEARNING_FACTORS, STDP, LoihiLearning, Plasticity,
                                     SupervisedDepression)
from neurocomp.ir.serialize import IR_VERSION, load_network, save_network
from neurocomp.ir.synapses import Dense, LoihiDense, Synapse

__all__ = ["CurrentEncoding", "Encoding", "LatencyEncoding", "RateEncoding", "encode", "is_graded",
           "rate_probabilities", "Input", "Network", "Population", "Projection", "LIF", "LoihiLIF", "ATRLIF", "LoihiATRLIF", "Neuron", "LEARNING_DEPENDENCIES", "LEARNING_FACTORS",
           "STDP", "LoihiLearning", "Plasticity", "SupervisedDepression", "IR_VERSION", "load_network",
           "save_network", "Dense", "LoihiDense", "Synapse"]
