"""The framework's one error: a stack mutation or composition that breaks a rule."""

from __future__ import annotations


class StackError(Exception):
    """A middleware stack mutation broke a rule (empty, duplicate or unknown ID), or a
    middleware cannot run on the chain it was composed into (a sync-only one on an asyncio
    chain, an async-only one on a sync chain).

    A stack made by a client raises its client's subclass
    (:class:`smruntime.errors.StackError`); catching this class catches both.
    """
