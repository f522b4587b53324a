"""The typed sync proxies: repositories, workflow handles, runs, results, images.

Each class declares its members one line each: ``name = blocking(AsyncClass.name)`` for a
method (its parameters and docs come from the async method; its return type is the sync view
of the async one), ``name: Attr[T] = Attr()`` for an attribute. The behaviour is generic
(:mod:`._proxy`); these declarations exist so that type checkers and IDEs see the sync API.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from typing_extensions import ParamSpec

from ..repositories.boards import BoardRepository
from ..repositories.images import (
    BULK_DOWNLOAD_TIMEOUT,
    ImageLike,
    ImageRepository,
    ImagesArg,
    UploadScope,
    UploadSource,
)
from ..repositories.models import ModelInstall, ModelRepository
from ..repositories.queue import QueueRepository
from ..repositories.workflows import WorkflowRepository, WorkflowSource
from ..runs import BatchRun, ImageRef, RunManager, WorkflowResult, WorkflowRun
from ..types.boards import BoardRef
from ..types.images import ImageDTO
from ..workflows.handle import InputKey, WorkflowHandle
from ._proxy import (
    Attr,
    ContextProxy,
    Proxy,
    Settable,
    blocking,
    chaining,
    iterating,
    paging,
    plain,
    proxies,
)

if TYPE_CHECKING:
    from ..types.queue import BatchStatus
    from ..types.workflows import WorkflowRecord
    from ..workflows.definition import WorkflowDefinition
    from ..workflows.handle import IvkWorkflowInput

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

__all__ = [
    "SyncBatchRun",
    "SyncBoards",
    "SyncImageRef",
    "SyncImages",
    "SyncModelInstall",
    "SyncModels",
    "SyncQueue",
    "SyncRuns",
    "SyncUploadScope",
    "SyncWorkflowHandle",
    "SyncWorkflowResult",
    "SyncWorkflowRun",
    "SyncWorkflows",
]


# -- results ---------------------------------------------------------------------------------


@proxies(ImageRef)
class SyncImageRef(Proxy[ImageRef]):
    """An output image: ``download()`` gives its PNG bytes, ``save(folder)`` writes it."""

    __slots__ = ()

    image_name: Attr[str] = Attr()
    width: Attr[int | None] = Attr()
    height: Attr[int | None] = Attr()
    download = blocking(ImageRef.download)
    save = blocking(ImageRef.save)

    def _repr_png_(self) -> bytes | None:
        """The image, for Jupyter/IPython to show inline (None when it cannot be fetched)."""
        try:
            return self.download()
        except Exception:  # a display hook never raises: IPython shows the repr instead
            return None


@proxies(WorkflowResult)
class SyncWorkflowResult(Proxy[WorkflowResult]):
    """The outcome of one queue item (see :class:`~invokeai_client.WorkflowResult`); its
    images are :class:`SyncImageRef` s."""

    __slots__ = ()

    status: Attr[str] = Attr()
    item_id: Attr[int] = Attr()
    batch_id: Attr[str] = Attr()
    session_id: Attr[str | None] = Attr()
    outputs: Attr[Mapping[str, Any]] = Attr()
    images: Attr[tuple[SyncImageRef, ...]] = Attr()
    image: Attr[SyncImageRef] = Attr()
    field_values: Attr[Mapping[str, Any]] = Attr()
    error_node_id: Attr[str | None] = Attr()
    error_type: Attr[str | None] = Attr()
    error_message: Attr[str | None] = Attr()
    error_traceback: Attr[str | None] = Attr()
    ok: Attr[bool] = Attr()
    error = plain(WorkflowResult.error)
    raise_for_status = chaining(WorkflowResult.raise_for_status)

    def __getitem__(self, node_id: str) -> Any:
        """The output of graph node ``node_id``."""
        return self._invoke("__getitem__", (node_id,), {})

    def __iter__(self) -> Iterator[str]:
        return iter(self._target)


# -- runs --------------------------------------------------------------------------------------


@proxies(WorkflowRun)
class SyncWorkflowRun(Proxy[WorkflowRun]):
    """One queue item on its way through the server.

    ``run.result(timeout=None)`` (or ``run.wait()``) blocks until it is done and returns its
    :class:`SyncWorkflowResult`, raising ``RunFailedError``/``RunCanceledError``... when it
    did not complete. ``for event in run.events():`` yields its typed events. Ctrl-C while
    waiting cancels the server item unless the run is detached.
    """

    __slots__ = ()
    _live = True

    item_id: Attr[int] = Attr()
    batch_id: Attr[str] = Attr()
    session_id: Attr[str | None] = Attr()
    status: Attr[str] = Attr()
    index: Attr[int] = Attr()
    current_node: Attr[str | None] = Attr()
    batch: Attr[SyncBatchRun] = Attr()
    done: Attr[bool] = Attr()
    detached: Attr[bool] = Attr()
    outputs: Attr[Mapping[str, Any]] = Attr()
    detach = chaining(WorkflowRun.detach)
    result = blocking(WorkflowRun.result, returns=SyncWorkflowResult)
    wait = blocking(WorkflowRun.result, returns=SyncWorkflowResult)
    cancel = blocking(WorkflowRun.cancel)
    events = iterating(WorkflowRun.events)

    def retry(self, *, detach: bool = False) -> SyncWorkflowRun:
        """Run this failed or canceled item again; returns the new item's run."""
        return self._invoke("retry", (), {"detach": detach})  # type: ignore[no-any-return]

    def result_nowait(self) -> SyncWorkflowResult | None:
        """The result if the run is done, else None; never raises."""
        return self._invoke("result_nowait", (), {})  # type: ignore[no-any-return]


