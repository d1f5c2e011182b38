"""The run store's tables: evaluation runs, their items, per-agent steps, results, and threads.

`mg_item_threads` names the graph thread of every item an evaluation has started (recorded or not),
so deleting a run finds all of its checkpoints and KV entries by exact id, never by prefix.
`mg_leases` says which process (or worker) works on which item of a run (see `storage.leases`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Thread ids of evaluation items are UUIDs derived from (run, item): stable across resumes and
# valid thread ids for the LangGraph server.
ITEM_THREAD_NAMESPACE = uuid.UUID("6f1d2b8e-5a51-4a0b-9d3c-6d2f3b0e7a11")


def item_thread_id(run_id: str, item_id: str) -> str:
    """The graph thread id of one item of one run."""
    return str(uuid.uuid5(ITEM_THREAD_NAMESPACE, f"{run_id}\x00{item_id}"))


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "mg_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(64))
    data: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)
    items: Mapped[list[Item]] = relationship(back_populates="run", cascade="all, delete-orphan")
    results: Mapped[list[Result]] = relationship(cascade="all, delete-orphan")


class Item(Base):
    __tablename__ = "mg_items"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_item_per_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("mg_runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    group: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # done | failed
    question: Mapped[str | None] = mapped_column(Text)
    gold: Mapped[Any] = mapped_column(JSON)
    prediction: Mapped[str | None] = mapped_column(Text)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    generated_tokens: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    run: Mapped[Run] = relationship(back_populates="items")
    steps: Mapped[list[Step]] = relationship(cascade="all, delete-orphan", order_by="Step.seq")


class Step(Base):
    __tablename__ = "mg_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_pk: Mapped[int] = mapped_column(ForeignKey("mg_items.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    generated_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latent_steps: Mapped[int | None] = mapped_column(Integer)
    kv_positions: Mapped[int | None] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    failure: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Result(Base):
    __tablename__ = "mg_results"
    __table_args__ = (UniqueConstraint("run_id", "metric", "group", name="uq_result"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("mg_runs.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(64), default="all")
    value: Mapped[float] = mapped_column(Float)


class Thread(Base):
    """A single `masgraph run` thread: which graph and options it runs with, for `masgraph resume`."""

    __tablename__ = "mg_threads"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    item: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ItemThread(Base):
    """The graph thread of an item an evaluation started (written before the graph runs)."""

    __tablename__ = "mg_item_threads"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_thread_per_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("mg_runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(128))
    thread_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Lease(Base):
    """Which process works on an item of a run, until when (epoch seconds); renewed while it works.

    A row without an owner, or whose lease has expired, may be claimed by any process or worker.
    """

    __tablename__ = "mg_leases"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_lease_per_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("mg_runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(160), index=True)
    expires: Mapped[float | None] = mapped_column(Float)
