"""ModelRepository: the server's installed models, model installs and folder scans."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from .._answers import parse, parse_list
from .._checks import check_bool, check_seconds
from .._scope import AsyncScope
from ..types.model_configs import FoundModel, ModelConfig, ModelInstallJob
from ..types.wire_events import (
    DownloadEvent,
    ModelInstallCancelledEvent,
    ModelInstallCompleteEvent,
    ModelInstallErrorEvent,
    ModelInstallEvent,
    ServerEvent,
)
from ._base import Repository, check_text, naming

if TYPE_CHECKING:
    from .._router import EventRouter

log = logging.getLogger("invokeai_client")

__all__ = ["ModelInstall", "ModelRepository"]

MODELS = "/api/v2/models"
INSTALL_POLL_INTERVAL = 1.0
"""Seconds an install waits for an event before it re-reads the job over REST."""
MAX_BUFFERED_EVENTS = 10_000

# InvokeAI 6.14 answers 204 routes (model delete, install prune) with a broken gzip stream
# (500 plus a reset connection) when the client accepts gzip; plain encoding works.
NO_GZIP = {"Accept-Encoding": "identity"}

InstallEvent = ModelInstallEvent | DownloadEvent


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    items = list(value) if isinstance(value, Iterable) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise errors.ValidationError(
            f"base must be a base model name or a list of them, got {value!r}",
            input="base",
            rule="string or strings",
        )
    return items


def _optional_text(name: str, value: object) -> None:
    if value is not None:
        check_text(name, value)


def _job_id(job_id: object) -> int:
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 0:
        raise errors.ValidationError(
            f"job_id must be a model install job id (an int >= 0), got {job_id!r}",
            input="job_id",
            rule="integer job id",
        )
    return job_id


def _is_enum_rejection(exc: errors.UnprocessableEntityError, params: Iterable[str]) -> bool:
    """A 422 saying a query value is not one of the server's enum values."""
    detail = exc.detail
    if not isinstance(detail, list) or not detail:
        return False
    wanted = set(params)
    for entry in detail:
        if not isinstance(entry, Mapping) or entry.get("type") != "enum":
            return False
        loc = list(entry.get("loc") or ())
        if len(loc) < 2 or loc[0] != "query" or loc[1] not in wanted:
            return False
    return True


