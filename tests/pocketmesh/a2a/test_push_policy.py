"""``PushPolicy``: which push notification URLs a server calls (no connection is made here)."""

from __future__ import annotations

import asyncio

import pytest

from pocketmesh.a2a import PushPolicy, PushTargetRefused


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://10.1.2.3/hook", "private"),
        ("http://172.16.0.1/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://100.64.0.1/hook", "non-public"),
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://hooks.localhost/hook", "loopback"),
        ("http://[fd00::1]/hook", "private"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local"),
        ("http://[2002:a00:1::]/hook", "private"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::]/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
    ],
)
async def test_non_public_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(PushTargetRefused, match=f"an? {kind} address") as refused:
        await PushPolicy().check(url)
    assert refused.value.url == url and not refused.value.unresolved


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.test/x", "scheme 'ftp' is not http or https"),
        ("http://user:secret@hooks.test/x", "carries credentials"),
        ("", "it is empty"),
        ("http:///x", "names no host"),
        ("http://hooks.test:99999/x", "does not parse"),
        ("http://hooks.invalid/x", "never resolves"),
    ],
)
async def test_malformed_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(PushTargetRefused, match=why):
        await PushPolicy().check(url)


async def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    # Only judged: check() connects nowhere, so a public address may appear in an answer.
    answers = {"mixed.test": ["8.8.8.8", "10.0.0.5"], "inside.test": ["10.0.0.5"], "public.test": ["8.8.8.8"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    policy = PushPolicy(resolver=resolve)
    with pytest.raises(PushTargetRefused, match="'inside.test' resolves to 10.0.0.5, which is a private address"):
        await policy.check("https://inside.test/hook")
    with pytest.raises(PushTargetRefused, match="'mixed.test' resolves to 10.0.0.5"):
        await policy.check("https://mixed.test/hook")
    assert (await policy.check("https://public.test/hook")).addresses == ("8.8.8.8",)


async def test_explicit_allowances() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return {"hooks.internal": ["10.9.9.9"], "other.internal": ["10.9.9.9"]}[host]

    policy = PushPolicy(allowed_hosts=["127.0.0.1", "10.1.0.0/16", "hooks.internal"], resolver=resolve)
    target = await policy.check("http://127.0.0.1:8080/hook?x=1")
    assert (target.addresses, target.target, target.host_header) == (("127.0.0.1",), "/hook?x=1", "127.0.0.1:8080")
    assert (await policy.check("http://10.1.2.3/hook")).addresses == ("10.1.2.3",)
    assert (await policy.check("http://hooks.internal/hook")).addresses == ("10.9.9.9",)  # the name is trusted
    assert (await policy.check("http://localhost:9/hook")).addresses == ("127.0.0.1",)  # loopback 127.0.0.1 is allowed
    for refused in ("http://10.2.0.1/hook", "http://other.internal/hook", "http://[::1]/hook"):
        with pytest.raises(PushTargetRefused):
            await policy.check(refused)


async def test_allow_private_opens_private_ranges_but_never_unspecified_or_multicast() -> None:
    policy = PushPolicy(allow_private=True)
    for url in ("http://10.0.0.1/", "http://169.254.1.1/", "http://[fd00::1]/", "http://127.0.0.1/", "http://localhost/"):
        assert (await policy.check(url)).addresses
    for url in ("http://0.0.0.0/", "http://224.0.0.1/"):
        with pytest.raises(PushTargetRefused, match="a webhook never lives there"):
            await policy.check(url)


async def test_a_name_that_does_not_resolve_is_stored_but_not_delivered_to() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    policy = PushPolicy(resolver=resolve)
    assert (await policy.check("https://hooks.test/a2a", must_resolve=False)).addresses == ()
    with pytest.raises(PushTargetRefused, match="does not resolve") as refused:
        await policy.check("https://hooks.test/a2a")
    assert refused.value.unresolved


def test_bad_allowances_are_errors() -> None:
    with pytest.raises(TypeError, match="list of hosts, got the string"):
        PushPolicy(allowed_hosts="127.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="host name, an address or a network"):
        PushPolicy(allowed_hosts=[""])


async def test_a_resolver_that_does_not_answer_counts_as_no_answer() -> None:
    hang = asyncio.Event()

    async def resolve(host: str, port: int) -> list[str]:
        await hang.wait()  # never set: a name server that does not answer
        return []

    policy = PushPolicy(resolver=resolve, resolve_timeout=0.01)
    assert (await policy.check("https://hooks.test/a2a", must_resolve=False)).addresses == ()
    with pytest.raises(PushTargetRefused, match=r"does not resolve \(no answer within 0.01s\)"):
        await policy.check("https://hooks.test/a2a")
