"""``simulate()``: a model plays the user against an agent, a judge rules on the transcript.

The model here is the fake LLM behind a real ``openai`` client; the agent is the greeting
example served in-process over the real A2A app.
"""

from __future__ import annotations

import json

import pytest

# Imported here so pytester's in-process runs find them loaded instead of importing them anew.
import pocketmesh.examples.greeting  # noqa: F401
import pocketmesh_testing.simulation  # noqa: F401
from pocketmesh_testing.conversations.roles import parse_user_answer, parse_verdicts
from pocketmesh_testing.errors import SimulationAnswerError

HEADER = '''
import json

import pytest

from pocketmesh.examples.greeting import flows
from pocketmesh_testing.simulation import SimulationAnswerError, SimulationError, simulate

CRITERIA = ["The agent greets the user by name", "The agent says goodbye by name"]


def says(message=None, done=False):
    return json.dumps({"message": message, "done": done} if message is not None else {"done": done})


def rules(*verdicts):
    return json.dumps({"verdicts": [{"criterion": c, "passed": p, "reason": r} for c, p, r in verdicts]})


def role_of(call):
    return call.headers.get("x-pocketmesh-simulation")
'''


def module(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_sim=HEADER + body)


def test_a_simulation_that_reaches_its_goal_passes(pytester: pytest.Pytester) -> None:
    module(pytester, '''
async def test_dana_is_greeted_and_leaves(a2a_agent, fake_llm):
    fake_llm.reply(says("I'm planning a picnic"))
    fake_llm.reply(says("bye"))
    fake_llm.reply(rules((CRITERIA[0], True, "It said Hello, Dana!"), (CRITERIA[1], True, "It said Goodbye, Dana!")))
    result = await simulate(
        a2a_agent(flows).conversation(skill="greeting"),
        persona="Dana, a first-time visitor", goal="get greeted by name, then leave",
        first_message="Dana", criteria=CRITERIA, llm=fake_llm.openai_client(),
    )
    result.assert_passed()
    assert result.passed and result.ended_by == "agent-final" and result.turns == 3
    assert result.transcript == [
        ("user", "Dana"), ("agent", "Hello, Dana! What's on your mind?"),
        ("user", "I'm planning a picnic"), ("agent", 'Got it: "I\\'m planning a picnic". Anything else?'),
        ("user", "bye"), ("agent", "Goodbye, Dana!"),
    ]
    assert result.final.state == "completed" and result.final.text == "Goodbye, Dana!"
    assert [(v.criterion, v.passed, v.reason) for v in result.verdicts] == [
        (CRITERIA[0], True, "It said Hello, Dana!"), (CRITERIA[1], True, "It said Goodbye, Dana!")]
    assert [role_of(c) for c in fake_llm.calls] == ["user", "user", "judge"]
    assert all(c.model == "gpt-4o-mini" and c.body["response_format"] == {"type": "json_object"} for c in fake_llm.calls)
    # the user is told its persona and goal and shown the conversation, never the criteria
    first_ask = json.dumps(fake_llm.calls[0].messages)
    assert "Dana, a first-time visitor" in first_ask and "get greeted by name, then leave" in first_ask
    assert "agent: Hello, Dana!" in first_ask
    for call in fake_llm.calls[:2]:
        assert not any(c in json.dumps(call.messages) for c in CRITERIA)
    judged = fake_llm.calls[2].messages[-1]["content"]
    assert "1. " + CRITERIA[0] in judged and "2. " + CRITERIA[1] in judged and "user: bye" in judged
''')
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_failed_criterion_names_it_with_the_reason_and_the_transcript(pytester: pytest.Pytester) -> None:
    module(pytester, '''
async def test_goodbye_without_the_name(a2a_agent, fake_llm):
    fake_llm.reply(says("bye"))
    fake_llm.reply(rules((CRITERIA[0], True, "It greeted Dana."),
                         (CRITERIA[1], False, "The goodbye never used the name.")))
    result = await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="leave",
                            first_message="Dana", criteria=CRITERIA, llm=fake_llm.openai_client())
    assert not result.passed and [v.criterion for v in result.failed] == [CRITERIA[1]]
    result.assert_passed()
''')
    result = pytester.runpytest("--color=no")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E *AssertionError: 1 of 2 criteria not met:",
        "E *  - criterion: The agent says goodbye by name",
        "E *    reason: The goodbye never used the name.",
        "E *transcript:",
        "E *  turn 1",
        "E *    user: Dana",
        "E *    agent [[]input-required]: Hello, Dana! What's on your mind?",
        "E *  turn 2",
        "E *    user: bye",
        "E *    agent [[]completed]: Goodbye, Dana!",
        "E *  ended by agent-final after 2 user message(s)",
    ])
    assert "criterion: The agent greets the user by name" not in result.stdout.str()


