"""Hypothesis strategies over flows: ``pocketmesh_testing.strategies.action_sequences(flow)``.

The strategies live in :mod:`pocketmesh_testing.properties.strategies`; this is their public name.
"""

from pocketmesh_testing.properties.strategies import *  # noqa: F403
from pocketmesh_testing.properties.strategies import __all__  # noqa: F401
