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
import math
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.platform.config import Settings
from gis.platform.errors import Forbidden, InvalidInput, NotFound


class Role(StrEnum):
    viewer = "viewer"
    district_editor = "district_editor"
    inspector = "inspector"
    admin = "admin"


ROLE_RANK = {Role.viewer: 0, Role.district_editor: 1, Role.inspector: 2, Role.admin: 3}
ROLE_LABELS_ZH = {
    Role.viewer: "查看", Role.district_editor: "片区编辑", Role.inspector: "纪检监察", Role.admin: "管理员",
}
# The inspection checks' findings (who was paid and did not demolish, who got paid twice …) are for the
# inspectors and admins: GET /checks requires this role, and reports embed the findings only for it.
CHECKS_MIN_ROLE = Role.inspector
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

    @property
    def may_read_checks(self) -> bool:
        """The inspection checks' findings: ``CHECKS_MIN_ROLE`` and above."""
        return ROLE_RANK[self.role] >= ROLE_RANK[CHECKS_MIN_ROLE]

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
    """A token's SHA-256 (hex): the only form the database and the principal cache keep."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token (256 bits) with the ``pbt_`` prefix, so a leaked one is recognisable."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """A password as ``scrypt$n$r$p$salt$digest``, with a fresh salt."""
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
    """``role`` as a Role; InvalidInput listing the roles otherwise."""
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
    """Store a new token for a user (its hash only) and return it in clear, the one time it is seen: an API token, or
    a session that ends at ``expires_at``."""
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


@dataclass(frozen=True)
class LoginThrottle:
    """How sign-ins by password are throttled (from ``Settings``: ``LoginThrottle.from_settings``)."""

    max_failures: int = 5  # per user name, since its last success
    address_max_failures: int = 20  # per client address, since the last success from it
    lock_seconds: float = 2.0  # the first lock, doubled with each further failure
    lock_max_seconds: float = 900.0
    keep_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(max_failures=settings.login_max_failures, address_max_failures=settings.login_address_max_failures,
                   lock_seconds=settings.login_lock_seconds, lock_max_seconds=settings.login_lock_max_seconds,
                   keep_days=settings.login_attempts_keep_days)

    def lock_for(self, failures: int, limit: int) -> float:
        """Seconds a key stays locked after its latest failure: 0 below ``limit``, then doubling, capped."""
        if failures < limit:
            return 0.0
        return min(self.lock_seconds * 2.0 ** min(failures - limit, 64), self.lock_max_seconds)


@dataclass(frozen=True)
class LoginResult:
    """A session token when the password was right; else ``retry_after`` seconds when the name or the address
    is locked (the password was then not even checked), or neither for a plain wrong password."""

    token: str | None = None
    retry_after: int | None = None


# Failures of one key since its last success (within a day: older failures no longer lock anything), and when the
# latest was. Locked attempts are not counted: a caller waiting out a lock must not extend it by asking once more.
_FAILURES_SQL = """
SELECT count(*) AS failures, max(at) AS latest, EXTRACT(EPOCH FROM now() - max(at)) AS ago
FROM login_attempts
WHERE {column} = :key AND NOT success AND NOT locked AND at > now() - interval '1 day'
  AND at > coalesce((SELECT max(at) FROM login_attempts WHERE {column} = :key AND success), '-infinity')
"""
_KEY_COLUMNS = {"user": "user_name", "address": "address"}


def _retry_after(conn: Connection, kind: str, key: str, limit: int, throttle: LoginThrottle) -> float:
    row = conn.execute(text(_FAILURES_SQL.format(column=_KEY_COLUMNS[kind])), {"key": key}).one()
    if not row.failures:
        return 0.0
    return throttle.lock_for(int(row.failures), limit) - float(row.ago)


def login(conn: Connection, name: str, password: str, hours: float, *, address: str | None = None,
          throttle: LoginThrottle | None = None) -> LoginResult:
    """A new session for a correct name and password, unless the name or the client address is locked.

    Every attempt is recorded (``login_attempts``). After ``throttle.max_failures`` failures of a user name since
    its last success (``address_max_failures`` of an address) the key is locked, for ``lock_seconds`` doubled
    with each further failure up to ``lock_max_seconds``; a locked attempt is refused without checking the
    password, so a guess that happens to be right gains nothing. Advisory locks per name and address (taken in
    a fixed order, held to the end of the transaction) serialise concurrent attempts on the same key, across
    workers and processes: parallel guesses cannot all pass before the first failure is counted.
    """
    throttle = throttle or LoginThrottle()
    if "\0" in name or (address and "\0" in address):  # PostgreSQL text cannot hold it; no user name has one
        raise InvalidInput("the user name contains a NUL character", "username")
    keys = sorted([("user", name), *([("address", address)] if address else [])])
    for kind, key in keys:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"login:{kind}:{key}"})
    limits = {"user": throttle.max_failures, "address": throttle.address_max_failures}
    wait = max(_retry_after(conn, kind, key, limits[kind], throttle) for kind, key in keys)
    locked = wait > 0
    token = None
    if not locked:
        row = conn.execute(
            text("SELECT id, password_hash FROM users WHERE name = :n AND active"), {"n": name}
        ).first()
        if verify_password(password, row.password_hash if row else None) and row is not None:
            conn.execute(text("DELETE FROM auth_tokens WHERE kind = 'session' AND expires_at < now()"))
            token = issue_token(conn, row.id, "session", datetime.now(timezone.utc) + timedelta(hours=hours))
    conn.execute(
        text("INSERT INTO login_attempts (user_name, address, success, locked) VALUES (:n, :a, :ok, :locked)"),
        {"n": name, "a": address, "ok": token is not None, "locked": locked},
    )
    conn.execute(text("DELETE FROM login_attempts WHERE at < now() - make_interval(days => :d)"),
                 {"d": throttle.keep_days})
    if locked:
        return LoginResult(retry_after=max(1, math.ceil(wait)))
    if token is None:  # this failure may have just locked the key: say so at once
        wait = max(_retry_after(conn, kind, key, limits[kind], throttle) for kind, key in keys)
        return LoginResult(retry_after=math.ceil(wait) if wait > 0 else None)
    return LoginResult(token=token)


def login_attempts(conn: Connection, *, user: str | None = None, address: str | None = None,
                   failed_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """The latest sign-in attempts, newest first (for the admin): time, user name, address, success, locked."""
    rows = conn.execute(text(
        """SELECT at, user_name, address, success, locked FROM login_attempts
           WHERE (CAST(:user AS text) IS NULL OR user_name = :user)
             AND (CAST(:address AS text) IS NULL OR address = :address)
             AND (NOT :failed_only OR NOT success)
           ORDER BY at DESC, id DESC LIMIT :limit"""
    ), {"user": user, "address": address, "failed_only": failed_only, "limit": limit}).mappings().all()
    return [dict(r) | {"at": r["at"].isoformat()} for r in rows]


def logout(conn: Connection, session_token: str) -> None:
    """End a browser session; the user's API tokens are left alone."""
    conn.execute(
        text("DELETE FROM auth_tokens WHERE token_hash = :h AND kind = 'session'"), {"h": hash_token(session_token)}
    )


def list_users(conn: Connection) -> list[dict]:
    """Every account by id: name, role, active, created_at, has_password, district codes; no hashes."""
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
