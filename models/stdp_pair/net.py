"""The smallest plastic network: pair-based STDP as Brian2 writes it, on one postsynaptic neuron.

Three input channels feed the neuron through one plastic, all-to-all ``Synapses``:

* channel 0 fires ``LAG`` steps *before* each postsynaptic spike  -> its weight must grow;
* channel 1 fires ``LAG`` steps *after* each postsynaptic spike   -> its weight must shrink;
* channel 2 is the driver: a strong fixed synapse makes the neuron spike the step after it fires
  (its plastic weight also grows: it always precedes the spike by one step).

``neurocomp compile models/stdp_pair/model.yaml --target {cpu,loihi-sim}`` replays these spikes in
Brian2 (float) and on the target (Loihi fixed point, Lava's LearningDense) and reports each weight's
change side by side.
"""
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
import numpy as np

tau_m = 10 * ms          # membrane time constant
v_rest = 0 * mV
v_th = 10 * mV
taupre = 20 * ms         # STDP trace time constants
taupost = 20 * ms
wmax = 4 * mV            # plastic weights live in [0, wmax]
Apre = 0.2 * mV          # potentiation per pre-before-post pairing at zero lag
Apost = -0.2 * mV        # depression per post-before-pre pairing at zero lag
w_drive = 30 * mV        # the driver's fixed weight: one spike crosses threshold
LAG = 3                  # steps between the paired spikes
PERIOD = 40              # steps between pairings


def build(pairings=8, w0=2.0, lag=LAG):
    defaultclock.dt = 1 * ms
    drive_steps = PERIOD * np.arange(1, pairings + 1)
    post_steps = drive_steps + 1                      # the driver's synapse lands one step later
    idx = np.concatenate([np.zeros(pairings), np.ones(pairings), np.full(pairings, 2)]).astype(int)
    steps = np.concatenate([post_steps - lag, post_steps + lag, drive_steps])
    inp = SpikeGeneratorGroup(3, idx, steps * defaultclock.dt, name="inp")
    post = NeuronGroup(1, "dv/dt = (v_rest - v)/tau_m : volt", threshold="v > v_th", reset="v = v_rest",
                       method="exact", name="post")
    post.v = v_rest
    stdp = Synapses(inp, post, """w : volt
                                  dapre/dt = -apre/taupre : volt (event-driven)
                                  dapost/dt = -apost/taupost : volt (event-driven)""",
                    on_pre="""v_post += w
                              apre += Apre
                              w = clip(w + apost, 0*mV, wmax)""",
                    on_post="""apost += Apost
                               w = clip(w + apre, 0*mV, wmax)""", name="stdp")
    stdp.connect()
    stdp.w = w0 * mV
    drive = Synapses(inp, post, "", on_pre="v_post += w_drive", name="drive")
    drive.connect(i=2, j=0)
    return [inp, post, stdp, drive]
