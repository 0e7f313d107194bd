"""Feedback from concurrent requests, stored in one commit per group.

A 201 promises the sample is on disk; one fsync per sample would cap the app at the
disk's sync rate. So requests wait in a bounded queue, and one task stores whatever
has gathered in one transaction, then answers each request. A full queue answers 503
with Retry-After: the client tries again, and nothing it sent is lost unacknowledged.
"""

from __future__ import annotations

import asyncio

from serving.app.http import ApiError
from store.feedback import FeedbackStore
from store.samples import Feedback, Stored

GROUP_COMMIT_MAX = 256  # samples in one commit
GROUP_COMMIT_QUEUE = 2048  # requests waiting for a commit; beyond it, 503


class GroupCommit:
    def __init__(self, store: FeedbackStore, bound: int = GROUP_COMMIT_QUEUE) -> None:
        self.store = store
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=bound)
        self.task: asyncio.Task | None = None

    async def add(self, item: Feedback) -> Stored:
        done = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, done))
        except asyncio.QueueFull:
            message = "too much feedback is waiting to be stored; retry shortly"
            raise ApiError(503, message, {"Retry-After": "1"}) from None
        return await done

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self.queue.get()]
            while not self.queue.empty() and len(group) < GROUP_COMMIT_MAX:
                group.append(self.queue.get_nowait())
            try:
                stored = await loop.run_in_executor(
                    None, self.store.add_many, [item for item, _ in group]
                )
            except Exception as err:  # noqa: BLE001 - every waiting request learns of it
                for _, done in group:
                    if not done.done():
                        done.set_exception(err)
                continue
            for (_, done), result in zip(group, stored, strict=True):
                if not done.done():
                    done.set_result(result)
