"""Users, roles, API tokens and browser sessions.

Roles: viewer (reads; personal data masked), district_editor (edits the parcels of its own
districts), inspector (reads everything, personal data and history included; moves stages back with
a reason), admin (users, standards, projects; edits everything).

Secrets are never stored: an API token or session is 32 random bytes, kept as its SHA-256 (a
random 256-bit secret needs no slow hash); a password for the login page is kept as a salted
scrypt hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Connection, text

from gis.errors import Forbidden, InvalidInput, NotFound


class Role(StrEnum):
    viewer = "viewer"
    district_editor = "district_editor"
    inspector = "inspector"
    admin = "admin"


ROLE_RANK = {Role.viewer: 0, Role.district_editor: 1, Role.inspector: 2, Role.admin: 3}
ROLE_LABELS_ZH = {
    Role.viewer: "查看", Role.district_editor: "片区编辑", Role.inspector: "纪检监察", Role.admin: "管理员",
}
TOKEN_PREFIX = "pbt_"  # recognisable in a leaked config file or a secret scanner
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user with a role and, for district editors, their districts."""

    name: str
    role: Role
    district_ids: frozenset[int] = field(default_factory=frozenset)
    user_id: int | None = None

    @property
    def reveal_personal(self) -> bool:
        """Owner names, ID numbers and phones are shown unmasked to inspectors and admins only."""
        return self.role in (Role.inspector, Role.admin)

    def may_edit_district(self, district_id: int) -> bool:
        if self.role == Role.admin:
            return True
        return self.role == Role.district_editor and district_id in self.district_ids

    def ensure_may_edit_district(self, district_id: int) -> None:
        if not self.may_edit_district(district_id):
            raise Forbidden("this parcel lies outside the districts this user may edit")


