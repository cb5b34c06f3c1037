"""What the recurrent entries (gru, dendplrnn) share; not a plugin itself (it registers no model).

``inputs``: the current and its low-pass filtrates, the networks' input channels;
``readout``: peak-picking of a hazard into spike times (s) and its choice on held-out data;
``heldout``: the held-out P of many candidate trains, with each stimulus' R computed once;
``predictors``: each member or an ensemble of the best members, chosen on held-out P;
``torch_setup``: a seeded, deterministic, single-threaded torch.
"""
