"""What the recurrent entries (gru, dendplrnn) share; not a plugin itself (it registers no model)."""