def test_the_conversation_ends_at_max_turns_and_when_the_user_is_done(pytester: pytest.Pytester) -> None:
    module(pytester, '''
async def test_max_turns(a2a_agent, fake_llm):
    fake_llm.respond_with(lambda call: says("tell me more"))
    result = await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="chat forever",
                            max_turns=3, llm=fake_llm.openai_client())
    assert (result.ended_by, result.turns, result.final.state) == ("max-turns", 3, "input-required")
    assert [role_of(c) for c in fake_llm.calls] == ["user"] * 3  # no criteria: no judge
    assert result.verdicts == [] and result.passed


async def test_user_done(a2a_agent, fake_llm):
    fake_llm.reply(says("Dana"))
    fake_llm.reply(says("thanks, that was all I needed", done=True))
    fake_llm.reply(rules((CRITERIA[0], True, "Hello, Dana!")))
    result = await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="be greeted",
                            criteria=CRITERIA[:1], llm=fake_llm.openai_client())
    assert (result.ended_by, result.turns) == ("user-done", 1)
    assert result.transcript == [("user", "Dana"), ("agent", "Hello, Dana! What's on your mind?")]
    assert "ended because the user ended it" in fake_llm.calls[-1].messages[-1]["content"]


async def test_done_before_a_word(a2a_agent, fake_llm):
    fake_llm.reply(says(done=True))
    result = await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="nothing",
                            llm=fake_llm.openai_client())
    assert (result.ended_by, result.turns, result.final, result.transcript) == ("user-done", 0, None, [])
''')
    pytester.runpytest().assert_outcomes(passed=3)


MALFORMED_USER = [
    ("Sure! I'd say hello.", "the simulated user's answer is not JSON (Expecting value at character 0): got \"Sure! I'd say hello.\"; "
     'expected a JSON object {"message": str, "done": bool}.*'),
    ('["hello"]', "the simulated user's answer is a JSON list, not an object: got '[[]\"hello\"[]]'; expected a JSON object *"),
    ('{"done": false}', "the simulated user's answer is malformed: the answer has no 'message' field: got '{\"done\": false}'; *"),
    ('{"message": "hi"}', "the simulated user's answer is malformed: the answer has no 'done' field: *"),
    ('{"message": "hi", "done": "no"}', "*the answer's 'done' is 'no' (str), not a boolean: got *"),
    ('{"message": 7, "done": false}', "*the answer's 'message' is 7 (int), not a string: *"),
    ('{"message": " ", "done": false}', "the simulated user's answer has an empty message and done: false: *"),
]
MALFORMED_JUDGE = [
    ("Both criteria pass.", "the judge's answer is not JSON (Expecting value at character 0): got 'Both criteria pass.'; expected a JSON "
     'object {"verdicts": [[]{"criterion": str, "passed": bool, "reason": str}[]]} with one verdict per criterion, in order '
     "(1. The agent greets the user by name; 2. The agent says goodbye by name). If the model ignores JSON *"),
    ('{"result": "pass"}', "the judge's answer is malformed: the answer has no 'verdicts' list: *"),
    ('{"verdicts": [{"criterion": "a", "passed": true, "reason": "r"}]}',
     "the judge's answer is malformed: 1 verdict(s) for 2 criteria: got *"),
    ('{"verdicts": [{"criterion": "a", "passed": "yes", "reason": "r"}, {"criterion": "b", "passed": true, "reason": "r"}]}',
     "*verdict 1's 'passed' is 'yes' (str), not a boolean*"),
    ('{"verdicts": [{"criterion": "a", "passed": true, "reason": "r"}, {"criterion": "b", "passed": true}]}',
     "*verdict 2 has no 'reason' field*"),
]


