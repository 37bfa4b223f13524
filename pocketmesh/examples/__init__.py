"""Runnable example agents; each module exposes ``flows`` for ``pocketmesh serve MODULE:flows``."""
