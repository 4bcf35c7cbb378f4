"""The screening job on Dask distributed: the same step functions (`steps.scan`, `steps.gather`,
`steps.evaluate`) sent to Dask workers as they are, one task per chunk or partition.

With no scheduler address, a local cluster of worker *processes* bound to 127.0.0.1 is started (the rules
are pure Python: threads would share one interpreter lock). Spill files live in a folder every worker can
read: the local disk here, a shared filesystem on a multi-machine cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from cds_service.population.steps import cpu_count

T = TypeVar("T")


class DaskEngine:
    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        self.workers = workers or cpu_count()
        self.scheduler = scheduler
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> DaskEngine:
        import dask
        from dask.distributed import Client, LocalCluster

        # The worker's statistical profiler samples every thread every 10 ms: measurable on CPU-bound tasks.
        dask.config.set({"distributed.worker.profile.enabled": False})
        if self.scheduler:
            self._client = Client(self.scheduler)  # type: ignore[no-untyped-call]
            self.workers = len(self._client.scheduler_info().get("workers", {})) or self.workers
        else:
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # loopback, a free port
                silence_logs=40,  # errors only: worker chatter would drown the progress lines
            )
            self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
        from cds_service.population.steps import worker_setup

        self._client.run(worker_setup)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def description(self) -> str:
        if self._client is None:
            return f"dask, {self.workers} workers"
        workers = sorted(self._client.scheduler_info().get("workers", {}))
        return f"dask, {len(workers)} workers: {', '.join(workers)}"

    def share(self, value: Any) -> Any:
        """Send a large argument of many calls to every worker once (a future the workers resolve)."""
        if self._client is None:
            raise RuntimeError("use DaskEngine as a context manager")
        # A list of one: scatter would otherwise send each element of an iterable (a set) on its own.
        return self._client.scatter([value], broadcast=True, hash=False)[0]

    def run(self, function: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        if self._client is None:
            raise RuntimeError("use DaskEngine as a context manager")
        if not calls:
            return
        from dask.distributed import as_completed

        futures = self._client.map(function, *zip(*calls, strict=True), pure=False)
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            yield future.result()
