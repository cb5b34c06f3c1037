"""Spike-time readout shared by the recurrent entries that predict a spike hazard per time bin.

``readout``: peak-picking of a hazard into spike times (s) and its choice on held-out data;
``heldout``: the held-out P of many candidate trains, with each stimulus' R computed once.
Not a plugin itself: it registers no model.
"""
