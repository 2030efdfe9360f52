"""Training: surrogate target models and the two-stage PSIC training."""