@dataclass(frozen=True)
class Credential:
    """What a new user gets once: the token (and the password, when one was set)."""

    name: str
    role: Role
    token: str
    password: str | None = None
    districts: tuple[str, ...] = ()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check; an unknown user costs as much as a wrong password."""
    if not stored:
        hashlib.scrypt(password.encode(), salt=b"0" * 16, **_SCRYPT)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def check_role(role: object) -> Role:
    try:
        return Role(str(role))
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(Role)}", "role") from None


def resolve_districts(conn: Connection, refs: list[str] | tuple[str, ...]) -> list[int]:
    """District ids from ids, codes or names (西津, xijin, 1)."""
    ids = []
    for ref in refs:
        row = conn.execute(
            text("SELECT id FROM districts WHERE code = :ref OR name = :ref OR CAST(id AS text) = :ref"),
            {"ref": str(ref)},
        ).first()
        if row is None:
            raise NotFound(f"no district {ref!r}")
        ids.append(int(row[0]))
    return sorted(set(ids))


def add_user(
    conn: Connection,
    name: str,
    role: Role | str,
    districts: list[str] | tuple[str, ...] = (),
    password: str | None = None,
) -> Credential:
    """Create a user with an API token; the token (never stored) is returned once."""
    role = check_role(role)
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise InvalidInput("a user name is 1 to 64 characters without spaces", "name")
    district_ids = resolve_districts(conn, districts)
    if role == Role.district_editor and not district_ids:
        raise InvalidInput("a district editor needs at least one district (--district)", "district")
    if role != Role.district_editor and district_ids:
        raise InvalidInput("only a district editor is bound to districts", "district")
    if password is not None and len(password) < 8:
        raise InvalidInput("a password has at least 8 characters", "password")
    exists = conn.execute(text("SELECT 1 FROM users WHERE name = :name"), {"name": name}).first()
    if exists:
        raise InvalidInput(f"a user named {name!r} exists already", "name")
    user_id = conn.execute(
        text("INSERT INTO users (name, role, district_ids, password_hash) VALUES (:name, :role, :d, :pw) RETURNING id"),
        {"name": name, "role": role.value, "d": district_ids, "pw": hash_password(password) if password else None},
    ).scalar_one()
    token = issue_token(conn, user_id)
    codes = tuple(conn.execute(
        text("SELECT code FROM districts WHERE id = ANY(:ids) ORDER BY id"), {"ids": district_ids}
    ).scalars())
    return Credential(name=name, role=role, token=token, password=password, districts=codes)


def issue_token(conn: Connection, user_id: int, kind: str = "api", expires_at: datetime | None = None) -> str:
    token = new_token()
    conn.execute(
        text("INSERT INTO auth_tokens (token_hash, user_id, kind, expires_at) VALUES (:h, :u, :k, :e)"),
        {"h": hash_token(token), "u": user_id, "k": kind, "e": expires_at},
    )
    return token


def new_api_token(conn: Connection, name: str) -> str:
    """Another API token for an existing user (the old ones stay valid until revoked)."""
    user_id = conn.execute(text("SELECT id FROM users WHERE name = :n"), {"n": name}).scalar_one_or_none()
    if user_id is None:
        raise NotFound(f"no user {name!r}")
    return issue_token(conn, user_id)


def revoke_tokens(conn: Connection, name: str) -> int:
    """Delete every token and session of the user; how many there were. NotFound for no such user (a name
    typed wrong must not look like a user whose tokens were revoked)."""
    user_id = conn.execute(text("SELECT id FROM users WHERE name = :n"), {"n": name}).scalar_one_or_none()
    if user_id is None:
        raise NotFound(f"no user {name!r}")
    return conn.execute(text("DELETE FROM auth_tokens WHERE user_id = :u"), {"u": user_id}).rowcount


_PRINCIPAL_SQL = """
SELECT u.id, u.name, u.role, u.district_ids
FROM auth_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = :h AND t.kind = :kind AND u.active AND (t.expires_at IS NULL OR t.expires_at > now())
"""


def principal_for_token(conn: Connection, token: str, kind: str = "api") -> Principal | None:
    """The user an API token (kind 'api') or a session cookie (kind 'session') belongs to, if valid."""
    if not token or len(token) > 256:
        return None
    row = conn.execute(text(_PRINCIPAL_SQL), {"h": hash_token(token), "kind": kind}).first()
    if row is None:
        return None
    return Principal(name=row.name, role=Role(row.role), district_ids=frozenset(row.district_ids), user_id=row.id)


def login(conn: Connection, name: str, password: str, hours: float) -> str | None:
    """A new session token for a correct name and password, else None."""
    row = conn.execute(
        text("SELECT id, password_hash FROM users WHERE name = :n AND active"), {"n": name}
    ).first()
    if not verify_password(password, row.password_hash if row else None) or row is None:
        return None
    conn.execute(text("DELETE FROM auth_tokens WHERE kind = 'session' AND expires_at < now()"))
    return issue_token(conn, row.id, "session", datetime.now(timezone.utc) + timedelta(hours=hours))


def logout(conn: Connection, session_token: str) -> None:
    conn.execute(
        text("DELETE FROM auth_tokens WHERE token_hash = :h AND kind = 'session'"), {"h": hash_token(session_token)}
    )


def list_users(conn: Connection) -> list[dict]:
    rows = conn.execute(text(
        """SELECT u.name, u.role, u.active, u.created_at, u.password_hash IS NOT NULL AS has_password,
                  coalesce((SELECT array_agg(d.code ORDER BY d.id) FROM districts d WHERE d.id = ANY(u.district_ids)),
                           '{}') AS districts
           FROM users u ORDER BY u.id"""
    )).mappings().all()
    return [dict(r) | {"created_at": r["created_at"].isoformat()} for r in rows]


# ---------------------------------------------------------------------------------------------
# The demo city's users: one per role, each with a token and a password for the login page.

DEMO_USERS = (
    ("demo-viewer", Role.viewer),
    ("demo-editor", Role.district_editor),
    ("demo-inspector", Role.inspector),
    ("demo-admin", Role.admin),
)


def create_demo_users(conn: Connection) -> list[Credential]:
    """Replace the demo users; the editor gets the first district. Secrets are new each time."""
    conn.execute(text("DELETE FROM users WHERE name = ANY(:names)"), {"names": [n for n, _ in DEMO_USERS]})
    first = conn.execute(text("SELECT code FROM districts ORDER BY id LIMIT 1")).scalar_one_or_none()
    creds = []
    for name, role in DEMO_USERS:
        districts = [first] if role == Role.district_editor and first else []
        creds.append(add_user(conn, name, role, districts, password=secrets.token_urlsafe(9)))
    return creds


def write_credentials(path: Path, creds: list[Credential], base_url: str) -> None:
    """The demo logins in a file only its owner can read (mode 600 from creation, not after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# demo users of {base_url} (synthetic demo city); login page {base_url}/login", ""]
    for c in creds:
        where = f" districts={','.join(c.districts)}" if c.districts else ""
        lines.append(f"{c.role.value:16} user={c.name} password={c.password} token={c.token}{where}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    path.chmod(0o600)
