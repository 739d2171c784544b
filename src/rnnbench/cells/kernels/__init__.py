"""The fused C++ kernels of the LSTM family, the GRU, the MUT cells and the gated-feedback stacks (CPU,
float32/float64), their autograd bindings, and how they are built once per machine (``native``)."""
