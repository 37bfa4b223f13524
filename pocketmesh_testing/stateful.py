"""A Hypothesis state machine for A2A conversations: ``a2a_conversation_machine(flows)``.

It lives in :mod:`pocketmesh_testing.properties.stateful`; this is its public name.
"""

from pocketmesh_testing.properties.stateful import *  # noqa: F403
from pocketmesh_testing.properties.stateful import __all__  # noqa: F401