@proxies(BatchRun)
class SyncBatchRun(Proxy[BatchRun]):
    """The queue items of one enqueue call.

    ``for result in batch.as_completed():`` yields each item's result as it finishes;
    ``batch.results(timeout=None)`` (or ``batch.wait()``) gives them all in submission order.
    Ctrl-C while waiting cancels the batch on the server unless it is detached.
    """

    __slots__ = ()
    _live = True

    batch_id: Attr[str] = Attr()
    runs: Attr[builtins.list[SyncWorkflowRun]] = Attr()
    item_ids: Attr[builtins.list[int]] = Attr()
    copies: Attr[builtins.list[int]] = Attr()
    done: Attr[bool] = Attr()
    counts: Attr[BatchStatus] = Attr()
    expected: Attr[int] = Attr()
    origin: Attr[str | None] = Attr()
    destination: Attr[str | None] = Attr()
    priority: Attr[int] = Attr()
    confirmed: Attr[bool] = Attr()
    detached: Attr[bool] = Attr()
    names: Attr[Mapping[str, str]] = Attr()
    detach = chaining(BatchRun.detach)
    cancel = blocking(BatchRun.cancel)
    events = iterating(BatchRun.events)
    as_completed = iterating(BatchRun.as_completed, returns=SyncWorkflowResult)
    results = blocking(BatchRun.results, returns=builtins.list[SyncWorkflowResult])
    wait = blocking(BatchRun.results, returns=builtins.list[SyncWorkflowResult])
    field_values = plain(BatchRun.field_values)

    def __len__(self) -> int:
        return len(self._target)

    def __iter__(self) -> Iterator[SyncWorkflowRun]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> SyncWorkflowRun:
        return self.runs[index]


class SyncRuns(Proxy[RunManager]):
    """Runs of the client (``client.runs``): submit raw graphs or enqueue bodies, attach to
    existing items (see :class:`~invokeai_client.RunManager`)."""

    __slots__ = ()
    _live = True

    max_concurrency: Attr[int | None] = Attr()
    in_flight: Attr[int] = Attr()
    batches: Attr[builtins.list[SyncBatchRun]] = Attr()
    quiet_after: Settable[float] = Settable()
    poll_interval: Settable[float] = Settable()
    rest_checks: Attr[int] = Attr()
    unreachable_after: Settable[float] = Settable()
    enqueue_fate_window: Settable[float] = Settable()
    submit = blocking(RunManager.submit, returns=SyncWorkflowRun)
    submit_body = blocking(RunManager.submit_body, returns=SyncWorkflowRun)
    submit_batch = blocking(RunManager.submit_batch, returns=SyncBatchRun)
    enqueue = blocking(RunManager.enqueue, returns=SyncBatchRun)
    attach = blocking(RunManager.attach, returns=SyncWorkflowRun)
    retry = blocking(RunManager.retry, returns=SyncWorkflowRun)
    stats = plain(RunManager.stats)


# -- workflows -------------------------------------------------------------------------------


