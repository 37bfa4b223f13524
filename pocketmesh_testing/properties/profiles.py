"""Hypothesis profiles for flow properties: ``dev`` (fast) and ``release`` (thorough, reproducible).

Importing this module registers them; load one with ``--hypothesis-profile=dev`` or
``settings.load_profile("release")``. ``pocketmesh gate`` runs under ``release``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

__all__ = ["DEV", "RELEASE", "register_profiles"]

DEV = "dev"
RELEASE = "release"


def register_profiles() -> None:
    """Register the ``dev`` and ``release`` profiles (idempotent)."""
    # Flow runs are async and do real I/O-shaped work, so a per-example deadline only adds flakes.
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile(DEV, max_examples=25, **common)
    settings.register_profile(RELEASE, max_examples=300, derandomize=True, print_blob=True, **common)


register_profiles()
