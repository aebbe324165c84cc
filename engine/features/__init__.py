"""Features of the FeatureSpec: the C++ kernels' facade, the NumPy reference, mel, resamplers, DALI."""
