"""What a stack's media store and database keep of the photos customers sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Set

from sqlalchemy import select

from bot.core.db import session_scope
from bot.core.media.models import Attachment
from bot.core.media.storage import make_media_store
from bot.tools.runner import Stack


def stored_photos(stack: Stack, conversation_id: str) -> List[Dict[str, Any]]:
    """The conversation's attachments (database rows), where their files are and the bytes
    the media store keeps, oldest first."""
    store = make_media_store(stack.settings)
    media_dir = stack.settings.media_dir
    with session_scope(stack.settings.database_url) as session:
        rows = session.scalars(
            select(Attachment)
            .where(Attachment.conversation_id == conversation_id)
            .order_by(Attachment.id)
        ).all()
        return [
            {
                "id": row.id,
                "ticket_id": row.ticket_id,
                "channel": row.channel,
                "content_type": row.content_type,
                "size": (row.width, row.height),
                "path": media_dir / row.file_key,
                "thumbnail_path": media_dir / row.thumbnail_key,
                "data": store.get(row.file_key),
                "thumbnail": store.get(row.thumbnail_key),
            }
            for row in rows
        ]


def media_files(stack: Stack) -> Set[Path]:
    """Every file under the stack's media directory (temporary ones included)."""
    root = stack.settings.media_dir
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()
