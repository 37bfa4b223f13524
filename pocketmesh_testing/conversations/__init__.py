"""Conversations with A2A agents: in-process and live agents, scenario files (format, schema,
collection, player, transcript), shared-state snapshots, the scenario recorder, and simulations
(a model plays the user, a judge rules: the loop, the two roles, simulations in files)."""