class ModelRepository(Repository):
    """The models installed on the server (``client.models``).

    ``base``, ``type`` and ``format`` are open strings everywhere: a value this SDK (or the
    server) has never heard of is accepted and simply matches nothing.
    """

    async def list(
        self,
        *,
        base: str | Iterable[str] | None = None,
        type: str | None = None,
        name: str | None = None,
        format: str | None = None,
    ) -> list[ModelConfig]:
        """Installed models, filtered by base model(s), type, exact name and format.

        A filter value the server does not know (a base from a newer InvokeAI) matches
        nothing: the answer is an empty list, not an error.
        """
        for label, value in (("type", type), ("name", name), ("format", format)):
            _optional_text(label, value)
        params: dict[str, Any] = {
            "base_models": _as_list(base),
            "model_type": type,
            "model_name": name,
            "model_format": format,
        }
        try:
            answer = await self._http.request("GET", f"{MODELS}/", params=params)
        except errors.UnprocessableEntityError as exc:
            if _is_enum_rejection(exc, ("base_models", "model_type", "model_format")):
                return []
            raise
        return parse_list(ModelConfig, answer, key="models", missing_ok=True)

    async def get(self, key: str) -> ModelConfig:
        """The model with this key; :class:`~errors.NotFoundError` naming it if none."""
        check_text("key", key, in_path=True)
        with naming("model", key):
            answer = await self._http.request("GET", f"{MODELS}/i/{key}")
        return parse(ModelConfig, answer)

    async def get_by_name(self, name: str, *, base: str, type: str) -> ModelConfig:
        """The model named ``name`` of this base and type (the old name+base+type identity)."""
        check_text("name", name)
        check_text("base", base)
        check_text("type", type)
        ident = f"{name} (base {base}, type {type})"
        try:
            with naming("model", ident):
                answer = await self._http.request(
                    "GET",
                    f"{MODELS}/get_by_attrs",
                    params={"name": name, "type": type, "base": base},
                )
        except errors.UnprocessableEntityError as exc:
            if _is_enum_rejection(exc, ("type", "base")):
                raise exc.reworded(
                    f"model {ident!r} not found: this server has no base {base!r} or type "
                    f"{type!r}",
                    kind=errors.NotFoundError,
                    status=404,
                ) from None
            raise
        return parse(ModelConfig, answer)

    async def get_by_hash(self, hash: str) -> ModelConfig:
        """The model whose weights have this hash (``"blake3:..."``); survives reinstalls."""
        check_text("hash", hash)
        await self._require("models_by_hash")
        with naming("model with hash", hash):
            answer = await self._http.request(
                "GET", f"{MODELS}/get_by_hash", params={"hash": hash}
            )
        return parse(ModelConfig, answer)

    async def find(
        self, name: str, *, base: str | None = None, type: str | None = None
    ) -> builtins.list[ModelConfig]:
        """Every model with this exact name (optionally of this base and type)."""
        return await self.list(base=base, type=type, name=name)

    async def delete(self, key: str) -> None:
        """Remove the model's record (and its files if they live in the models folder)."""
        check_text("key", key, in_path=True)
        with naming("model", key, action="delete"):
            await self._http.request(
                "DELETE", f"{MODELS}/i/{key}", expect="none", headers=NO_GZIP
            )

    async def scan_folder(self, path: str) -> builtins.list[FoundModel]:
        """Model files and folders under ``path`` on the SERVER's disk (admin)."""
        check_text("path", path)
        try:
            answer = await self._http.request(
                "GET", f"{MODELS}/scan_folder", params={"scan_path": path}
            )
        except errors.BadRequestError as exc:
            raise exc.reworded(
                f"cannot scan {path!r} on the server: it is not a folder the server can read "
                f"({errors.describe_detail(exc.detail)})",
                kind=errors.BadRequestError,
            ) from None
        return parse_list(FoundModel, answer, missing_ok=True)

    # -- installs ------------------------------------------------------------------------

    async def install(
        self,
        source: str,
        *,
        name: str | None = None,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        inplace: bool = False,
        access_token: str | None = None,
        allow_unidentified: bool = False,
    ) -> ModelInstall:
        """Start installing a model; returns once the server accepted the job.

        ``source`` is a path on the server's disk, a URL, or a Hugging Face repo id
        (``owner/repo[:variant][:subfolder]``). ``name``/``description``/``config`` override
        what the server probes. Await the returned :class:`ModelInstall` for the installed
        :class:`ModelConfig`, or iterate ``.events()`` for progress.

        The server registers a file it cannot identify as base/type ``unknown``; unless
        ``allow_unidentified`` is set, that install raises :class:`~errors.ModelInstallError`
        and the useless record is removed again.
        """
        check_text("source", source)
        body = _install_body(config, name, description)
        _optional_text("access_token", access_token)
        check_bool("inplace", inplace)
        check_bool("allow_unidentified", allow_unidentified)
        # Listen before asking: a local install can finish before the HTTP answer arrives.
        watcher = _InstallWatcher(self._context.router)
        try:
            answer = await self._post_install(source, inplace, access_token, body)
        except BaseException:
            watcher.close()
            raise
        job = parse(ModelInstallJob, answer)
        return ModelInstall(self, job, watcher, allow_unidentified=allow_unidentified)

    async def _post_install(
        self, source: str, inplace: bool, access_token: str | None, body: dict[str, Any]
    ) -> Any:
        """Ask the server to start an install; its refusals become ModelInstallError."""
        try:
            return await self._http.request(
                "POST",
                f"{MODELS}/install",
                params={"source": source, "inplace": inplace, "access_token": access_token},
                json=body,
            )
        except errors.ConflictError as exc:
            raise errors.ModelInstallError(
                f"cannot install {source!r}: {errors.describe_detail(exc.detail)} (a source "
                "must be an existing path on the server, a URL, or a Hugging Face repo id)",
                source=source,
                error=errors.describe_detail(exc.detail),
            ) from exc
        except errors.APIError as exc:
            if exc.status == 415:
                raise errors.ModelInstallError(
                    f"cannot install {source!r}: the server says it is not a valid model",
                    source=source,
                    error=errors.describe_detail(exc.detail),
                ) from exc
            raise

    async def install_jobs(self) -> builtins.list[ModelInstallJob]:
        """Every install job the server remembers (running and finished)."""
        answer = await self._http.request("GET", f"{MODELS}/install")
        return parse_list(ModelInstallJob, answer, missing_ok=True)

    async def install_job(self, job_id: int) -> ModelInstallJob:
        """One install job by id; :class:`~errors.NotFoundError` naming it if unknown."""
        job_id = _job_id(job_id)
        with naming("model install job", job_id):
            answer = await self._http.request("GET", f"{MODELS}/install/{job_id}")
        return parse(ModelInstallJob, answer)

    async def prune_install_jobs(self) -> None:
        """Forget finished install jobs (completed, failed, cancelled) on the server."""
        await self._http.request("DELETE", f"{MODELS}/install", expect="none", headers=NO_GZIP)

    async def cancel_install(self, job_id: int) -> None:
        """Cancel an install job (a no-op for a job that already finished)."""
        job_id = _job_id(job_id)
        try:
            await self._http.request(
                "DELETE", f"{MODELS}/install/{job_id}", expect="none", headers=NO_GZIP
            )
        except errors.APIError as exc:
            if exc.status == 415:  # InvokeAI answers an unknown job id with 415 here
                raise exc.reworded(
                    f"model install job {job_id!r} not found", kind=errors.NotFoundError, status=404
                ) from None
            raise


