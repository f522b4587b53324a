"""The double's model manager: ``/api/v2/models`` records, installs with faked progress, scans.

Records look like InvokeAI 6.14's model configs. ``double.add_model(...)`` puts one in place
(no weights needed). Installs follow the real server's rules and events:

- a local path that exists: ``model_install_started`` then, for a file with a model
  extension, ``model_install_complete`` (registered as base/type ``unknown``, as the real
  server does for a file it cannot identify), else ``model_install_error`` (ValueError);
- a URL or Hugging Face repo id: ``download_started``/``download_progress``/
  ``download_complete``, ``model_install_download_progress``,
  ``model_install_downloads_complete``, ``model_install_started``, ``model_install_complete``;
- anything else: 409 ``Unsupported model source``.

``double.model_install_overrides[source]`` sets fields of the config an install produces
(e.g. ``{"base": "sdxl", "type": "main"}``); ``double.model_install_delay`` paces events.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from aiohttp import web

from ...types.model_configs import KNOWN_BASES, KNOWN_FORMATS, KNOWN_TYPES
from .http import error, json_response, missing

if TYPE_CHECKING:
    from .app import DoubleApp

MODEL_EXTENSIONS = (".bin", ".ckpt", ".gguf", ".onnx", ".pt", ".pth", ".safetensors")
HF_REPO = re.compile(r"^([^/:]+/[^/:]+)(?::([^:]*)(?::/?([^:]+))?)?$")
DOWNLOAD_SIZE = 4 * 1024 * 1024
DOWNLOAD_STEPS = 4


def install(double: DoubleApp) -> None:
    """Add the model routes to ``double``."""
    routes = _Routes(double)
    base = "/api/v2/models"
    double.route("GET", f"{base}/", routes.list_models)
    double.route("GET", f"{base}/get_by_attrs", routes.get_by_attrs)
    double.route("GET", f"{base}/get_by_hash", routes.get_by_hash)
    double.route("GET", f"{base}/scan_folder", routes.scan_folder)
    double.route("GET", f"{base}/install", routes.list_installs)
    double.route("POST", f"{base}/install", routes.start_install)
    double.route("DELETE", f"{base}/install", routes.prune_installs)
    double.route("GET", f"{base}/install/{{id}}", routes.get_install)
    double.route("DELETE", f"{base}/install/{{id}}", routes.cancel_install)
    double.route("GET", f"{base}/i/{{key}}", routes.get_model)
    double.route("DELETE", f"{base}/i/{{key}}", routes.delete_model)


def add_model(
    double: DoubleApp,
    name: str,
    *,
    base: str = "sd-1",
    type: str = "main",
    format: str = "checkpoint",
    key: str | None = None,
    hash: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Register a model config on the double; returns the record as the server sends it."""
    key = key or str(uuid.uuid4())
    digest = hashlib.blake2b(f"{name}:{base}:{type}".encode(), digest_size=32).hexdigest()
    record: dict[str, Any] = {
        "key": key,
        "hash": hash or f"blake3:{digest}",
        "path": f"{key}/{name}.safetensors",
        "file_size": 1024,
        "name": name,
        "description": None,
        "source": f"/models/{name}.safetensors",
        "source_type": "path",
        "source_api_response": None,
        "source_url": None,
        "cover_image": None,
        "type": type,
        "trigger_phrases": None,
        "default_settings": None,
        "format": format,
        "base": base,
    }
    if type == "main":
        record.update({"variant": "normal", "prediction_type": "epsilon"})
    record.update(fields)
    double.models[key] = record
    return record


def _size(path: str) -> int:
    target = Path(path)
    return target.stat().st_size if target.is_file() else 0


def _enum_error(loc: list[Any], value: str, allowed: tuple[str, ...]) -> web.HTTPException:
    quoted = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
    return error(
        422,
        [{"type": "enum", "loc": loc, "msg": f"Input should be {quoted}", "input": value,
          "ctx": {"expected": quoted}}],
    )


