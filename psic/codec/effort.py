"""Encoder effort levels: how many latent-refinement steps an encode spends (torch-free, so
the command line can check ``--effort`` before importing anything heavy)."""

from __future__ import annotations

#: Descent steps per effort level (0: the plain analysis transform, as every release before).
EFFORT_ITERATIONS = (0, 10, 20, 40)
MAX_EFFORT = len(EFFORT_ITERATIONS) - 1


def iterations_for(effort: int) -> int:
    if isinstance(effort, bool) or not isinstance(effort, int) or not 0 <= effort <= MAX_EFFORT:
        raise ValueError(f"effort must be an integer 0..{MAX_EFFORT}, not {effort!r}")
    return EFFORT_ITERATIONS[effort]
