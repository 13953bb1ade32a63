"""Connection secrets encrypted at rest with Fernet, masked whenever they are read back."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

MASK = "••••••••"


class SecretBox:
    def __init__(self, fernet: Fernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_key(cls, key: str | None, *, fallback_seed: str) -> SecretBox:
        """``MILESTONES_ENCRYPTION_KEY`` when set; otherwise a key derived from the secret key
        (fine for the embedded demo, logged as a warning by ``serve``)."""
        if key:
            return cls(Fernet(key.encode()))
        derived = base64.urlsafe_b64encode(hashlib.sha256(fallback_seed.encode()).digest())
        return cls(Fernet(derived))

    def seal(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken as exc:
            raise ValueError("connection secrets cannot be decrypted with this encryption key") from exc


def mask(settings: dict[str, Any], secret_names: frozenset[str]) -> dict[str, Any]:
    return {k: (MASK if k in secret_names and v else v) for k, v in settings.items()}
