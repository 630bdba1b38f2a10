"""Reading the bot's database behind its back, for tests that check what is (not) stored."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from core.store.tables import Base


async def every_value(database_url: str) -> list[Any]:
    """Every column value of every row of every table."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return [
                value
                for table in Base.metadata.sorted_tables
                for row in (await connection.execute(select(table))).all()
                for value in row
            ]
    finally:
        await engine.dispose()


async def rows(database_url: str, table: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(select(Base.metadata.tables[table]))).all())
    finally:
        await engine.dispose()


def holds(values: list[Any], data: bytes) -> bool:
    """Whether `data` is stored anywhere, as bytes or base64 (inside JSON or text)."""
    encoded = base64.b64encode(data).decode()
    return any(data in value if isinstance(value, bytes) else encoded in str(value) for value in values)


def mentions(values: list[Any], text: str) -> bool:
    return any(text in str(value) for value in values)
