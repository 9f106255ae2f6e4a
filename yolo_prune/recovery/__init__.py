"""Recovering accuracy on data: calibration, reconstruction, stock fine-tuning, iterative pruning, sensitivity."""