@proxies(WorkflowHandle)
class SyncWorkflowHandle(ContextProxy[WorkflowHandle]):
    """Input values for one workflow (see :class:`~invokeai_client.WorkflowHandle`).

    Setting and reading values, building graphs and batches work exactly as on the async
    handle; ``submit()``/``submit_batch()`` block until the server has the items and return
    :class:`SyncWorkflowRun` / :class:`SyncBatchRun`. ``with handle:`` deletes the images it
    uploaded when the block ends.
    """

    __slots__ = ()

    definition: Attr[WorkflowDefinition] = Attr()
    schemas: Attr[Any] = Attr()
    name: Attr[str] = Attr()
    inputs: Attr[builtins.list[IvkWorkflowInput]] = Attr()
    uploads: Attr[builtins.list[str]] = Attr()
    client: Attr[Any] = Attr()
    form: Attr[Any] = Attr()
    copy = chaining(WorkflowHandle.copy)
    input = plain(WorkflowHandle.input)
    field = plain(WorkflowHandle.field)
    set = chaining(WorkflowHandle.set)
    get = plain(WorkflowHandle.get)
    unset = chaining(WorkflowHandle.unset)
    values = plain(WorkflowHandle.values)
    is_explicit = plain(WorkflowHandle.is_explicit)
    set_node = chaining(WorkflowHandle.set_node)
    validate = plain(WorkflowHandle.validate)
    build_graph = plain(WorkflowHandle.build_graph)
    build_batch = plain(WorkflowHandle.build_batch)
    compile = plain(WorkflowHandle.compile)
    sweep_groups = plain(WorkflowHandle.sweep_groups)
    batch_datum = plain(WorkflowHandle.batch_datum)
    to_workflow_dict = plain(WorkflowHandle.to_workflow_dict)
    local_images = plain(WorkflowHandle.local_images)
    model_fields = plain(WorkflowHandle.model_fields)
    upload_images = blocking(WorkflowHandle.upload_images)
    delete_uploads = blocking(WorkflowHandle.delete_uploads)
    submit = blocking(WorkflowHandle.submit, returns=SyncWorkflowRun)
    submit_batch = blocking(WorkflowHandle.submit_batch, returns=SyncBatchRun)
    sync_models = blocking(WorkflowHandle.sync_models)
    resolve_generators = blocking(WorkflowHandle.resolve_generators)

    def update(
        self,
        values: Mapping[InputKey, Any] | Iterable[tuple[InputKey, Any]] = (),
        **by_key: Any,
    ) -> SyncWorkflowHandle:
        """Set several inputs at once (all are checked before any is changed)."""
        self._target.update(values, **by_key)
        return self

    def __iter__(self) -> Iterator[IvkWorkflowInput]:
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


class SyncWorkflows(Proxy[WorkflowRepository]):
    """Workflows (``client.workflows``): load GUI exports as :class:`SyncWorkflowHandle` s,
    and the server's workflow library."""

    __slots__ = ()
    _live = True

    schemas = blocking(WorkflowRepository.schemas)
    load = blocking(WorkflowRepository.load, returns=SyncWorkflowHandle)
    list = paging(WorkflowRepository.list)
    get_record = blocking(WorkflowRepository.get_record)
    get = blocking(WorkflowRepository.get, returns=SyncWorkflowHandle)
    delete = blocking(WorkflowRepository.delete)
    set_public = blocking(WorkflowRepository.set_public)
    tags = blocking(WorkflowRepository.tags)
    counts_by_category = blocking(WorkflowRepository.counts_by_category)

    def create(self, workflow: WorkflowSource | WorkflowHandle | SyncWorkflowHandle) -> (
        WorkflowRecord
    ):
        """Save a workflow in the library as a new user workflow; its record."""
        return self._invoke("create", (workflow,), {})  # type: ignore[no-any-return]

    def update(
        self,
        workflow: WorkflowSource | WorkflowHandle | SyncWorkflowHandle,
        *,
        workflow_id: str | None = None,
    ) -> WorkflowRecord:
        """Replace a saved workflow's JSON (id: ``workflow_id`` or the workflow's own)."""
        return self._invoke(  # type: ignore[no-any-return]
            "update", (workflow,), {"workflow_id": workflow_id}
        )


# -- repositories ------------------------------------------------------------------------------


