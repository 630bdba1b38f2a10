"""The conversation store: history, usage and per-key locks on SQLite or PostgreSQL (SQLAlchemy 2, async).

Only core/assistant.py, answer.py, access.py and personas.py import this package; adapters never do. No
SQLAlchemy error leaves it.
"""

from core.errors import StoreError
from core.store.admin import Forgotten, Stats, SubjectKind
from core.store.advisory import Lease
from core.store.history import Store, open_store
from core.store.images import NewImage
from core.store.locks import KeyedLock
from core.store.messages import ConversationRecord, NewMessage, StoredMessage
from core.store.migrate import upgrade
from core.store.usage import UsageKind, UsageTotals

__all__ = [
    "ConversationRecord",
    "Forgotten",
    "KeyedLock",
    "Lease",
    "NewImage",
    "NewMessage",
    "Stats",
    "Store",
    "StoreError",
    "StoredMessage",
    "SubjectKind",
    "UsageKind",
    "UsageTotals",
    "open_store",
    "upgrade",
]