class _Routes:
    def __init__(self, double: DoubleApp) -> None:
        self.d = double
        self.next_job_id = 0

    def _admin(self, request: web.Request) -> dict[str, Any]:
        user = self.d.current_user(request)
        if not user.get("is_admin"):
            raise error(403, "Admin privileges required")
        return user

    # -- records -------------------------------------------------------------------------

    async def list_models(self, request: web.Request) -> web.Response:
        self.d.current_user(request)
        q = request.query
        bases = q.getall("base_models", [])
        for i, b in enumerate(bases):
            if b not in KNOWN_BASES:
                raise _enum_error(["query", "base_models", i], b, KNOWN_BASES)
        mtype, fmt, name = q.get("model_type"), q.get("model_format"), q.get("model_name")
        if mtype is not None and mtype not in KNOWN_TYPES:
            raise _enum_error(["query", "model_type"], mtype, KNOWN_TYPES)
        if fmt is not None and fmt not in KNOWN_FORMATS:
            raise _enum_error(["query", "model_format"], fmt, KNOWN_FORMATS)
        found = [
            m
            for m in self.d.models.values()
            if (not bases or m["base"] in bases)
            and (mtype is None or m["type"] == mtype)
            and (fmt is None or m["format"] == fmt)
            and (name is None or m["name"] == name)
        ]
        found.sort(key=lambda m: (bases.index(m["base"]) if bases else 0, m["name"]))
        return json_response({"models": found})

    async def get_model(self, request: web.Request) -> web.Response:
        self.d.current_user(request)
        record = self.d.models.get(request.match_info["key"])
        if record is None:
            raise error(404, "model not found")
        return json_response(record)

    async def get_by_attrs(self, request: web.Request) -> web.Response:
        self.d.current_user(request)
        q = request.query
        for field in ("name", "type", "base"):
            if field not in q:
                raise missing(["query", field])
        if q["type"] not in KNOWN_TYPES:
            raise _enum_error(["query", "type"], q["type"], KNOWN_TYPES)
        if q["base"] not in KNOWN_BASES:
            raise _enum_error(["query", "base"], q["base"], KNOWN_BASES)
        for m in sorted(self.d.models.values(), key=lambda m: m["name"]):
            if m["name"] == q["name"] and m["type"] == q["type"] and m["base"] == q["base"]:
                return json_response(m)
        raise error(404, "No model found with these attributes")

    async def get_by_hash(self, request: web.Request) -> web.Response:
        self.d.current_user(request)
        if "hash" not in request.query:
            raise missing(["query", "hash"])
        for m in self.d.models.values():
            if m["hash"] == request.query["hash"]:
                return json_response(m)
        raise error(404, "No model found with this hash")

    async def delete_model(self, request: web.Request) -> web.Response:
        self._admin(request)
        if self.d.models.pop(request.match_info["key"], None) is None:
            raise error(404, "model not found")
        return web.Response(status=204)

    async def scan_folder(self, request: web.Request) -> web.Response:
        self._admin(request)
        scan_path = request.query.get("scan_path")
        failed = error(400, f"The search path '{scan_path}' could not be scanned")
        if not scan_path:
            raise failed

        def scan() -> list[str] | None:
            root = Path(scan_path)
            if not root.is_dir():
                return None
            return sorted(
                str(p) for p in root.rglob("*") if p.is_file() and p.suffix in MODEL_EXTENSIONS
            )

        found = await asyncio.to_thread(scan)
        if found is None:
            raise failed
        installed = {m.get("source") for m in self.d.models.values()}
        return json_response([{"path": p, "is_installed": p in installed} for p in found])

    # -- installs ------------------------------------------------------------------------

    def _source(self, text: str) -> dict[str, Any] | None:
        stripped = text.strip('"')
        if Path(stripped).exists():
            return {"path": stripped, "inplace": False, "type": "local"}
        match = HF_REPO.match(text)
        if match:
            return {"repo_id": match.group(1), "variant": match.group(2) or None,
                    "subfolder": match.group(3), "access_token": None, "type": "hf"}
        if re.match(r"^https?://[^/]+", text):
            return {"url": text, "access_token": None, "type": "url"}
        return None

    async def start_install(self, request: web.Request) -> web.Response:
        self._admin(request)
        source_text = request.query.get("source")
        if source_text is None:
            raise missing(["query", "source"])
        try:
            config_in = await request.json() if request.can_read_body else {}
        except ValueError:
            config_in = None
        if not isinstance(config_in, dict):
            raise error(422, [{"type": "model_attributes_type", "loc": ["body"],
                               "msg": "Input should be a valid dictionary", "input": config_in}])
        source = await asyncio.to_thread(self._source, source_text)
        if source is None:
            raise error(409, f"Unsupported model source: '{source_text}'")
        job_id = self.next_job_id
        self.next_job_id += 1
        local = source["type"] == "local"
        size = await asyncio.to_thread(_size, source["path"]) if local else DOWNLOAD_SIZE
        job: dict[str, Any] = {
            "id": job_id,
            "status": "running" if local else "waiting",
            "error_reason": None,
            "config_in": {"source": source_text if local else None, **config_in},
            "config_out": None,
            "inplace": bool(request.query.get("inplace") == "true"),
            "source": source,
            "local_path": source["path"] if local else f"/tmp/invokeai-download-{job_id}",
            "bytes": size if local else 0,
            "total_bytes": size if local else 0,
            "source_metadata": None,
            "download_parts": [],
            "error": None,
            "error_traceback": None,
        }
        self.d.model_installs[job_id] = job
        snapshot = dict(job)
        self.d.spawn(self._run_install(job, source_text))
        return json_response(snapshot, 201)

    async def _emit(self, event: str, data: dict[str, Any]) -> None:
        await self.d.emit(event, data, room="admin")

    async def _run_install(self, job: dict[str, Any], source_text: str) -> None:
        """An install job's life, with the server's events: download (for URLs and repos),
        start, then the model registered or the error; a cancel stops it between steps."""
        delay = float(self.d.model_install_delay)
        ident = {"id": job["id"], "source": job["source"]}
        await asyncio.sleep(delay)
        if job["status"] == "cancelled":
            return
        if job["source"]["type"] != "local" and not await self._download(job, ident, delay):
            return
        job["status"] = "running"
        await self._emit("model_install_started", ident)
        await asyncio.sleep(delay)
        if job["status"] == "cancelled":
            await self._emit("model_install_cancelled", ident)
            return
        overrides = dict(self.d.model_install_overrides.get(source_text, {}))
        if job["source"]["type"] == "local":
            suffix = Path(job["source"]["path"]).suffix
            is_dir = await asyncio.to_thread(Path(job["source"]["path"]).is_dir)
            if suffix not in MODEL_EXTENSIONS and not is_dir:
                await self._fail_install(job, ident, suffix)
                return
            name = Path(job["source"]["path"]).stem
            overrides = {"base": "unknown", "type": "unknown", "format": "unknown", **overrides}
        else:
            url = job["download_parts"][0]["url"]
            name = Path(urlparse(url).path).stem or job["source"].get("repo_id", "model")
        record = self._register(job, source_text, name, overrides)
        job["status"] = "completed"
        job["config_out"] = record
        await self._emit(
            "model_install_complete",
            {**ident, "key": record["key"], "total_bytes": job["total_bytes"], "config": record},
        )

    async def _download(self, job: dict[str, Any], ident: dict[str, Any], delay: float) -> bool:
        """Fake download of a URL or repo in steps, with the download events; False when
        the job was cancelled on the way."""
        url = job["source"].get("url") or (
            f"https://huggingface.co/{job['source']['repo_id']}/resolve/main/model.safetensors"
        )
        path = f"{job['local_path']}/{Path(urlparse(url).path).name or 'model'}"
        job["status"] = "downloading"
        job["total_bytes"] = DOWNLOAD_SIZE
        part = {"url": url, "local_path": path, "bytes": 0, "total_bytes": DOWNLOAD_SIZE}
        job["download_parts"] = [part]
        await self.d.emit("download_started", {"source": url, "download_path": path},
                          room="admin")
        for step in range(1, DOWNLOAD_STEPS + 1):
            await asyncio.sleep(delay)
            if job["status"] == "cancelled":
                await self.d.emit("download_cancelled", {"source": url}, room="admin")
                await self._emit("model_install_cancelled", ident)
                return False
            done = DOWNLOAD_SIZE * step // DOWNLOAD_STEPS
            job["bytes"] = part["bytes"] = done
            await self.d.emit(
                "download_progress",
                {"source": url, "download_path": path, "current_bytes": done,
                 "total_bytes": DOWNLOAD_SIZE},
                room="admin",
            )
            await self._emit(
                "model_install_download_progress",
                {**ident, "local_path": job["local_path"], "bytes": done,
                 "total_bytes": DOWNLOAD_SIZE, "parts": [dict(part)]},
            )
        await self.d.emit(
            "download_complete",
            {"source": url, "download_path": path, "total_bytes": DOWNLOAD_SIZE},
            room="admin",
        )
        job["status"] = "downloads_done"
        await self._emit("model_install_downloads_complete", ident)
        await asyncio.sleep(delay)
        if job["status"] == "cancelled":
            await self._emit("model_install_cancelled", ident)
            return False
        return True

    async def _fail_install(self, job: dict[str, Any], ident: dict[str, Any],
                            suffix: str) -> None:
        """A local file that is no model: the job's error, as the server reports it."""
        job["status"] = "error"
        job["error_reason"] = "ValueError"
        job["error"] = (
            f"File extension {suffix} is not a recognized model format. Expected one "
            f"of: {', '.join(MODEL_EXTENSIONS)}"
        )
        job["error_traceback"] = (
            f"Traceback (most recent call last):\nValueError: {job['error']}\n"
        )
        await self._emit(
            "model_install_error",
            {**ident, "error_type": "ValueError", "error": job["error"]},
        )

    def _register(self, job: dict[str, Any], source_text: str, name: str,
                  overrides: dict[str, Any]) -> dict[str, Any]:
        """The installed model's record: probed (``overrides``), then the job's config."""
        config_in = {k: v for k, v in (job["config_in"] or {}).items() if v is not None}
        config_in.pop("source", None)
        fields = {**overrides, **config_in}
        return add_model(
            self.d,
            str(fields.pop("name", name)),
            base=str(fields.pop("base", "sd-1")),
            type=str(fields.pop("type", "main")),
            format=str(fields.pop("format", "checkpoint")),
            source=source_text,
            source_type="path" if job["source"]["type"] == "local" else job["source"]["type"],
            file_size=job["total_bytes"],
            **fields,
        )

    async def list_installs(self, request: web.Request) -> web.Response:
        self._admin(request)
        return json_response(list(self.d.model_installs.values()))

    def _job(self, request: web.Request, status: int) -> dict[str, Any]:
        try:
            job_id = int(request.match_info["id"])
        except ValueError:
            raise error(422, [{"type": "int_parsing", "loc": ["path", "id"],
                               "msg": "Input should be a valid integer",
                               "input": request.match_info["id"]}]) from None
        job = self.d.model_installs.get(job_id)
        if job is None:
            raise error(status, f"No job with id {job_id} known")
        return job

    async def get_install(self, request: web.Request) -> web.Response:
        self._admin(request)
        return json_response(self._job(request, 404))

    async def cancel_install(self, request: web.Request) -> web.Response:
        self._admin(request)
        job = self._job(request, 415)
        if job["status"] not in ("completed", "error", "cancelled"):
            job["status"] = "cancelled"
        return json_response(None, 201)

    async def prune_installs(self, request: web.Request) -> web.Response:
        self._admin(request)
        for job_id, job in list(self.d.model_installs.items()):
            if job["status"] in ("completed", "error", "cancelled"):
                del self.d.model_installs[job_id]
        return web.Response(status=204)
