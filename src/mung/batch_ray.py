"""The Ray engine of :func:`mung.batch.run_batch` (``--engine ray``): the same batch, on a
laptop (a Ray instance started in this process) or on a cluster (``--address``: a VM cluster
started with ``ray start``, or KubeRay).

- ``jobs`` actors, one CPU each, each loading the model once (``task.setup()``).
- Each actor runs two calls at a time: while one holds the model (``task.infer``), the next
  input is decoded (``task.load``); tasks without that split run ``process`` under the lock.
- At most two inputs per actor are in flight, and results come back to the driver as they
  finish, where :func:`run_batch` writes them: memory stays bounded.
- An actor that dies (killed, out of memory, its node lost) is replaced and its inputs are
  tried again, up to :data:`MAX_ATTEMPTS` times; an input that fails in ``process`` is not
  retried (it is a bad input), it is reported.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from mung.errors import MungError, describe_error

try:
    import ray
    from ray.exceptions import RayActorError
except ImportError:  # the optional extra is not installed
    raise MungError("--engine ray needs Ray: pip install 'mung[ray]'") from None

MAX_ATTEMPTS = 3  # tries per input when workers die under it
IN_FLIGHT = 2  # per actor: one decoding while one runs the model
PROBE_SECONDS = 3.0


def _probe(address: str) -> None:
    """Fail fast, in one line, on an address nothing listens on (``ray.init`` would retry for
    a minute). ``auto`` and ``ray://`` client addresses are left to Ray."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise MungError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379), "
                        "ray://HOST:10001 or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise MungError(f"--address {address}: no Ray cluster reachable there ({exc.strerror or exc}); "
                        "start one with `ray start --head` or check the address") from None


def connect(address: str | None, jobs: int) -> bool:
    """Join the cluster at ``address`` or start a local instance; True when this call started
    Ray (and so must shut it down). An already running Ray in this process is reused."""
    if address:
        _probe(address)
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=max(jobs, os.cpu_count() or 1), include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
        where = f"--address {address}" if address else "local Ray"
        raise MungError(f"{where}: cannot start or join Ray ({str(exc).splitlines()[0]})") from None
    return True


class Worker:
    """One model per actor; ``run`` is called from two threads (decode overlaps inference)."""

    def __init__(self, task: Any) -> None:
        torch.set_num_threads(1)  # one core per actor
        self.task, self.lock, self.error = task, threading.Lock(), None
        try:
            task.setup()
        except Exception as exc:  # noqa: BLE001 - reported once, stops the batch
            self.error = (str(exc) if isinstance(exc, MungError)
                          else f"{task.name}: {type(exc).__name__}: {exc}")

    def ready(self) -> str | None:
        return self.error

    def pid(self) -> int:
        return os.getpid()

    def run(self, item: Any) -> tuple[Any, str | None]:
        split = hasattr(self.task, "load") and hasattr(self.task, "infer")
        try:
            if split:
                loaded = self.task.load(item)
            with self.lock:
                result = self.task.infer(item, loaded) if split else self.task.process(item)
            return result, None
        except Exception as exc:  # one bad input must not stop a batch
            return None, describe_error(item.path, exc)


def ray_results(task: Any, items: Sequence[Any], *, jobs: int = 1, address: str | None = None
                ) -> Iterator[tuple[Any, Any, str | None]]:
    """``(item, result, error)`` in completion order, computed by ``jobs`` Ray actors."""
    started = connect(address, jobs)
    actor_cls = ray.remote(num_cpus=1, max_concurrency=IN_FLIGHT)(Worker)
    actors: list[Any] = []
    try:
        queue = deque(items)
        attempts: Counter[Any] = Counter()
        inflight: dict[Any, tuple[int, Any, Any]] = {}  # ref -> (slot, actor, item)
        load: Counter[int] = Counter()

        def spawn_actor() -> Any:
            actor = actor_cls.remote(task)
            error = ray.get(actor.ready.remote())
            if error:
                raise MungError(error)
            return actor

        actors = [actor_cls.remote(task) for _ in range(max(1, min(jobs, len(items))))]
        for error in ray.get([a.ready.remote() for a in actors]):
            if error:
                raise MungError(error)
        while queue or inflight:
            for slot, actor in enumerate(actors):
                while queue and load[slot] < IN_FLIGHT:
                    item = queue.popleft()
                    inflight[actor.run.remote(item)] = (slot, actor, item)
                    load[slot] += 1
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                slot, actor, item = inflight.pop(ref)
                load[slot] -= 1
                try:
                    result, error = ray.get(ref)
                except RayActorError:
                    attempts[item] += 1
                    if actors[slot] is actor:  # first news of this death: replace the actor
                        actors[slot] = spawn_actor()
                    if attempts[item] < MAX_ATTEMPTS:
                        queue.appendleft(item)
                        continue
                    result, error = None, f"{item.path}: its worker died {MAX_ATTEMPTS} times (memory?)"
                yield item, result, error
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