class SyncBoards(Proxy[BoardRepository]):
    """Boards (``client.boards``), see :class:`~invokeai_client.BoardRepository`."""

    __slots__ = ()
    _live = True

    resolve = blocking(BoardRepository.resolve)
    resolve_board = blocking(BoardRepository.resolve_board)
    all = blocking(BoardRepository.all)
    list = paging(BoardRepository.list)
    get = blocking(BoardRepository.get)
    find = blocking(BoardRepository.find)
    create = blocking(BoardRepository.create)
    get_or_create = blocking(BoardRepository.get_or_create)
    update = blocking(BoardRepository.update)
    rename = blocking(BoardRepository.rename)
    archive = blocking(BoardRepository.archive)
    unarchive = blocking(BoardRepository.unarchive)
    delete = blocking(BoardRepository.delete)
    image_names = blocking(BoardRepository.image_names)
    add_images = blocking(BoardRepository.add_images)
    remove_images = blocking(BoardRepository.remove_images)


@proxies(UploadScope)
class SyncUploadScope(ContextProxy[UploadScope]):
    """Uploads deleted together when ``with scope:`` ends (see
    :class:`~invokeai_client.UploadScope`)."""

    __slots__ = ()

    uploaded: Attr[builtins.list[ImageDTO]] = Attr()
    names: Attr[builtins.list[str]] = Attr()
    adopt = plain(UploadScope.adopt)
    keep = plain(UploadScope.keep)
    cleanup = blocking(UploadScope.cleanup)

    def upload(self, image: UploadSource, **options: Any) -> ImageDTO:
        """Upload like ``client.images.upload``, and remember it for deletion."""
        return self._invoke("upload", (image,), options)  # type: ignore[no-any-return]


class SyncImages(Proxy[ImageRepository]):
    """Images (``client.images``), see :class:`~invokeai_client.ImageRepository`."""

    __slots__ = ()
    _live = True

    upload = blocking(ImageRepository.upload)
    upload_scope = plain(ImageRepository.upload_scope, returns=SyncUploadScope)
    get = blocking(ImageRepository.get)
    get_many = blocking(ImageRepository.get_many)
    exists = blocking(ImageRepository.exists)
    metadata = blocking(ImageRepository.metadata)
    workflow = blocking(ImageRepository.workflow)
    url = plain(ImageRepository.url)
    png_for_display = plain(ImageRepository.png_for_display)
    update = blocking(ImageRepository.update)
    star = blocking(ImageRepository.star)
    unstar = blocking(ImageRepository.unstar)
    delete = blocking(ImageRepository.delete)
    delete_many = blocking(ImageRepository.delete_many)
    delete_uncategorized = blocking(ImageRepository.delete_uncategorized)
    list = paging(ImageRepository.list)
    intermediates_count = blocking(ImageRepository.intermediates_count)
    clear_intermediates = blocking(ImageRepository.clear_intermediates)

    def uploading(self, image: UploadSource, **options: Any) -> AbstractContextManager[ImageDTO]:
        """Upload an image for the duration of a ``with`` block; deleted when it ends."""
        return self._invoke("uploading", (image,), options)  # type: ignore[no-any-return]

    @overload
    def download(self, image: ImageLike, dest: None = None, *, thumbnail: bool = False) -> (
        bytes
    ): ...

    @overload
    def download(
        self, image: ImageLike, dest: str | os.PathLike[str], *, thumbnail: bool = False
    ) -> Path: ...

    def download(
        self, image: ImageLike, dest: str | os.PathLike[str] | None = None, *,
        thumbnail: bool = False,
    ) -> bytes | Path:
        """The image file: as bytes (no ``dest``), or streamed into ``dest`` (a folder or a
        file path; returns the path)."""
        return self._invoke(  # type: ignore[no-any-return]
            "download", (image, dest), {"thumbnail": thumbnail}
        )

    @overload
    def thumbnail(self, image: ImageLike, dest: None = None) -> bytes: ...

    @overload
    def thumbnail(self, image: ImageLike, dest: str | os.PathLike[str]) -> Path: ...

    def thumbnail(self, image: ImageLike, dest: str | os.PathLike[str] | None = None) -> (
        bytes | Path
    ):
        """The image's WebP thumbnail, as bytes or saved into ``dest``."""
        return self._invoke("thumbnail", (image, dest), {})  # type: ignore[no-any-return]

    @overload
    def download_zip(
        self, images: ImagesArg | None = None, *, board: BoardRef | None = None,
        dest: None = None, timeout: float | None = BULK_DOWNLOAD_TIMEOUT,
    ) -> bytes: ...

    @overload
    def download_zip(
        self, images: ImagesArg | None = None, *, board: BoardRef | None = None,
        dest: str | os.PathLike[str], timeout: float | None = BULK_DOWNLOAD_TIMEOUT,
    ) -> Path: ...

    def download_zip(
        self, images: ImagesArg | None = None, *, board: BoardRef | None = None,
        dest: str | os.PathLike[str] | None = None,
        timeout: float | None = BULK_DOWNLOAD_TIMEOUT,
    ) -> bytes | Path:
        """Several images (or a board's) as one zip the server builds: bytes, or saved into
        ``dest`` (returns the path)."""
        return self._invoke(  # type: ignore[no-any-return]
            "download_zip", (images,), {"board": board, "dest": dest, "timeout": timeout}
        )


