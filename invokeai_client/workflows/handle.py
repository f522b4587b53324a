"""WorkflowHandle: one set of input values for a workflow; prepare, compile, enqueue.

A handle is a small facade over the workflow's rooms: the form and its values
(:mod:`.form`), batch data from sweeps (:mod:`._sweeps`), the asynchronous preparation that
needs the server (:mod:`._prepare`: boards, uploads, generators) and the pure compile stage
(:mod:`.compile`), whose enqueue body goes to ``client.runs``. It copies what it needs from
its :class:`WorkflowDefinition` and never writes back: many handles of one definition (one
per request in a web backend) never affect each other.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from .._checks import check_bool, check_keywords
from .._constants import DEFAULT_ORIGIN
from .._scope import AsyncScope
from ..errors import ValidationError, WorkflowError
from ..fields._base import IvkField
from ..fields.models import ModelIdentifierField
from ..fields.registry import FieldRegistry, default_registry
from ..fields.resources import LocalImage
from ..fields.schema import InvocationSchemas
from ..runs._room import check_room
from ..types.batch import EnqueueBody
from . import _prepare, _sweeps
from . import compile as _compile
from ._gui_json import gui_workflow
from .compile import BodyOptions
from .definition import WorkflowDefinition
from .form import InputKey, IvkWorkflowInput, WorkflowForm

if TYPE_CHECKING:
    from ..runs import BatchRun, WorkflowRun
    from ..types.boards import Board, BoardRef
    from ._client import WorkflowClient
    from .model_sync import ModelSyncReport

__all__ = ["InputKey", "IvkWorkflowInput", "WorkflowHandle"]


class WorkflowHandle(AsyncScope):
    """Input values for one workflow, plus the graph, batch, upload and sync operations.

    Get one from ``await client.workflows.load(...)`` (typed by the server's schemas) or make
    one offline: ``WorkflowHandle(WorkflowDefinition.from_file(path))`` (types inferred from
    the workflow's values; pass ``schemas=InvocationSchemas.bundled()`` for 6.14.2 types).
    """

    def __init__(
        self,
        definition: WorkflowDefinition,
        *,
        schemas: InvocationSchemas | None = None,
        client: WorkflowClient | None = None,
        registry: FieldRegistry | None = None,
    ) -> None:
        if not isinstance(definition, WorkflowDefinition):
            raise WorkflowError(
                f"WorkflowHandle needs a WorkflowDefinition, got {type(definition).__name__}"
            )
        self._hold(WorkflowForm(definition, schemas, registry or default_registry), client)

    def _hold(self, form: WorkflowForm, client: WorkflowClient | None) -> None:
        """Start over ``form`` (the constructor's new one, or :meth:`copy`'s copied one)."""
        self._client = client
        self._form = form
        self._uploads = _prepare.Uploads()
        self._board_ids: dict[str, str] = {}  # board input value (name or id) -> checked id

    # -- basics ----------------------------------------------------------------------------

    @property
    def definition(self) -> WorkflowDefinition:
        """The immutable workflow this handle was made from."""
        return self._form.definition

    @property
    def schemas(self) -> InvocationSchemas | None:
        """The server's node schemas typing this handle (None: types inferred from values)."""
        return self._form.schemas

    @property
    def form(self) -> WorkflowForm:
        """The form and the values set on it (what :func:`~.compile.compile` reads)."""
        return self._form

    @property
    def client(self) -> WorkflowClient | None:
        """The client :meth:`submit` sends through (None: an offline handle)."""
        return self._client

    @property
    def name(self) -> str:
        """The workflow's name, as the GUI shows it."""
        return self._form.name

    @property
    def inputs(self) -> list[IvkWorkflowInput]:
        """The form's inputs in the order the GUI shows them."""
        return list(self._form.inputs)

    def __iter__(self) -> Iterator[IvkWorkflowInput]:
        return iter(self._form.inputs)

    def __len__(self) -> int:
        return len(self._form.inputs)

    def __repr__(self) -> str:
        typed = self.schemas.source if self.schemas is not None else "types inferred"
        return f"<WorkflowHandle {self.name!r}: {len(self)} inputs, {typed}>"

    def copy(self, *, client: WorkflowClient | None = None) -> WorkflowHandle:
        """An independent handle with the same values (uploads are not shared); ``client``
        binds the copy to another client (another server: board ids are resolved anew)."""
        moved = client is not None and client is not self._client
        other = WorkflowHandle.__new__(WorkflowHandle)  # the form is copied, not built anew
        other._hold(self._form.copy(), client if moved else self._client)
        if moved:
            other._form.values.restore_names()
        else:
            other._board_ids = dict(self._board_ids)
        return other

    __copy__ = copy

    # -- keys and values -------------------------------------------------------------------

    def input(self, key: InputKey | IvkWorkflowInput) -> IvkWorkflowInput:
        """The form input for ``key``: its index, its label or ``"node_id.field_name"``."""
        return self._form.input(key)

    def field(self, key: InputKey | IvkWorkflowInput) -> IvkField[Any]:
        """The typed field for ``key`` (form inputs, or any node input by
        ``"node_id.field_name"``)."""
        return self._form.field(key)

    def set(self, key: InputKey | IvkWorkflowInput, value: Any) -> WorkflowHandle:
        """Set an input's value (checked now; returns the handle for chaining)."""
        self._form.set(key, value)
        return self

    def update(
        self, values: Mapping[InputKey, Any] | Iterable[tuple[InputKey, Any]] = (), **by_key: Any
    ) -> WorkflowHandle:
        """Set several inputs at once (all are checked before any is changed)."""
        pairs = list(values.items() if isinstance(values, Mapping) else values)
        pairs.extend(by_key.items())
        self._form.update(pairs)
        return self

    def get(self, key: InputKey | IvkWorkflowInput) -> Any:
        """The current value of an input (``UNSET`` when it has none)."""
        return self._form.field(key).value

    def unset(self, key: InputKey | IvkWorkflowInput) -> WorkflowHandle:
        """Remove an input's value: the server's default applies."""
        self._form.unset(key)
        return self

    def values(self) -> dict[str, Any]:
        """``{label: value}`` of the form's inputs (keys are ``node_id.field_name`` where
        labels repeat)."""
        return self._form.by_label()

    def is_explicit(self, key: InputKey | IvkWorkflowInput) -> bool:
        """Whether the value was set through this handle (model sync never overrides those)."""
        return self._form.is_explicit(key)

    def set_node(
        self, node_id: str, *, use_cache: bool | None = None, is_intermediate: bool | None = None
    ) -> WorkflowHandle:
        """Change a node's cache use or whether its images are intermediate (gallery-hidden)."""
        self._form.set_node(node_id, use_cache=use_cache, is_intermediate=is_intermediate)
        return self

    def model_fields(self) -> list[ModelIdentifierField]:
        """Every model input of the workflow (form or not) with its current value."""
        return self._form.model_fields()

    # -- compile ---------------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Everything that would stop this workflow from running (empty when it can run)."""
        form = self._form
        return _compile.check(form.definition, form.values, form.schemas, uploads=self._uploads)

    def build_graph(
        self, *, board: str | Board | None = None, validate: bool = True
    ) -> dict[str, Any]:
        """The API graph InvokeAI's GUI would enqueue for this workflow and these values.

        ``board`` is the auto-add board, a board id or :class:`Board` (no server is asked
        here, so names are resolved only by :meth:`submit`): board inputs left on ``"auto"``
        save there (else nowhere, like the GUI with "Auto-add: none"). With ``validate`` the
        build fails with a :class:`ValidationError` listing every missing required input or
        bad value.
        """
        form = self._form
        return _compile.compile_graph(
            form.definition, form.values, form.schemas, board=_board_id(board),
            uploads=self._uploads, validate=validate,
        )

    def compile(
        self,
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        board: str | Board | None = None,
        dry_run: bool = False,
        **options: Unpack[BodyOptions],
    ) -> EnqueueBody:
        """The typed enqueue body of this workflow and these values (nothing is sent).

        Arguments as for :meth:`build_batch`; datums may name their input by key
        (``{"input": "Seed", "items": [...]}``). With ``dry_run`` local images that are not
        uploaded yet pass under a placeholder name (to check everything before uploading).
        """
        check_keywords("WorkflowHandle.compile", options, BodyOptions.__annotations__)
        form = self._form
        return _compile.compile(
            form.definition, form.values, form.schemas,
            board=_board_id(board),
            uploads=_compile.DRY_RUN_UPLOADS if dry_run else self._uploads,
            data=_sweeps.resolve_data(data, form.full_key),
            **options,
        )

    def build_batch(
        self,
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        board: str | Board | None = None,
        **options: Unpack[BodyOptions],
    ) -> dict[str, Any]:
        """The body of ``POST /api/v1/queue/{queue_id}/enqueue_batch`` (nothing is sent).

        ``data`` is ``Batch.data``: a list of groups; the groups are combined as a cartesian
        product and the datums inside one group are zipped. A datum is
        ``{"node_path", "field_name", "items"}`` or ``{"input": <key>, "items"}``; every item
        is checked with the input's field type (the server would accept a wrong-typed item
        and then stall its whole queue on it). The workflow's batch and generator nodes add
        their groups first. ``board`` is the auto-add board. The keyword ``options``
        (:class:`~invokeai_client.workflows.compile.BodyOptions`: ``runs``, ``batch_id``,
        ``origin``, ``destination``, ``prepend``, ``validate``, ``attach_workflow``):
        ``runs`` repeats everything; ``batch_id`` defaults to a new UUID so the caller can
        watch the batch before it is enqueued. The dict form of :meth:`compile`.
        """
        # not dry_run: that one is compile()'s own
        check_keywords("WorkflowHandle.build_batch", options, BodyOptions.__annotations__)
        return self.compile(data=data, board=board, **options).to_dict()

    def batch_datum(self, key: InputKey | IvkWorkflowInput, items: Iterable[Any]) -> dict[str, Any]:
        """A checked ``Batch.data`` datum that varies one input over ``items``."""
        form = self._form
        target = form.field(key)
        datum = {"node_path": target.node_id, "field_name": target.name, "items": items}
        return _sweeps.typed_datum(
            form.definition, form.values, form.schemas, datum, where=target.display_name(),
            images=_compile.image_resolver(self._uploads, strict=True),
        )

    def to_workflow_dict(self) -> dict[str, Any]:
        """The workflow JSON with this handle's values, as the GUI would save it."""
        form = self._form
        converted = _compile.convert(form.values, self._uploads)
        return gui_workflow(form.definition, form.values, converted)

    # -- local images ----------------------------------------------------------------------

    def local_images(self) -> list[tuple[IvkField[Any], LocalImage]]:
        """Local image values (paths, bytes, PIL images) that are not uploaded yet."""
        return self._form.local_images(self._uploads)

    @property
    def uploads(self) -> list[str]:
        """Names of the images this handle uploaded (deleted by :meth:`delete_uploads`)."""
        return list(self._uploads.uploaded)

    async def upload_images(
        self, *, board: Any = None, intermediate: bool = True
    ) -> builtins.list[str]:
        """Upload every local image value once, through ``client.images.upload`` (file reads
        and PIL encoding off the event loop; anything that is not an image is refused before
        it is sent).

        Cleanup policy: the handle owns these uploads. They are reused by later builds and
        submits of this handle, and deleted by :meth:`delete_uploads` or when an
        ``async with handle:`` block ends; nothing else deletes them. They are uploaded as
        ``user`` images, intermediate (hidden from the gallery) unless ``intermediate=False``,
        on ``board`` (an id, a Board or a name) if given. Returns the new image names.
        """
        names = []
        for _field, image in self.local_images():
            if image not in self._uploads:
                images = self._require_client("upload images").images
                names.append(await self._uploads.upload(
                    images, image, board=board, intermediate=intermediate
                ))
        return names

    async def delete_uploads(self) -> None:
        """Delete the images this handle uploaded (already-deleted ones are skipped)."""
        if self._uploads.uploaded:
            await self._uploads.delete_all(self._require_client("delete uploads").images)

    async def _leave(self, exc: BaseException | None) -> None:
        await self.delete_uploads()

    def _require_client(self, action: str) -> WorkflowClient:
        if self._client is None:
            raise WorkflowError(
                f"cannot {action}: this handle has no client (load it with "
                "'await client.workflows.load(...)' or pass client= to WorkflowHandle)"
            )
        return self._client

    # -- server-backed steps ---------------------------------------------------------------

    async def submit(
        self,
        *,
        board: BoardRef | None = None,
        prepend: bool = False,
        origin: str | None = DEFAULT_ORIGIN,
        destination: str | None = None,
        detach: bool = False,
    ) -> WorkflowRun:
        """Enqueue this workflow once with the current values; returns its run as soon as
        the server has it (``await run`` for the result, ``run.events()`` for progress).

        Local image values are uploaded first. ``board`` is the auto-add board for image
        outputs (a board id, name or :class:`~invokeai_client.types.boards.Board`, resolved
        by ``client.boards.resolve``); ``prepend`` puts the item at the front of the queue.
        A workflow whose batch nodes make several items needs :meth:`submit_batch`.
        Cancelling a task that awaits the run cancels the item on the server unless
        ``detach`` is true.
        """
        client = self._require_client("submit")
        check_bool("detach", detach)
        options: dict[str, Any] = {"prepend": prepend, "origin": origin,
                                   "destination": destination}
        board_id = await self._prepare(client, board, [], options)
        body = self.compile(board=board_id, **options)
        return await client.runs.submit_body(body, detach=detach)

    async def submit_batch(
        self,
        sweep: Mapping[InputKey, Iterable[Any]] | None = None,
        *,
        zip: bool | Sequence[Sequence[InputKey]] = False,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        runs: int = 1,
        board: BoardRef | None = None,
        prepend: bool = False,
        origin: str | None = DEFAULT_ORIGIN,
        destination: str | None = None,
        detach: bool = False,
    ) -> BatchRun:
        """Enqueue every combination of ``sweep`` values in ONE request; returns the batch.

        ``sweep`` maps input keys (index, label or ``"node_id.field_name"``) to the values to
        try. Inputs vary independently (a cartesian product, the first key outermost) unless
        zipped: ``zip=True`` zips all of them (equal lengths), ``zip=[["Seed", "Prompt"]]``
        zips the inputs of each listed group. ``data`` adds raw ``Batch.data`` groups;
        ``runs`` repeats everything. Every value is checked against its input's type before
        anything is sent. ``board`` is the auto-add board, as for :meth:`submit`.
        """
        client = self._require_client("submit a batch")
        check_bool("detach", detach)
        groups = self.sweep_groups(sweep, zip=zip)
        names = _sweeps.swept_names(groups, self._form)
        if data is not None:
            groups.extend(self.sweep_groups(None, data=data))
        options: dict[str, Any] = {"data": groups, "runs": runs, "prepend": prepend,
                                   "origin": origin, "destination": destination}
        board_id = await self._prepare(client, board, groups, options)
        await _prepare.upload_batch_items(client.images, self._form, groups, self._uploads)
        body = self.compile(board=board_id, **options)
        await check_room(client.context, body.item_count)  # refused whole before sending
        return await client.runs.enqueue(body, detach=detach, names=names)

    def sweep_groups(
        self,
        sweep: Mapping[InputKey, Iterable[Any]] | None,
        *,
        zip: bool | Sequence[Sequence[InputKey]] = False,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """The ``Batch.data`` groups of a sweep (as :meth:`submit_batch` takes it) plus raw
        ``data`` groups; datums of the sweep name their input under ``"input"``."""
        groups = _sweeps.sweep_groups(sweep or {}, zip, self._form.full_key)
        if data is not None:
            groups.extend(
                [dict(datum) for datum in group]
                for group in _sweeps.resolve_data(data, self._form.full_key)
            )
        return groups

    async def _prepare(
        self, client: WorkflowClient, board: Any, groups: list[list[dict[str, Any]]],
        options: dict[str, Any],
    ) -> str | None:
        """What submit asks the server before it compiles: model names, board ids, uploads.
        When there is anything else to ask, a dry-run compile first makes everything knowable
        locally fail before any request."""
        from .model_sync import resolve_model_names

        names, images, boards = _prepare.server_needs(
            self._form.values, self._uploads, self._board_ids
        )
        if names:
            await resolve_model_names(self._form, client)
        if board is not None or images or boards or _prepare.has_image_items(self._form, groups):
            self.compile(dry_run=True, attach_workflow=False, **options)  # checks only
        board_id = await _prepare.resolve_board(client.boards, board)
        if boards:
            await _prepare.resolve_board_inputs(client.boards, self._form.values, self._board_ids)
        if images:
            await self.upload_images()
        return board_id

    async def sync_models(self) -> ModelSyncReport:
        """Point every model input at a model installed on the server (key, then hash, then
        name + base + type). Values you set on this handle are never replaced (a key or name
        you set is looked up among the installed models of the input's base and type); the
        definition is never changed. Raises ModelNotFoundError listing candidates when a
        model is missing, ModelChoiceError when a name you set matches several.
        """
        from .model_sync import sync_models

        return await sync_models(self._form, self._require_client("sync models"))

    async def resolve_generators(self) -> None:
        """Compute the generator nodes that need the server (board images, dynamic prompts)."""
        client = self._require_client("resolve generators")
        await _prepare.resolve_generators(self._form, client.context.http)


def _board_id(board: Any) -> str | None:
    if board is None:
        return None
    if isinstance(board, str):
        if board in ("none", ""):
            return None
        return board
    board_id = getattr(board, "board_id", None)
    if isinstance(board_id, str):
        return board_id
    raise ValidationError(
        f"board must be a board id or a board object, got {type(board).__name__}",
        input="board",
        rule="board id",
    )
