"""Bearer-token check for /v1/* (constant-time comparison)."""

from __future__ import annotations

import hmac

from pydantic import SecretStr


class AuthProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_bearer(header: str | None, token: SecretStr | None) -> None:
    """Raise AuthProblem 401 (missing or malformed header) or 403 (wrong token).

    ``token`` None means authentication is off (``serve --no-auth``).
    """
    if token is None:
        return
    if not header:
        raise AuthProblem(401, "missing Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthProblem(401, "malformed Authorization header: expected 'Bearer <token>'")
    if not hmac.compare_digest(value.strip().encode(), token.get_secret_value().encode()):
        raise AuthProblem(403, "invalid API token")


__all__ = ["check_bearer", "AuthProblem"]