def test_malformed_answers_are_clear_errors_naming_what_came_back(pytester: pytest.Pytester) -> None:
    cases = [("user", answer) for answer, _ in MALFORMED_USER] + [("judge", answer) for answer, _ in MALFORMED_JUDGE]
    module(pytester, f'''
CASES = {cases!r}


@pytest.mark.parametrize(("role", "answer"), CASES)
async def test_malformed(a2a_agent, fake_llm, role, answer):
    if role == "judge":
        fake_llm.reply(says("bye"))
    fake_llm.reply(answer)
    with pytest.raises(SimulationAnswerError) as caught:
        await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="leave",
                       first_message="Dana", criteria=CRITERIA, llm=fake_llm.openai_client())
    # the conversation so far travels with the error
    assert caught.value.transcript[:2] == [("user", "Dana"), ("agent", "Hello, Dana! What's on your mind?")]
    print("ERROR:", caught.value)
''')
    result = pytester.runpytest("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=len(cases))
    result.stdout.fnmatch_lines_random([f"*ERROR: {pattern}" for _, pattern in MALFORMED_USER + MALFORMED_JUDGE])


def test_model_and_agent_failures_are_simulation_errors(pytester: pytest.Pytester) -> None:
    module(pytester, '''
from pocketmesh_testing.doubles.loopback import free_port


async def test_the_model_refuses(a2a_agent, fake_llm):
    fake_llm.fail(status=401, message="bad key")
    with pytest.raises(SimulationError, match=r"the simulated user's model call failed \\(gpt-4o-mini at .*\\): "
                                              r"AuthenticationError: .*bad key.*Check OPENAI_BASE_URL / OPENAI_API_KEY"):
        await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="leave",
                       llm=fake_llm.openai_client())


async def test_the_agent_is_gone(remote_agent, fake_llm):
    dead = remote_agent(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SimulationError, match=r"the agent did not answer user message 1 \\('Dana'\\): ") as caught:
        await simulate(dead.conversation(), persona="Dana", goal="leave", first_message="Dana",
                       llm=fake_llm.openai_client())
    assert caught.value.transcript == [("user", "Dana")]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"persona": ""}, "simulate(persona=...) needs a non-empty string"),
    ({"max_turns": 0}, "simulate(max_turns=...) needs a whole number of user messages >= 1, got 0"),
    ({"criteria": "be nice"}, "write criteria=['be nice']"),
    ({"criteria": ["ok", ""]}, "simulate(criteria=...) needs non-empty strings, got ''"),
    ({"first_message": ""}, "simulate(first_message=...) needs a non-empty string or None"),
])
async def test_bad_arguments(a2a_agent, fake_llm, kwargs, message):
    arguments = {"persona": "Dana", "goal": "leave", "llm": fake_llm.openai_client(), **kwargs}
    with pytest.raises((TypeError, ValueError)) as caught:
        await simulate(a2a_agent(flows).conversation(), **arguments)
    assert message in str(caught.value)


async def test_an_agent_is_not_a_conversation(a2a_agent, fake_llm):
    with pytest.raises(TypeError, match=r"got InProcessAgent \\(that is an agent: pass agent.conversation"):
        await simulate(a2a_agent(flows), persona="Dana", goal="leave", llm=fake_llm.openai_client())
''')
    pytester.runpytest().assert_outcomes(passed=8)


def test_the_default_model_client_comes_from_the_environment_and_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\npocketmesh_simulator_model = sim-model-x\n")
    module(pytester, '''
async def test_from_the_environment(a2a_agent, fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", fake_llm.api_key)
    fake_llm.reply(says("bye"))
    result = await simulate(a2a_agent(flows).conversation(skill="greeting"), persona="Dana", goal="leave",
                            first_message="Dana")
    assert result.turns == 2
    assert fake_llm.calls[0].model == "sim-model-x"  # the ini key
    assert fake_llm.calls[0].headers["authorization"] == f"Bearer {fake_llm.api_key}"


async def test_without_a_key_or_a_cassette(a2a_agent, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://model.invalid/v1")  # never a public address in tests
    with pytest.raises(SimulationError) as caught:
        await simulate(a2a_agent(flows).conversation(), persona="Dana", goal="leave")
    message = str(caught.value)
    assert message.startswith("the simulated user's model call failed (sim-model-x at https://model.invalid/v1/): "
                              "BlockedLookupError: "), message
    assert "network access to model.invalid:443 is blocked in tests" in message, message
    assert message.endswith("OPENAI_API_KEY is not set: set it (and OPENAI_BASE_URL for an endpoint other than "
                            "OpenAI's) to record this simulation, pass llm=, or replay a cassette that holds this call.")
''')
    pytester.runpytest().assert_outcomes(passed=2)


def test_user_answers_in_a_code_fence_and_judge_verdicts_reordered_still_read() -> None:
    assert parse_user_answer('```json\n{"message": "hi", "done": false}\n```') == ("hi", False)
    assert parse_user_answer('{"done": true}') == ("", True)
    criteria = ["greets by name", "says goodbye"]
    answer = json.dumps({"verdicts": [{"criterion": "Says goodbye", "passed": False, "reason": "no"},
                                      {"criterion": "greets by  name", "passed": True, "reason": "yes"}]})
    assert [(v.criterion, v.passed) for v in parse_verdicts(answer, criteria)] == [
        ("greets by name", True), ("says goodbye", False)]
    paraphrased = json.dumps({"verdicts": [{"criterion": "greeting", "passed": True, "reason": "yes"},
                                           {"criterion": "farewell", "passed": False, "reason": "no"}]})
    assert [(v.criterion, v.passed) for v in parse_verdicts(paraphrased, criteria)] == [
        ("greets by name", True), ("says goodbye", False)]
    with pytest.raises(SimulationAnswerError, match="is a JSON str, not an object"):
        parse_user_answer('"hi"')
