"""Layers: the time loop (`RNN`), the built-in recurrent layers, Bidirectional."""
