"""Optional authentication for the A2A endpoint, and the owner each task is scoped to.

An authenticator turns an HTTP request into an *owner* (a non-empty string) or ``None``:

- :class:`BearerAuth` — ``Authorization: Bearer <token>``, each token naming its owner;
- :class:`ApiKeyAuth` — an API key in a header (``X-API-Key`` by default), each key naming its owner;
- any callable ``authenticate(request) -> owner | None`` (plain or ``async``).

The first two are declared in the agent card (``securitySchemes`` and ``securityRequirements``);
the card itself stays public. Every task is stored with its owner, and a caller only ever sees
its own tasks: another owner's task id is answered exactly like an unknown one.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from a2a.auth.user import User
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.types import (
    AgentCard,
    APIKeySecurityScheme,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
)
from starlette.requests import Request

logger = logging.getLogger("pocketmesh.a2a")

OWNER_SCOPE_KEY = "pocketmesh.owner"
"""Key of the authenticated owner in the ASGI scope of a request."""

AuthenticateFn = Callable[[Request], "str | None | Awaitable[str | None]"]
"""A callable auth: the request's owner, or ``None`` to refuse it (may be ``async``)."""


@runtime_checkable
class Authenticator(Protocol):
    """What :func:`create_a2a_app` accepts as ``auth=``: finds the owner of a request."""

    async def authenticate(self, request: Request) -> str | None:
        """The owner the request's credentials belong to, or ``None``."""

    def challenge(self) -> str:
        """What a refused caller is told to send (the ``WWW-Authenticate`` value)."""

    def declare(self, card: AgentCard) -> None:
        """Add this scheme to the agent card's security schemes and requirements."""


def _checked_owners(mapping: Mapping[str, str], what: str, example: str) -> dict[str, str]:
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValueError(f"{what} must be a non-empty dict of credential -> owner, got {mapping!r:.80}; e.g. {example}.")
    for secret, owner in mapping.items():
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"every key of {what} must be a non-empty str, got {secret!r:.20}; e.g. {example}.")
        if not isinstance(owner, str) or not owner:
            raise ValueError(
                f"{what} maps a credential to owner {owner!r:.40}; an owner must be a non-empty str "
                f"(the name tasks are scoped to), e.g. {example}."
            )
    return dict(mapping)


def _match(candidate: str, owners: Mapping[str, str]) -> str | None:
    """The owner of ``candidate``, comparing against every credential in constant time."""
    found = None
    given = candidate.encode("utf-8", "surrogateescape")
    for secret, owner in owners.items():
        if hmac.compare_digest(given, secret.encode("utf-8", "surrogateescape")):
            found = owner
    return found


class BearerAuth:
    """``Authorization: Bearer <token>``; ``tokens`` maps each accepted token to its owner."""

    scheme_name = "bearer"

    def __init__(self, tokens: Mapping[str, str], *, bearer_format: str = "", description: str = "") -> None:
        self._owners = _checked_owners(tokens, "BearerAuth(tokens=...)", "BearerAuth(tokens={'s3cret': 'alice'})")
        self.bearer_format = bearer_format
        self.description = description or "Send 'Authorization: Bearer <token>'."

    async def authenticate(self, request: Request) -> str | None:
        """The owner of the bearer token, or ``None``."""
        value = request.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return _match(token.strip(), self._owners)

    def challenge(self) -> str:
        return 'Bearer realm="a2a"'

    def declare(self, card: AgentCard) -> None:
        card.security_schemes[self.scheme_name].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer", bearer_format=self.bearer_format, description=self.description
                )
            )
        )
        _require(card, self.scheme_name)


class ApiKeyAuth:
    """An API key in a request header; ``keys`` maps each accepted key to its owner."""

    scheme_name = "apiKey"

    def __init__(self, keys: Mapping[str, str], *, header: str = "X-API-Key", description: str = "") -> None:
        if not isinstance(header, str) or not header.strip():
            raise ValueError(f"ApiKeyAuth(header=...) must name a header, got {header!r:.40}; e.g. header='X-API-Key'.")
        self._owners = _checked_owners(keys, "ApiKeyAuth(keys=...)", "ApiKeyAuth(keys={'k-123': 'alice'})")
        self.header = header.strip()
        self.description = description or f"Send the API key in the '{self.header}' header."

    async def authenticate(self, request: Request) -> str | None:
        """The owner of the API key, or ``None``."""
        key = request.headers.get(self.header, "")
        return _match(key, self._owners) if key else None

    def challenge(self) -> str:
        return f'ApiKey header="{self.header}"'

    def declare(self, card: AgentCard) -> None:
        card.security_schemes[self.scheme_name].CopyFrom(
            SecurityScheme(
                api_key_security_scheme=APIKeySecurityScheme(
                    location="header", name=self.header, description=self.description
                )
            )
        )
        _require(card, self.scheme_name)


class CallableAuth:
    """Wraps ``authenticate(request) -> owner | None``; declares nothing in the card."""

    def __init__(self, authenticate: AuthenticateFn) -> None:
        self._authenticate = authenticate

    async def authenticate(self, request: Request) -> str | None:
        """The callable's answer; an exception in it refuses the request (and is logged)."""
        try:
            owner = self._authenticate(request)
            if inspect.isawaitable(owner):
                owner = await owner
        except Exception:
            # Fail closed: a hostile request that trips the callable gets a 401, not a 500.
            logger.exception("the auth callable raised; refusing the request")
            return None
        if owner is None:
            return None
        if not isinstance(owner, str) or not owner:
            name = getattr(self._authenticate, "__qualname__", repr(self._authenticate))
            raise TypeError(
                f"the auth callable {name} returned {owner!r:.40} ({type(owner).__name__}); it must return "
                f"the caller's owner as a non-empty str, or None to refuse the request."
            )
        return owner

    def challenge(self) -> str:
        return 'Bearer realm="a2a"'

    def declare(self, card: AgentCard) -> None:
        """A callable's scheme is unknown: describe it in the card you pass, if you want it listed."""


def as_authenticator(auth: Any) -> Authenticator | None:
    """Accept ``None``, an :class:`Authenticator`, or a callable ``request -> owner | None``."""
    if auth is None:
        return None
    if isinstance(auth, Authenticator):
        return auth
    if callable(auth):
        return CallableAuth(auth)
    raise TypeError(
        f"auth must be BearerAuth(...), ApiKeyAuth(...) or a callable request -> owner | None, "
        f"got {auth!r:.80} ({type(auth).__name__})."
    )


def _require(card: AgentCard, scheme_name: str) -> None:
    for requirement in card.security_requirements:
        if scheme_name in requirement.schemes:
            return
    requirement = SecurityRequirement()
    requirement.schemes[scheme_name].SetInParent()
    card.security_requirements.append(requirement)


class OwnerUser(User):
    """The authenticated caller, as the SDK's call context sees it; ``user_name`` is the owner."""

    def __init__(self, owner: str) -> None:
        self._owner = owner

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self._owner


class OwnerContextBuilder(DefaultServerCallContextBuilder):
    """Builds the SDK call context with the owner the endpoint authenticated (if any).

    The task store scopes every read and write to ``context.user.user_name``; without auth
    that is ``""``, one shared owner.
    """

    def build_user(self, request: Request) -> User:
        owner = request.scope.get(OWNER_SCOPE_KEY)
        return OwnerUser(owner) if owner else super().build_user(request)