@proxies(ModelInstall)
class SyncModelInstall(ContextProxy[ModelInstall]):
    """A model install running on the server: ``install.wait()`` blocks until it ends and
    returns the installed model; ``for event in install.events():`` shows progress;
    ``with install:`` cancels the job if the block fails."""

    __slots__ = ()
    _live = True

    id: Attr[int] = Attr()
    source: Attr[str] = Attr()
    status: Attr[str] = Attr()
    job: Attr[Any] = Attr()
    refresh = blocking(ModelInstall.refresh)
    events = iterating(ModelInstall.events)
    wait = blocking(ModelInstall.wait)
    cancel = blocking(ModelInstall.cancel)


class SyncModels(Proxy[ModelRepository]):
    """Installed models (``client.models``), see :class:`~invokeai_client.ModelRepository`."""

    __slots__ = ()
    _live = True

    list = blocking(ModelRepository.list)
    get = blocking(ModelRepository.get)
    get_by_name = blocking(ModelRepository.get_by_name)
    get_by_hash = blocking(ModelRepository.get_by_hash)
    find = blocking(ModelRepository.find)
    delete = blocking(ModelRepository.delete)
    scan_folder = blocking(ModelRepository.scan_folder)
    install = blocking(ModelRepository.install, returns=SyncModelInstall)
    install_jobs = blocking(ModelRepository.install_jobs)
    install_job = blocking(ModelRepository.install_job)
    prune_install_jobs = blocking(ModelRepository.prune_install_jobs)
    cancel_install = blocking(ModelRepository.cancel_install)


class SyncQueue(Proxy[QueueRepository]):
    """The session queue (``client.queue``), see :class:`~invokeai_client.QueueRepository`."""

    __slots__ = ()
    _live = True

    queue_id: Attr[str] = Attr()
    status = blocking(QueueRepository.status)
    batch_status = blocking(QueueRepository.batch_status)
    counts_by_destination = blocking(QueueRepository.counts_by_destination)
    get = blocking(QueueRepository.get)
    current = blocking(QueueRepository.current)
    next = blocking(QueueRepository.next)
    item_ids = blocking(QueueRepository.item_ids)
    get_many = blocking(QueueRepository.get_many)
    get_summaries = blocking(QueueRepository.get_summaries)
    list = paging(QueueRepository.list)
    list_full = paging(QueueRepository.list_full)
    cancel = blocking(QueueRepository.cancel)
    cancel_batch = blocking(QueueRepository.cancel_batch)
    cancel_destination = blocking(QueueRepository.cancel_destination)
    cancel_all_except_current = blocking(QueueRepository.cancel_all_except_current)
    retry = blocking(QueueRepository.retry)
    delete = blocking(QueueRepository.delete)
    delete_destination = blocking(QueueRepository.delete_destination)
    delete_all_except_current = blocking(QueueRepository.delete_all_except_current)
    prune = blocking(QueueRepository.prune)
    clear = blocking(QueueRepository.clear)
    pause = blocking(QueueRepository.pause)
    resume = blocking(QueueRepository.resume)
    cache_status = blocking(QueueRepository.cache_status)
    enable_cache = blocking(QueueRepository.enable_cache)
    disable_cache = blocking(QueueRepository.disable_cache)
    clear_cache = blocking(QueueRepository.clear_cache)

