"""Loading a cassette: libyaml's safe loader, requests filtered as at recording, and a
pocketmesh cassette's responses taken as they were recorded (scrubbed then)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pocketmesh_testing.doubles.cassettes import CASSETTE_HEADER, CassetteSettings, _safe_loader, use_llm_cassette


def test_the_loader_is_libyamls_safe_one_and_stays_safe() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml here")
    loader = _safe_loader()
    assert issubclass(loader, yaml.CSafeLoader)
    assert yaml.load("a: !!python/tuple [1, 2]", Loader=loader) == {"a": (1, 2)}  # noqa: S506
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("a: !!python/object/apply:os.getcwd []", Loader=loader)  # noqa: S506


def cassette(path: Path, *, ours: bool) -> Path:
    body = json.dumps({"access_token": "tok-1234567890", "answer": 42})
    interactions = [{
        "request": {"body": '{"q": 1}', "headers": {"content-type": ["application/json"]}, "method": "POST",
                    "uri": "https://api.example.invalid/v1/ask?api_key=key-1234567890"},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {"content-type": ["application/json"]},
                     "body": {"string": body}},
    }]
    text = yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False)
    path.write_text((CASSETTE_HEADER + "\n" if ours else "") + text)
    return path


@pytest.mark.parametrize("ours", [True, False], ids=["pocketmesh cassette", "other cassette"])
def test_loaded_requests_are_filtered_and_other_responses_scrubbed(tmp_path: Path, ours: bool) -> None:
    path = cassette(tmp_path / "c.yaml", ours=ours)
    with use_llm_cassette(path, CassetteSettings(record_mode="none")) as used:
        [(request, response)] = used.cassette.data
    assert "key-1234567890" not in request.uri and "redacted" in request.uri
    body = response["body"]["string"]
    scrubbed = "tok-1234567890" not in (body.decode() if isinstance(body, bytes) else body)
    # A pocketmesh cassette was scrubbed when recorded: its responses are used as read.
    assert scrubbed is not ours
