"""The keys of the HTTP API: only the SHA-256 of each key is stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from ..api_keys import ApiKey
from ..schema import ApiKeyRow
from ._base import StoreBase


def _key_from(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class ApiKeyStore(StoreBase):
    """API keys: added, listed, found by the hash of the key, stamped, revoked."""

    def add_api_key(self, name: str, key_hash: str, *, created_by: str) -> ApiKey | None:
        """Store a new key; None if the name is taken (by a key in use or revoked)."""
        now = self._now()
        inserted = self._connection.execute(
            self._insert(ApiKeyRow.__table__)
            .values(name=name, key_hash=key_hash, created_by=created_by, created_at=now)
            .on_conflict_do_nothing()
            .returning(ApiKeyRow.id)
        ).first()
        return None if inserted is None else self.api_key_named(name)

    def api_key_named(self, name: str) -> ApiKey | None:
        row = self._db.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
        return None if row is None else _key_from(row)

    def api_keys(self) -> list[ApiKey]:
        """Return every key, revoked ones included, oldest first."""
        rows = self._db.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id))
        return [_key_from(row) for row in rows]

    def api_key_by_hash(self, key_hash: str) -> tuple[str, ApiKey] | None:
        """Return (stored hash, key) of the key whose hash is `key_hash`, or None."""
        row = self._db.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))
        return None if row is None else (row.key_hash, _key_from(row))

    def stamp_api_key(self, name: str, now: datetime, *, every: timedelta) -> None:
        """Record that the key was used at `now`, unless it was within `every` (fewer writes)."""
        self._connection.execute(
            update(ApiKeyRow)
            .where(
                ApiKeyRow.name == name,
                or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at <= now - every),
            )
            .values(last_used_at=now)
        )

    def revoke_api_key(self, name: str, now: datetime) -> bool:
        """Revoke the key named `name`; False if there is none, or it was revoked already."""
        result = self._connection.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(ApiKeyRow.id)
        )
        return result.first() is not None
