"""Conversations with A2A agents: in-process and live agents, scenario files (format, schema,
collection, player, transcript), shared-state snapshots and the scenario recorder."""
