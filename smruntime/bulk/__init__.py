"""Score a whole dataset through an endpoint: bounded, adaptive, in order or as completed.

``Client.invoke_many`` is the entry point; ``BulkScheduler`` is its sans-IO core, shared by
every shell (threads here, asyncio next to the AsyncClient).
"""

from smruntime.bulk.scheduler import BulkResult, BulkScheduler, as_input
from smruntime.bulk.threaded import invoke_many

__all__ = ["BulkResult", "BulkScheduler", "as_input", "invoke_many"]
