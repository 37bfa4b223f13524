"""pytest entry point of pocketmesh_testing (``pytest11``: ``pocketmesh``).

With the harness's requirements installed (``pip install 'pocketmesh[testing]'``) it registers
the harness: the hooks, options and markers (:mod:`pocketmesh_testing.hooks`) and each room's
fixtures. Without them (a runtime-only install that happens to have pytest) it registers no hook
and no option, only stand-ins for the harness's fixtures that fail naming the extra to install:
an unrelated project's tests run as if the plugin were absent.
"""

from __future__ import annotations

from pocketmesh_testing.requirements import missing_requirements

if missing_requirements():
    pytest_plugins = ["pocketmesh_testing.placeholders"]
else:
    pytest_plugins = [
        "pocketmesh_testing.hooks",
        "pocketmesh_testing.doubles.fixtures",
        "pocketmesh_testing.conversations.fixtures",
    ]
