"""Users and their API tokens (admin only). A token is shown once, when it is made."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PrincipalCache, Role, principal_cache, require
from api.deps import NO_NUL, Conn, Text
from gis.records import users as auth

router = APIRouter(tags=["users"], dependencies=[Depends(require(Role.admin))])


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^\s\x00]+$")
    role: Role
    districts: list[Annotated[Text, Field(max_length=100)]] = Field(
        default_factory=list, max_length=1000, description="District ids, codes or names (editors only).")
    password: str | None = Field(None, min_length=8, max_length=256, pattern=NO_NUL, description="For the login "
                                                                                                "page.")


@router.get("/users")
def get_users(conn: Conn) -> list[dict[str, Any]]:
    """Every account: name, role, whether it is active and has a password, its districts, when it was made; admins
    only."""
    return auth.list_users(conn)


@router.get("/users/login-attempts")
def get_login_attempts(
    conn: Conn,
    user: Annotated[str | None, Query(max_length=64, description="Only this user name (as typed).")] = None,
    address: Annotated[str | None, Query(max_length=64, description="Only this client address.")] = None,
    failed_only: Annotated[bool, Query(description="Only failed or locked attempts.")] = False,
    limit: Annotated[int, Query(ge=1, le=10000, description="How many, newest first.")] = 100,
) -> list[dict[str, Any]]:
    """Sign-in attempts, newest first: time, user name as typed, client address, success, and whether it was
    refused unheard because the name or the address was locked."""
    return auth.login_attempts(conn, user=user, address=address, failed_only=failed_only, limit=limit)


@router.post("/users", status_code=201)
def post_user(body: UserIn, conn: Conn) -> dict[str, Any]:
    """Create a user; the answer holds their API token, which is not stored and not shown again."""
    cred = auth.add_user(conn, body.name, body.role, body.districts, body.password)
    return {"name": cred.name, "role": cred.role.value, "districts": list(cred.districts), "token": cred.token}


@router.post("/users/{name}/tokens", status_code=201)
def post_token(name: str, conn: Conn) -> dict[str, str]:
    """Another API token for the user, shown once; the earlier ones stay valid. Admins only; 404 for an unknown user."""
    return {"name": name, "token": auth.new_api_token(conn, name)}


@router.delete("/users/{name}/tokens")
def delete_tokens(name: str, conn: Conn, cache: Annotated[PrincipalCache, Depends(principal_cache)]) -> dict[str, Any]:
    """Revoke every token and session of the user, at once in this worker (others: auth_cache_seconds)."""
    revoked = auth.revoke_tokens(conn, name)
    cache.clear()
    return {"name": name, "revoked": revoked}
