"""Many InvokeAI servers as one: scheduling, failover and durable, resumable jobs.

``async with ServerPool([url, ...]) as pool`` holds one client per server;
``job = await pool.submit_batch(handle, sweep=...)`` spreads a sweep over them as they
drain; ``async for result in job.as_completed()`` gives each variation's one result.
See docs/pool.md.
"""

from ._pool_run import PoolRun, ServerAssigned
from .job import PoolJob
from .lock import JobLock
from .manifest import Manifest
from .pool import ServerPool
from .results import Attempt, PoolResult, Progress, ServerProgress
from .scheduler import Policy, ServerState, plan

__all__ = [
    "Attempt",
    "JobLock",
    "Manifest",
    "Policy",
    "PoolJob",
    "PoolResult",
    "PoolRun",
    "Progress",
    "ServerAssigned",
    "ServerPool",
    "ServerProgress",
    "ServerState",
    "plan",
]
