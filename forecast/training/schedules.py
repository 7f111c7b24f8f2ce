"""Schedules of training: how the probability of feeding the true frame decays (scheduled sampling)."""

from __future__ import annotations


def teacher_forcing_probability(step: int, start: float, end: float, decay_steps: int) -> float:
    """Probability of feeding the true frame at ``step``: linear from ``start`` to ``end`` over ``decay_steps``
    (scheduled sampling, Bengio et al. 2015; 0 decay steps means always ``end``)."""
    if decay_steps <= 0:
        return end
    progress = min(step / decay_steps, 1.0)
    return start + (end - start) * progress
