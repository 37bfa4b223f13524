"""``python -m pocketmesh.cli``: the ``pocketmesh`` command."""

from pocketmesh.cli import main

raise SystemExit(main())