def _install_body(
    config: Mapping[str, Any] | None, name: str | None, description: str | None
) -> dict[str, Any]:
    """The JSON body of an install request: ``config`` with name/description laid over it."""
    if config is not None and not isinstance(config, Mapping):
        raise errors.ValidationError(
            f"config must be a mapping of model settings, got {type(config).__name__}",
            input="config",
            rule="mapping",
        )
    _optional_text("name", name)
    if description is not None and not isinstance(description, str):
        raise errors.ValidationError(
            f"description must be a string, got {description!r}",
            input="description",
            rule="string",
        )
    body: dict[str, Any] = dict(config or {})
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    return body


class _InstallWatcher:
    """Collects model install and download events from the client's socket (see install)."""

    def __init__(self, router: EventRouter) -> None:
        self.events: list[InstallEvent] = []
        self.changed = asyncio.Event()
        self._remove = router.add_listener(self._on_event)

    def _on_event(self, event: ServerEvent) -> None:
        if isinstance(event, (ModelInstallEvent, DownloadEvent)):
            if len(self.events) >= MAX_BUFFERED_EVENTS:
                del self.events[: MAX_BUFFERED_EVENTS // 10]
            self.events.append(event)
            self.changed.set()

    def close(self) -> None:
        self._remove()


class ModelInstall(AsyncScope):
    """A model install running on the server.

    ``await install`` waits for the end and returns the installed :class:`ModelConfig`
    (raising :class:`~errors.ModelInstallError` if it failed or was cancelled);
    ``async for event in install.events()`` yields its typed progress events
    (``model_install_*`` and the ``download_*`` of its files) until it ends. The server's job
    is re-read over REST whenever no event arrives for a while, so a lost event never hangs.
    Use it as ``async with`` to cancel the job if the block fails.
    """

    def __init__(
        self,
        repo: ModelRepository,
        job: ModelInstallJob,
        watcher: _InstallWatcher,
        *,
        allow_unidentified: bool = False,
    ) -> None:
        self._repo = repo
        self.job = job
        self._watcher = watcher
        self._allow_unidentified = allow_unidentified
        self._cursor = 0
        self._result: ModelConfig | None = None

    def __repr__(self) -> str:
        return f"<ModelInstall {self.id} {self.source!r} {self.job.status}>"

    @property
    def id(self) -> int:
        """The server's job id."""
        return self.job.id

    @property
    def source(self) -> str:
        return self.job.source_text

    @property
    def status(self) -> str:
        """The last status seen (``waiting``, ``downloading``, ..., ``completed``)."""
        return self.job.status

    def _mine(self, event: InstallEvent) -> bool:
        if isinstance(event, ModelInstallEvent):
            return event.id == self.id
        urls = {str(p.get("source") or p.get("url") or "") for p in self.job.download_parts}
        urls.add(self.source)
        return event.source in urls

    def _next_events(self) -> list[InstallEvent]:
        fresh = self._watcher.events[self._cursor :]
        self._cursor = len(self._watcher.events)
        return [e for e in fresh if self._mine(e)]

    def _absorb(self, event: InstallEvent) -> None:
        """Fold an event into the job snapshot."""
        if isinstance(event, ModelInstallCompleteEvent):
            update: dict[str, Any] = {"status": "completed"}
            if event.config:
                update["config_out"] = ModelConfig.model_validate(event.config)
            self.job = self.job.model_copy(update=update)
        elif isinstance(event, ModelInstallErrorEvent):
            self.job = self.job.model_copy(
                update={"status": "error", "error_reason": event.error_type, "error": event.error}
            )
        elif isinstance(event, ModelInstallCancelledEvent):
            self.job = self.job.model_copy(update={"status": "cancelled"})
        elif event.event == "model_install_started":
            self.job = self.job.model_copy(update={"status": "running"})
        elif event.event == "model_install_download_progress":
            self.job = self.job.model_copy(
                update={
                    "status": "downloading",
                    "bytes": getattr(event, "bytes", self.job.bytes),
                    "total_bytes": getattr(event, "total_bytes", self.job.total_bytes),
                }
            )

    async def refresh(self) -> ModelInstallJob:
        """Re-read the job from the server."""
        self.job = await self._repo.install_job(self.id)
        return self.job

    async def events(self, *, poll_interval: float = INSTALL_POLL_INTERVAL) -> AsyncIterator[
        InstallEvent
    ]:
        """This job's events as they arrive, ending when the job ends."""
        check_seconds("poll_interval", poll_interval, positive=True)
        while True:
            for event in self._next_events():
                self._absorb(event)
                yield event
            if self.job.is_terminal:
                self._watcher.close()
                return
            self._watcher.changed.clear()
            if self._watcher.events[self._cursor :]:
                continue
            try:
                await asyncio.wait_for(self._watcher.changed.wait(), poll_interval)
            except asyncio.TimeoutError:
                await self.refresh()

    async def wait(self, *, poll_interval: float = INSTALL_POLL_INTERVAL) -> ModelConfig:
        """Wait for the end; the installed model, or :class:`~errors.ModelInstallError`."""
        if self._result is not None:
            return self._result
        async for _ in self.events(poll_interval=poll_interval):
            pass
        self._watcher.close()
        job = self.job
        if job.status == "completed" and job.config_out is None:
            job = await self.refresh()
        if job.status == "error":
            raise self._failed(
                f"failed: {job.error_reason or 'error'}: {job.error or 'no detail given'}",
                error_type=job.error_reason, error=job.error, traceback=job.error_traceback,
            )
        if job.status == "cancelled":
            raise self._failed("was cancelled")
        config = job.config_out
        if config is None:
            raise self._failed("ended without a model config")
        if not config.is_identified and not self._allow_unidentified:
            await self._repo.delete(config.key)
            raise self._failed(
                f"failed: the server could not identify the file as a model (base "
                f"{config.base!r}, type {config.type!r}); the record it made was removed. "
                "Pass allow_unidentified=True to keep such installs.",
                error_type="UnidentifiedModel",
            )
        self._result = config
        return config

    def _failed(self, why: str, **detail: str | None) -> errors.ModelInstallError:
        """This install's error: ``installing '<source>' <why>``, naming the job."""
        return errors.ModelInstallError(
            f"installing {self.source!r} {why}", job_id=self.id, source=self.source, **detail
        )

    def __await__(self) -> Generator[Any, None, ModelConfig]:
        return self.wait().__await__()

    async def cancel(self) -> None:
        """Cancel the job on the server (a no-op once it has ended)."""
        if not self.job.is_terminal:
            await self._repo.cancel_install(self.id)
            self.job = self.job.model_copy(update={"status": "cancelled"})
        self._watcher.close()

    async def _leave(self, exc: BaseException | None) -> None:
        if exc is not None:
            await asyncio.shield(self.cancel())
        self._watcher.close()

