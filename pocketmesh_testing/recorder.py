"""``python -m pocketmesh_testing.recorder``: record a scenario file from a real conversation.

The recorder lives in :mod:`pocketmesh_testing.conversations.recorder`; this is its public name.
"""

from pocketmesh_testing.conversations.recorder import *  # noqa: F403
from pocketmesh_testing.conversations.recorder import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
