"""Cells: one recurrent step each; `keras_rnnx.RNN` runs them over time."""
