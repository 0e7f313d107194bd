"""Server-side batching: concurrent requests merged into one model call, split back after.

It keeps the semantics of TF Serving's BasicBatchScheduler as its batching parameters
describe them: requests for the same servable, signature and inner shapes join an open
batch of at most `max_batch_size` rows; a batch runs when it is full, or once its oldest
request has waited `batch_timeout_micros` and one of `num_batch_threads` is free; a new
batch beyond `max_enqueued_batches` waiting ones is refused with UNAVAILABLE (503).
With `allowed_batch_sizes` a batch is padded up to the next allowed size with copies of
its first row, and the padding is dropped from the outputs.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from serving.model_server.config_protos import BatchingParameters
from serving.model_server.errors import Code, ServingError, invalid_argument
from serving.model_server.servable import Servable

# TF Serving's defaults for parameters the file leaves out (BasicBatchScheduler::Options).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_MAX_ENQUEUED_BATCHES = 10
QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclasses.dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    context: Any
    future: asyncio.Future


@dataclasses.dataclass
class _Batch:
    key: tuple
    servable: Servable
    signature: str
    deadline: float
    tasks: list[_Task] = dataclasses.field(default_factory=list)
    rows: int = 0
    full: bool = False


def _value(params: BatchingParameters, field: str, default: int) -> int:
    return getattr(params, field).value if params.HasField(field) else default


def batch_rows(inputs: dict[str, np.ndarray]) -> int:
    sizes = set()
    for array in inputs.values():
        if array.ndim == 0:
            raise invalid_argument("Batching Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) != 1:
        raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


class BatchScheduler:
    """Runs batches on its own threads; `respond` turns a batch's outputs into answers.

    `respond(outputs, [(rows, context), ...])` returns one answer per request, in order;
    `context` is what each caller passed to run(). It runs on the batch thread, so work
    on the answers (the server's JSON encoding) is done once per batch, off the loop.
    """

    def __init__(
        self,
        params: BatchingParameters,
        respond: Callable[[dict[str, np.ndarray], list[tuple[int, Any]]], list],
        on_batch: Callable[[str, int], None] = lambda model, rows: None,
    ) -> None:
        self.max_batch_size = _value(params, "max_batch_size", DEFAULT_MAX_BATCH_SIZE)
        self.timeout = _value(params, "batch_timeout_micros", 0) / 1e6
        self.max_enqueued = _value(params, "max_enqueued_batches", DEFAULT_MAX_ENQUEUED_BATCHES)
        self.num_threads = _value(params, "num_batch_threads", os.cpu_count() or 1)
        self.allowed_sizes = sorted(params.allowed_batch_sizes)
        if self.allowed_sizes and self.allowed_sizes[-1] != self.max_batch_size:
            raise ValueError("the last allowed_batch_sizes entry must equal max_batch_size")
        name = params.thread_pool_name.value or "model_server_batch_threads"
        self._executor = ThreadPoolExecutor(self.num_threads, thread_name_prefix=name)
        self._on_batch = on_batch
        self._respond = respond
        self._queue: collections.deque[_Batch] = collections.deque()
        self._open: dict[tuple, _Batch] = {}
        self._free = self.num_threads
        self._timer: asyncio.TimerHandle | None = None

    async def run(
        self,
        servable: Servable,
        signature: str,
        inputs: dict[str, np.ndarray],
        context: Any = None,
    ) -> Any:
        rows = batch_rows(inputs)
        if rows > self.max_batch_size:
            raise invalid_argument(
                f"Task size {rows} is larger than maximum input batch size {self.max_batch_size}"
            )
        loop = asyncio.get_running_loop()
        key = (
            id(servable),
            signature,
            tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(inputs.items())),
        )
        batch = self._open.get(key)
        if batch is not None and batch.rows + rows > self.max_batch_size:
            self._close(batch)
            batch = None
        if batch is None:
            if len(self._queue) >= self.max_enqueued:
                raise ServingError(Code.UNAVAILABLE, QUEUE_FULL)
            batch = _Batch(key, servable, signature, deadline=loop.time() + self.timeout)
            self._open[key] = batch
            self._queue.append(batch)
        task = _Task(inputs, rows, context, loop.create_future())
        batch.tasks.append(task)
        batch.rows += rows
        if batch.rows == self.max_batch_size:
            self._close(batch)
        self._dispatch()
        return await task.future

    def _close(self, batch: _Batch) -> None:
        batch.full = True
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._free > 0:
            batch = next((b for b in self._queue if b.full or b.deadline <= now), None)
            if batch is None:
                break
            self._queue.remove(batch)
            self._close(batch)
            self._free -= 1
            loop.create_task(self._execute(batch))
        # Wake up when the oldest waiting batch is due (a timer may fire a little early,
        # so this re-arms until the batch has really run).
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._free > 0 and self._queue:
            due = min(b.deadline for b in self._queue)
            self._timer = loop.call_at(max(due, now + 1e-4), self._dispatch)

    async def _execute(self, batch: _Batch) -> None:
        # Requests that gave up while the batch waited (their deadline passed) are not
        # run: the batch shrinks to the ones still waiting, or is not run at all.
        batch.tasks = [task for task in batch.tasks if not task.future.done()]
        batch.rows = sum(task.rows for task in batch.tasks)
        if not batch.tasks:
            self._free += 1
            self._dispatch()
            return
        try:
            answers = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._call, batch
            )
        except Exception as e:  # noqa: BLE001 - every waiting client gets the error
            error = e if isinstance(e, ServingError) else ServingError(Code.INTERNAL, str(e))
            for task in batch.tasks:
                if not task.future.done():
                    task.future.set_exception(error)
        else:
            for task, answer in zip(batch.tasks, answers, strict=True):
                if not task.future.done():
                    task.future.set_result(answer)
        finally:
            self._free += 1
            self._dispatch()

    def _call(self, batch: _Batch) -> list:
        names = batch.tasks[0].inputs.keys()
        merged = {k: np.concatenate([t.inputs[k] for t in batch.tasks]) for k in names}
        size = next((s for s in self.allowed_sizes if s >= batch.rows), batch.rows)
        if size > batch.rows:
            merged = {
                k: np.concatenate([v, np.repeat(v[:1], size - batch.rows, axis=0)])
                for k, v in merged.items()
            }
        outputs = batch.servable.run(batch.signature, merged)
        for name, value in outputs.items():
            if value.ndim == 0 or value.shape[0] != size:
                raise ServingError(
                    Code.INTERNAL,
                    f"Batched output tensor {name} has 0th dimension "
                    f"{value.shape[0] if value.ndim else 'none'} but the batch has {size} rows",
                )
        self._on_batch(batch.servable.name, size)
        outputs = {k: v[: batch.rows] for k, v in outputs.items()}
        return self._respond(outputs, [(task.rows, task.context) for task in batch.tasks])

    def close(self) -> None:
        self._executor.shutdown(wait=True)
