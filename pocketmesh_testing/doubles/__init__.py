"""Test doubles: stand-ins for what a flow talks to, so tests need no model, network or server.

The fake LLM and its wire formats (OpenAI chat completions and Responses API, Anthropic
messages), the loopback HTTP server and the in-process ASGI transport they use, the network
guard, vcrpy cassettes of model traffic, and the conformance kit for persistence backends.
"""
