"""Admin accounts: creating them and checking a sign-in.

Passwords are hashed with werkzeug.security (salted scrypt). A failed sign-in does the same
hashing work whether or not the email exists, so timing does not tell which emails are taken.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from plugin.admin.errors import Conflict, Invalid
from plugin.db import utcnow
from plugin.models import AdminUser

MIN_PASSWORD_LENGTH = 10
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_admin(
    session: Session, workspace_id: uuid.UUID, email: str, password: str, *, name: str = ""
) -> AdminUser:
    address = normalise_email(email)
    if "@" not in address or len(address) > 320:
        raise Invalid("give a valid email address", {"email": address})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    taken = session.scalar(select(func.count()).select_from(AdminUser).where(AdminUser.email == address))
    if taken:
        raise Conflict("an admin with this email already exists", {"email": address})
    admin = AdminUser(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        email=address,
        name=name.strip() or address.split("@", 1)[0],
        password_hash=generate_password_hash(password),
    )
    session.add(admin)
    session.flush()
    return admin


def authenticate(session: Session, email: str, password: str) -> AdminUser | None:
    """The admin whose email and password these are, with its sign-in time recorded; else None."""
    admin = session.scalar(select(AdminUser).where(AdminUser.email == normalise_email(email)))
    if admin is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(admin.password_hash, password):
        return None
    admin.last_sign_in_at = utcnow()
    return admin
