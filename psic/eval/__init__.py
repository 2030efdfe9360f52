"""Evaluation: rate-distortion, privacy (retrieval, attack success) and speed."""
