"""Users and roles. A fresh single-user project has no users: the local user is an admin.
Once a team adds users, roles take effect: only operators and admins run in protected
environments (the scheduler, the production engineer), viewers change nothing."""

from __future__ import annotations

from typing import Literal

from andon.errors import AndonError, did_you_mean
from andon.store import Row, Store

Role = Literal["admin", "operator", "developer", "viewer"]
ROLES: tuple[str, ...] = ("admin", "operator", "developer", "viewer")

_CHANGE = ("admin", "operator", "developer")
_OPERATE = ("admin", "operator")
_ADMIN = ("admin",)

# the roles each mutating verb needs (the service layer checks them, once per call); a verb
# acting on a protected environment needs its ``…_protected`` entry. Reads need no role.
CAN: dict[str, tuple[str, ...]] = {
    "run": _CHANGE, "run_protected": _OPERATE,
    "cancel": _CHANGE, "cancel_protected": _OPERATE,  # cancel a run: who may start it
    "promote": _CHANGE, "promote_protected": _OPERATE,
    "env_create": _CHANGE, "env_create_protected": _OPERATE,
    "env_reset": _CHANGE, "env_reset_protected": _OPERATE,
    "env_delete": _CHANGE, "env_delete_protected": _OPERATE,
    "secrets_set": _CHANGE, "secrets_set_protected": _OPERATE,
    "secrets_rm": _CHANGE, "secrets_rm_protected": _OPERATE,
    "checks_ack": _CHANGE, "checks_ack_protected": _OPERATE,
    "gc": _OPERATE,
    "models_alias": _OPERATE,  # moving a champion changes what is served
    "users_add": _ADMIN, "users_rm": _ADMIN, "manage": _ADMIN,
    # query results with the values of PII columns: viewers get them masked (samples and
    # profiles are masked for everyone)
    "read_pii": _CHANGE,
}

# roles that may use a verb only on environments they own (their own branches)
OWN_ONLY: dict[str, tuple[str, ...]] = {
    "env_reset": ("developer",),
    "env_delete": ("developer",),
}


class AccessDenied(AndonError):
    """The current user's role does not allow this."""

    kind = "forbidden"


class NotAuthenticated(AndonError):
    """No identity, or one that does not hold: a missing, unknown or expired API token."""

    kind = "forbidden"


def users(store: Store) -> list[Row]:
    return [u.as_dict() for u in store.users.all()]


def role_of(store: Store, user: str) -> str | None:
    """The user's role; ``admin`` while no users are configured."""
    if not store.users.any():
        return "admin"
    return store.users.role(user)


def require(store: Store, user: str, action: str, what: str, *,
            role: str | None = None) -> None:
    """Raise AccessDenied unless the user (acting with ``role`` when given, e.g. an API
    token's, else their configured one) may do ``action``."""
    role = role if role is not None else role_of(store, user)
    allowed = CAN[action]
    if role in allowed:
        return
    who = f"user {user!r}" + (f" (role {role})" if role else " (not a configured user)")
    raise AccessDenied(
        f"{who} may not {what}",
        hint=f"this needs the role {' or '.join(allowed)}; an admin can grant it with "
             f"`andon users add {user} --role {allowed[-1]}`",
    )


def add_user(store: Store, name: str, role: str, *, by: str, by_role: str | None = None
             ) -> None:
    if role not in ROLES:
        hint = did_you_mean(role, ROLES)
        raise AndonError(f"unknown role {role!r}", hint=hint or f"roles: {', '.join(ROLES)}")
    existing = users(store)
    if existing:
        require(store, by, "manage", "manage users", role=by_role)
    elif role != "admin":
        # anyone else first would leave nobody able to manage users, ever
        raise AndonError("the first user must be an admin",
                         hint=f"start with: andon users add {by} --role admin")
    if role != "admin" and [u["name"] for u in existing if u["role"] == "admin"] == [name]:
        raise AndonError(f"{name!r} is the last admin; nobody could manage users any more",
                         hint="make someone else an admin first")
    store.users.put(name, role)


def _last_admin(existing: list[Row], name: str) -> bool:
    admins = [u["name"] for u in existing if u["role"] == "admin"]
    return admins == [name] and len(existing) > 1


def remove_user(store: Store, name: str, *, by: str, by_role: str | None = None) -> None:
    require(store, by, "manage", "manage users", role=by_role)
    if _last_admin(users(store), name):
        raise AndonError(f"{name!r} is the last admin; nobody could manage users any more",
                         hint="make someone else an admin first, or remove the other users")
    if not store.users.remove(name):
        raise AndonError(f"no user named {name!r}",
                         hint=did_you_mean(name, [u["name"] for u in users(store)]))
