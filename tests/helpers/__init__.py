"""What the tests share: the Keras oracle, backend helpers, the layer contract,
custom cells and saved models."""
