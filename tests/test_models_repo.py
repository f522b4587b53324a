"""client.models: listing with open enums, lookups, installs with typed progress, scans."""

from __future__ import annotations

from pathlib import Path

import pytest

from invokeai_client import (
    AsyncClient,
    BadRequestError,
    ModelInstallError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from invokeai_client.types.wire_events import (
    DownloadProgressEvent,
    ModelInstallCompleteEvent,
    ModelInstallDownloadProgressEvent,
    ModelInstallStartedEvent,
)

from .conftest import ADMIN, USER, Peer

pytestmark = pytest.mark.anyio


async def test_unknown_model_lookups_name_what_was_missing(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError, match="model 'no-such-key' not found"):
        await client.models.get("no-such-key")
    with pytest.raises(NotFoundError, match="ghost") as caught:
        await client.models.get_by_name("ghost", base="sd-1", type="main")
    assert "sd-1" in str(caught.value)
    with pytest.raises(NotFoundError, match="blake3:00"):
        await client.models.get_by_hash("blake3:00")
    with pytest.raises(ValidationError, match="key"):
        await client.models.get("")


async def test_bases_and_types_from_newer_servers_are_accepted(client: AsyncClient) -> None:
    # The server knows no base "sd-9" yet: no model can have it, so the answer is empty.
    assert await client.models.list(base="sd-9") == []
    assert await client.models.list(type="hologram", base=["sd-1", "sd-9"]) == []
    with pytest.raises(NotFoundError, match="no base 'sd-9'"):
        await client.models.get_by_name("x", base="sd-9", type="main")


async def test_a_file_that_is_no_model_is_refused_with_the_servers_reason(
    client: AsyncClient, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    install = await client.models.install(str(notes))
    with pytest.raises(ModelInstallError, match="not a recognized model format") as caught:
        await install
    assert caught.value.job_id == install.id
    assert caught.value.error_type == "ValueError"
    assert str(notes) in str(caught.value)
    assert not await client.models.find("notes")
    await client.models.prune_install_jobs()
    assert install.id not in {j.id for j in await client.models.install_jobs()}


async def test_a_source_that_does_not_exist_is_refused(client: AsyncClient) -> None:
    with pytest.raises(ModelInstallError, match="Unsupported model source"):
        await client.models.install("/nowhere/at/all.safetensors")


async def test_unidentifiable_weights_raise_and_leave_nothing_behind(
    client: AsyncClient, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"these bytes are no model")
    with pytest.raises(ModelInstallError, match="could not identify"):
        await (await client.models.install(str(junk)))
    assert not await client.models.find("junk")


async def test_install_lookup_and_delete_round_trip(client: AsyncClient, tmp_path: Path) -> None:
    # The real server registers unidentifiable weights as base/type "unknown" when allowed:
    # enough to exercise every lookup and the delete on it.
    junk = tmp_path / "roundtrip.safetensors"
    junk.write_bytes(b"0123456789" * 10)
    install = await client.models.install(str(junk), allow_unidentified=True)
    seen = [type(e) async for e in install.events()]
    assert ModelInstallStartedEvent in seen
    assert ModelInstallCompleteEvent in seen
    config = await install
    try:
        assert config.name == "roundtrip"
        assert config.hash is not None
        assert config.hash.startswith("blake3:")
        assert (await client.models.get(config.key)).key == config.key
        assert (await client.models.get_by_hash(config.hash)).key == config.key
        found = await client.models.get_by_name("roundtrip", base="unknown", type="unknown")
        assert found.key == config.key
        assert [m.key for m in await client.models.list(type="unknown")] == [config.key]
        assert config.key not in {m.key for m in await client.models.list(type="main")}
        job = await client.models.install_job(install.id)
        assert job.status == "completed"
        assert any(j.id == install.id for j in await client.models.install_jobs())
    finally:
        await client.models.delete(config.key)
    with pytest.raises(NotFoundError, match=config.key):
        await client.models.get(config.key)
    with pytest.raises(NotFoundError, match=config.key):
        await client.models.delete(config.key)


async def test_scan_folder_finds_model_files(client: AsyncClient, tmp_path: Path) -> None:
    (tmp_path / "a.safetensors").write_bytes(b"x" * 64)
    (tmp_path / "readme.txt").write_text("hi")
    found = await client.models.scan_folder(str(tmp_path))
    assert [Path(f.path).name for f in found] == ["a.safetensors"]
    assert not found[0].is_installed
    with pytest.raises(BadRequestError, match="/not/a/folder"):
        await client.models.scan_folder("/not/a/folder")


async def test_unknown_install_job_is_not_found(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError, match="install job 4242"):
        await client.models.install_job(4242)
    with pytest.raises(NotFoundError, match="install job 4242"):
        await client.models.cancel_install(4242)


# -- the double: downloads and success ---------------------------------------------------


async def test_download_install_reports_progress_and_completes(double: Peer) -> None:
    assert double.double is not None
    url = "https://example.com/models/tiny-flux.safetensors"
    double.double.model_install_overrides[url] = {"base": "flux", "type": "main"}
    async with double.client() as client:
        install = await client.models.install(url, description="from the double")
        events = [e async for e in install.events()]
        config = await install
    kinds = [type(e) for e in events]
    assert kinds.count(ModelInstallDownloadProgressEvent) == 4
    assert DownloadProgressEvent in kinds
    assert kinds[-1] is ModelInstallCompleteEvent
    progress = [e.bytes for e in events if isinstance(e, ModelInstallDownloadProgressEvent)]
    assert progress == sorted(progress)
    assert progress[-1] == 4 * 1024 * 1024
    assert (config.name, config.base, config.type) == ("tiny-flux", "flux", "main")
    assert config.description == "from the double"
    assert install.status == "completed"


async def test_cancelled_install_raises(double: Peer) -> None:
    assert double.double is not None
    double.double.model_install_delay = 0.2
    async with double.client() as client:
        install = await client.models.install("someone/some-model")
        await install.cancel()
        with pytest.raises(ModelInstallError, match="cancelled"):
            await install
        assert (await client.models.install_job(install.id)).status == "cancelled"
        assert await client.models.list() == []


async def test_add_model_helper_and_filters(double: Peer) -> None:
    assert double.double is not None
    d = double.double
    sd1 = d.add_model("Dreamshaper 8", base="sd-1", type="main")
    d.add_model("sdxl base", base="sdxl", type="main", format="diffusers")
    d.add_model("detail lora", base="sd-1", type="lora", format="lycoris")
    async with double.client() as client:
        assert [m.name for m in await client.models.list(base="sd-1")] == [
            "Dreamshaper 8",
            "detail lora",
        ]
        assert [m.name for m in await client.models.list(type="main", format="diffusers")] == [
            "sdxl base"
        ]
        both = await client.models.list(base=["sdxl", "sd-1"], type="main")
        assert {m.name for m in both} == {"Dreamshaper 8", "sdxl base"}
        assert [m.key for m in await client.models.find("Dreamshaper 8")] == [sd1["key"]]
        got = await client.models.get(sd1["key"])
        assert got.identifier() == {k: sd1[k] for k in ("key", "hash", "name", "base", "type")}
        assert got.model_extra is not None
        assert got.model_extra["variant"] == "normal"


async def test_installing_needs_an_admin(multiuser_peer: Peer, tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(b"x")
    async with multiuser_peer.client(email=USER[0], password=USER[1]) as client:
        with pytest.raises(PermissionDeniedError, match="Admin privileges required"):
            await client.models.install(str(tmp_path / "m.safetensors"))
        assert not await client.models.find("m")
    async with multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as client:
        assert isinstance(await client.models.list(), list)
