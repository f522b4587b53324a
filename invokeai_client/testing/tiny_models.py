"""Tiny random-weight diffusion models for tests, demos and CI: no download, real machinery.

InvokeAI's own venv has torch, diffusers and transformers, so this module asks that Python to
write seeded random-weight models in diffusers format (``_tiny_build.py``), once, into a
cache folder beside the InvokeAI install. They install like any model through the SDK's own
``client.models.install(path, inplace=True)`` and InvokeAI probes them as the real thing:

========================  ======  ====  ===============================================
name                      base    type  what
========================  ======  ====  ===============================================
``tiny-sd1``              sd-1    main  StableDiffusionPipeline, ~12 MB
``tiny-sdxl``             sdxl    main  StableDiffusionXLPipeline (two text encoders)
``tiny-sd1-vae``          sd-1    vae   a standalone AutoencoderKL
``tiny-sd1-lora``         sd-1    lora  a kohya-style LoRA for ``tiny-sd1``'s attention
========================  ======  ====  ===============================================

A 64x64, 3-step text-to-image run takes about half a second on a CPU. **The weights are
random: the images are noise.** The protocol, the events, the step previews, the model
loading and the queue are the server's real ones.

FLUX is not here: InvokeAI 6.14 builds a FLUX transformer from fixed full-size presets
(checkpoint format), and its FLUX denoise node accepts only that class, not the diffusers
``FluxTransformer2DModel`` a small diffusers folder would load as.

Command line::

    python -m invokeai_client.testing.tiny_models build          # print the folder
    python -m invokeai_client.testing.tiny_models install URL    # into a server on this machine
    python -m invokeai_client.testing.tiny_models serve          # a local InvokeAI with them
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .local import LocalServerError, cache_dir, ensure_installed

if TYPE_CHECKING:
    from ..client import AsyncClient
    from ..types.model_configs import ModelConfig

__all__ = [
    "TINY_MODELS",
    "TinyModel",
    "build_tiny_models",
    "install_tiny_models",
    "install_tiny_models_blocking",
    "tiny_models_dir",
]

BUILD_SCRIPT = Path(__file__).with_name("_tiny_build.py")


@dataclass(frozen=True)
class TinyModel:
    """One tiny model: its name, where it lies in the cache folder, what InvokeAI makes of it."""

    name: str
    base: str
    type: str
    file: str | None = None  # a single-file model (the LoRA); else the folder is the model

    def path(self, root: Path) -> Path:
        folder = root / self.name
        return folder / self.file if self.file else folder


TINY_MODELS: Mapping[str, TinyModel] = {
    m.name: m
    for m in (
        TinyModel("tiny-sd1", "sd-1", "main"),
        TinyModel("tiny-sdxl", "sdxl", "main"),
        TinyModel("tiny-sd1-vae", "sd-1", "vae"),
        TinyModel("tiny-sd1-lora", "sd-1", "lora", file="tiny-sd1-lora.safetensors"),
    )
}
"""Every tiny model by name."""


def tiny_models_dir() -> Path:
    """The cache folder of this build script's models (a new script builds a new folder)."""
    digest = hashlib.sha256(BUILD_SCRIPT.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"tiny-models-{digest}"


def _names(names: Iterable[str] | None) -> list[str]:
    chosen = list(TINY_MODELS) if names is None else list(names)
    unknown = [n for n in chosen if n not in TINY_MODELS]
    if unknown:
        raise ValueError(f"unknown tiny models {unknown}; known: {sorted(TINY_MODELS)}")
    return chosen


def build_tiny_models(names: Iterable[str] | None = None) -> Path:
    """Build the tiny models not yet in the cache (a few seconds each, once); the folder.

    Installs InvokeAI first if needed (its Python does the work). Safe to call from several
    processes at once: a lock file serialises builds.
    """
    import fcntl

    chosen = _names(names)
    root = tiny_models_dir()
    if all(TINY_MODELS[n].path(root).exists() for n in chosen):
        return root
    venv = ensure_installed()
    root.mkdir(parents=True, exist_ok=True)
    with open(root.parent / ".tiny-models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [n for n in chosen if not TINY_MODELS[n].path(root).exists()]
        if not missing:
            return root
        started = time.monotonic()
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1")
        result = subprocess.run(
            [str(venv / "bin" / "python"), str(BUILD_SCRIPT), str(root), *missing],
            capture_output=True, text=True, env=env, check=False,
        )
        if result.returncode != 0:
            raise LocalServerError(
                f"building tiny models {missing} failed:\n{result.stderr[-3000:]}"
            )
        (root / "built.txt").write_text(
            f"{' '.join(missing)} built in {time.monotonic() - started:.1f}s\n"
        )
    return root


async def install_tiny_models(
    client: AsyncClient, names: Iterable[str] | None = None
) -> dict[str, ModelConfig]:
    """Make sure the server has these tiny models (all by default); their configs by name.

    Builds what is missing (in a worker thread), then installs each model the server does
    not have yet by name, base and type, in place from the cache folder. The server must run
    on this machine (it reads the folder).
    """
    import anyio

    chosen = _names(names)
    root = await anyio.to_thread.run_sync(build_tiny_models, chosen)
    installed: dict[str, ModelConfig] = {}
    for name in chosen:
        model = TINY_MODELS[name]
        found = await client.models.find(name, base=model.base, type=model.type)
        if found:
            installed[name] = found[0]
        else:
            install = await client.models.install(str(model.path(root)), inplace=True)
            installed[name] = await install
    return installed


def install_tiny_models_blocking(
    url: str, names: Iterable[str] | None = None, **client_options: Any
) -> dict[str, ModelConfig]:
    """:func:`install_tiny_models` for code without an event loop (fixtures, scripts): it
    opens an ``AsyncClient(url, **client_options)`` in a worker thread of its own."""
    import threading

    from ..client import AsyncClient

    found: dict[str, ModelConfig] = {}
    failure: list[BaseException] = []

    async def install() -> None:
        async with AsyncClient(url, **client_options) as client:
            found.update(await install_tiny_models(client, names))

    def work() -> None:
        try:
            asyncio.run(install())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=work, name="install-tiny-models")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return found


def _serve(port: int | None) -> int:
    import contextlib
    import signal

    from .local import LocalInvokeAI, _stop_serving, _StopServing

    # As ``testing.local serve``: a stop signal stops the server, never an orphan InvokeAI.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _stop_serving)
    with contextlib.suppress(_StopServing), LocalInvokeAI(port=port) as server:
        for name, config in install_tiny_models_blocking(server.url).items():
            print(f"{name}: {config.base} {config.type}, key {config.key}", flush=True)
        print(f"InvokeAI {server.version} with the tiny random-weight models ready at "
              f"{server.url}", flush=True)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invokeai_client.testing.tiny_models")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the tiny models into the cache; print the folder")
    install = sub.add_parser("install", help="install them into a server on this machine")
    install.add_argument("url")
    serve = sub.add_parser("serve", help="start a local InvokeAI with them until Ctrl-C")
    serve.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build_tiny_models())
        return 0
    if args.command == "serve":
        return _serve(args.port)

    for name, config in install_tiny_models_blocking(args.url).items():
        print(f"{name}: key {config.key}, base {config.base}, type {config.type}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
