"""The errors of the W&B mirror."""

from __future__ import annotations

from rental_pipeline.store import StoreError


class MirrorError(StoreError):
    """The Weights & Biases mirror could not do what was asked (e.g. fetch while offline).

    A :class:`~rental_pipeline.store.StoreError`, so a command that reports store errors in one
    line reports the mirror's too."""
