"""A scripted OpenAI-compatible model on loopback that plays a simulated user and a judge.

It stands in for a real model when a simulation cassette is recorded on a machine without one:
requests marked ``x-pocketmesh-simulation: user`` get the next line of the user's script (then
``done``), requests marked ``judge`` get one verdict per criterion, each decided by whether the
transcript contains the text a rule names. Anything else (an agent's own model call) gets the
next of ``agent_replies``. It checks the bearer key, so a recording proves the key was sent and
then kept out of the cassette.

Run as a script to re-record the cassette of the simulation shipped in ``scenarios/greeting.yaml``::

    python tests/pocketmesh_testing/conversations/scripted_model.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketmesh_testing.doubles.llm_replies import ErrorReply, StreamReply, TextReply, WireResponse, render
from pocketmesh_testing.doubles.loopback import LoopbackServer

SECRET_KEY = "sk-scripted-model-secret-7d1f0c"


@dataclass
class Rule:
    """A criterion passes when the transcript contains ``needle``."""

    needle: str
    met: str
    missed: str


@dataclass
class ScriptedModel:
    """Serves chat completions on 127.0.0.1 from scripts; ``close()`` stops it."""

    user_lines: list[str] = field(default_factory=list)
    """Said by the user in turn (each used once); then the user is done."""
    rules: Mapping[str, Rule] = field(default_factory=dict)
    agent_replies: list[Any] = field(default_factory=list)
    """Answers to the agent's own calls in turn: a string, or a list of streamed chunks."""
    judge_answer: str | None = None
    """Sent as the judge's answer as it is, instead of verdicts from the rules."""
    api_key: str = SECRET_KEY
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.user_lines, self.agent_replies = list(self.user_lines), list(self.agent_replies)
        self._server: LoopbackServer | None = LoopbackServer(self._handle)
        self._url = self._server.url

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"{self._url}/v1"

    def close(self) -> None:
        """Stop serving: nothing answers on the port any more."""
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def _handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> WireResponse:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return render(ErrorReply(401, "wrong API key", headers={"x-should-retry": "false"}),
                          dialect="openai", model="scripted", stream=False)
        request = json.loads(body)
        role = headers.get("x-pocketmesh-simulation", "agent")
        self.requests.append((role, request))
        if role == "user":
            line = self.user_lines.pop(0) if self.user_lines else None
            answer = {"message": line, "done": False} if line is not None else {"done": True}
            return self._text(json.dumps(answer), request)
        if role == "judge":
            if self.judge_answer is not None:
                return self._text(self.judge_answer, request)
            return self._text(json.dumps({"verdicts": self._verdicts(request["messages"][-1]["content"])}), request)
        reply = self.agent_replies.pop(0)
        if isinstance(reply, list):
            return render(StreamReply(reply), dialect="openai", model=request["model"], stream=True)
        return self._text(str(reply), request)

    def _verdicts(self, prompt: str) -> list[dict[str, Any]]:
        transcript, _, listed = prompt.partition("\nCriteria:\n")
        criteria = [re.sub(r"^\d+\.\s*", "", line) for line in listed.splitlines() if re.match(r"^\d+\.\s", line)]
        verdicts = []
        for criterion in criteria:
            rule = self.rules.get(criterion, Rule("", "no rule: passed", ""))
            met = rule.needle in transcript
            verdicts.append({"criterion": criterion, "passed": met, "reason": rule.met if met else rule.missed})
        return verdicts

    @staticmethod
    def _text(text: str, request: dict[str, Any]) -> WireResponse:
        return render(TextReply(text), dialect="openai", model=request["model"], stream=False)


# -- the shipped greeting simulation ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]
GREETING_SIMULATION = "a visitor introduces themselves, chats and leaves"
GREETING_USER = ["I'm planning a picnic in the park this weekend.", "bye"]
GREETING_RULES = {
    "The agent greets the user by the name they gave.": Rule(
        "agent: Hello, Dana!", "The agent's first reply is \"Hello, Dana! What's on your mind?\".",
        "The agent never greets Dana by name."),
    "The agent acknowledges what the user said before the goodbye.": Rule(
        "agent: Got it: \"I'm planning a picnic", "The agent repeats the picnic plan back before the goodbye.",
        "The agent does not acknowledge the user's message."),
    "The agent says goodbye using the user's name.": Rule(
        "agent: Goodbye, Dana!", "The agent's last reply is \"Goodbye, Dana!\".",
        "The agent's goodbye does not use Dana's name."),
}


def record_greeting_simulation(root: Path = ROOT) -> int:
    """Re-record the shipped greeting simulation's cassette against a scripted loopback model."""
    model = ScriptedModel(list(GREETING_USER), GREETING_RULES)
    env = {**os.environ, "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": model.api_key}
    env.pop("CI", None)
    try:
        return subprocess.call(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pocketmesh-record-mode=all",
             "--pocketmesh-transcripts", f"scenarios/greeting.yaml::{GREETING_SIMULATION}"],
            cwd=root, env=env,
        )
    finally:
        model.close()


if __name__ == "__main__":
    raise SystemExit(record_greeting_simulation())
