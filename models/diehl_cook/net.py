"""Diehl & Cook (2015), "Unsupervised learning of digit recognition using STDP", in the nearest form
Loihi's LIF and learning engine run — written in plain Brian2.

* ``inp``: one channel per pixel (8x8 sklearn digits), a SpikeGeneratorGroup: neurocomp replays the
  very same rate-coded spikes in Brian2 and on the target;
* ``exc``: current-based LIF neurons learning the input with pair STDP plus D&C's target pre-trace
  ``xtar`` (each post spike moves a neuron's weights towards the pixels that just fired);
* ``inh``: one inhibitory neuron per excitatory neuron, fired by it, inhibiting all the others
  (lateral inhibition: a soft winner-take-all through Lava's one-step delays);
* ``tonic`` + ``theta``: D&C's adaptive threshold. Lava's LIF threshold is a constant, so theta is
  built from the learning engine instead: a neuron that fires every step inhibits each excitatory
  neuron through a plastic synapse; every spike of that neuron adds ``theta_plus`` to its
  inhibition, every step takes ``theta_decay`` off (homeostasis: frequent winners get harder to fire,
  silent neurons get their chance).

What else changes from the paper, and why: conductance-based synapses become current-based (Loihi's
LIF integrates one current); no refractory period and no weight normalisation (neither exists on the
chip); 8x8 digits, 200 neurons, 800 training digits, so it learns in about two minutes on a CPU.

Why 200 neurons, a slow learning rate and 800 digits: learning is chaotic (one different rounding
and two runs drift apart), so a small, briefly trained network's accuracy is a lottery ticket —
50 neurons after 200 digits land anywhere in 50-65 %, whether Brian2 or the chip learns. More
neurons, smaller steps and a longer run let the competition settle: changing only the chip's rounding
seed, accuracy now varies 62-63 % instead of 55-64 % (across weight-initialisation seeds, ~2.5 pp sd
remains, in Brian2 and on the chip alike).

The learning constants are chosen to land on Lava's learning-rule grid (mantissa 1..7 times a power
of two, in 8-bit weight steps): ``neurocomp compile`` prints each float -> integer fit and its error;
off-grid values are rounded there, which would make the chip learn differently from this script.
"""
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
import numpy as np

# excitatory neurons (current-based LIF)
tau_e = 20 * ms
tau_syn = 2 * ms
v_rest_e = -65 * mV
v_reset_e = -65 * mV
v_thresh_e = -52 * mV
# inhibitory neurons (voltage-only LIF)
tau_i = 10 * ms
v_rest_i = -60 * mV
v_reset_i = -45 * mV
v_thresh_i = -40 * mV
# connections
w_ei = 30 * mV           # exc -> its inhibitory partner: one spike fires it
w_ie = 50 * mV           # inh -> every other exc: lateral inhibition (current jump)
# STDP on input -> exc (weights in mV of synaptic current)
wmax = 4 * mV
w_lo, w_hi = 0.35, 0.65  # initial weights uniform in [w_lo, w_hi] * wmax
taupre = 20 * ms
taupost = 20 * ms
Apre = 0.0147 * mV       # potentiation per pre-before-post pairing
Apost = -0.0025 * mV     # depression per post-before-pre pairing
xtar = 0.0628 * mV       # D&C's target pre-trace: depression per post spike
# adaptive threshold: a tonic neuron (fires every step) and plastic inhibition from it
tau_t = 10 * ms
v_drive_t = 1000 * mV
v_thresh_t = 1 * mV
theta_max = 10 * mV
theta_plus = 0.047 * mV      # more inhibition per excitatory spike
theta_decay = 0.000245 * mV  # less inhibition per step


def build(n_input=64, n_exc=200, seed=0):
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    inp = SpikeGeneratorGroup(n_input, [], [] * ms, name="inp")
    exc = NeuronGroup(n_exc, """dv/dt = (v_rest_e - v + I)/tau_e : volt
                                dI/dt = -I/tau_syn : volt""",
                      threshold="v > v_thresh_e", reset="v = v_reset_e", method="exact", name="exc")
    inh = NeuronGroup(n_exc, "dv/dt = (v_rest_i - v)/tau_i : volt", threshold="v > v_thresh_i",
                      reset="v = v_reset_i", method="exact", name="inh")
    tonic = NeuronGroup(1, "dv/dt = (v_drive_t - v)/tau_t : volt", threshold="v > v_thresh_t",
                        reset="v = 0*mV", method="exact", name="tonic")
    exc.v = v_reset_e
    inh.v = v_reset_i
    stdp = Synapses(inp, exc, """w : volt
                                 dapre/dt = -apre/taupre : volt (event-driven)
                                 dapost/dt = -apost/taupost : volt (event-driven)""",
                    on_pre="""I_post += w
                              apre += Apre
                              w = clip(w + apost, 0*mV, wmax)""",
                    on_post="""apost += Apost
                               w = clip(w + apre - xtar, 0*mV, wmax)""", name="input_exc")
    stdp.connect()
    stdp.w = rng.uniform(w_lo, w_hi, len(stdp)) * wmax
    ei = Synapses(exc, inh, on_pre="v_post += w_ei", name="exc_inh")
    ei.connect(j="i")
    ie = Synapses(inh, exc, on_pre="I_post -= w_ie", name="inh_exc")
    ie.connect(condition="i != j")
    theta = Synapses(tonic, exc, "w : volt", on_pre="""I_post -= w
                                                      w = clip(w - theta_decay, 0*mV, theta_max)""",
                     on_post="w = clip(w + theta_plus, 0*mV, theta_max)", name="theta")
    theta.connect()
    theta.w = 0 * mV
    return [inp, exc, inh, tonic, stdp, ei, ie, theta]
