"""Model sync: point a workflow's model inputs at models installed on this server.

A workflow made on another machine names models by ``key`` (a UUID local to that server),
``hash`` (BLAKE3 of the files) and ``name`` + ``base`` + ``type``. The GUI looks models up by
key only and clears what it cannot find; the SDK tries key, then hash, then name+base+type
(the order of the GUI's metadata recall) and rewrites the identifier to the installed model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ModelNotFoundError
from ..fields._base import UNSET
from ..fields.models import model_identifier

if TYPE_CHECKING:
    from ._client import WorkflowClient
    from .form import WorkflowForm

MatchedBy = Literal["key", "hash", "name", "explicit", "unset"]


@dataclass(frozen=True)
class ModelSyncEntry:
    """What sync did for one model input.

    ``matched_by``: ``key``/``hash``/``name`` (how the installed model was found),
    ``explicit`` (you set it on the handle: left alone) or ``unset`` (no model to match).
    ``model`` is the identifier now in the input; ``previous`` the one before.
    """

    node_id: str
    field_name: str
    label: str
    matched_by: MatchedBy
    model: dict[str, Any] | None
    previous: dict[str, Any] | None

    @property
    def key(self) -> str:
        return f"{self.node_id}.{self.field_name}"

    @property
    def changed(self) -> bool:
        return self.model != self.previous


@dataclass(frozen=True)
class ModelSyncReport(Sequence[ModelSyncEntry]):
    """One entry per model input of the workflow, in node order."""

    entries: tuple[ModelSyncEntry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ModelSyncEntry]:
        return iter(self.entries)

    def __getitem__(self, index: Any) -> Any:
        return self.entries[index]

    @property
    def changed(self) -> list[ModelSyncEntry]:
        """The inputs whose identifier was rewritten."""
        return [e for e in self.entries if e.changed]

    def __str__(self) -> str:
        lines = []
        for e in self.entries:
            name = (e.model or {}).get("name", "-")
            lines.append(f"{e.key}: {e.matched_by} -> {name}")
        return "\n".join(lines) or "(no model inputs)"


async def installed_models(client: WorkflowClient) -> list[dict[str, Any]]:
    """Every model installed on the server, as dicts (one ``GET /api/v2/models/``)."""
    return [model.model_dump(mode="json") for model in await client.models.list()]


def _match(
    previous: Mapping[str, Any],
    models: Sequence[dict[str, Any]],
    by_key: Mapping[Any, dict[str, Any]],
    by_hash: Mapping[Any, dict[str, Any]],
) -> tuple[dict[str, Any] | None, MatchedBy]:
    """The installed model for an identifier: same key, else hash, else name+base+type."""
    if previous.get("key") in by_key:
        return by_key[previous["key"]], "key"
    if previous.get("hash") and previous.get("hash") in by_hash:
        return by_hash[previous["hash"]], "hash"
    named = [
        m
        for m in models
        if m.get("name") == previous.get("name")
        and m.get("base") == previous.get("base")
        and m.get("type") == previous.get("type")
    ]
    return (named[0], "name") if named else (None, "name")


def _identifier(model: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    ident = {k: model.get(k) for k in ("key", "hash", "name", "base", "type")}
    submodel = (previous or {}).get("submodel_type")
    if submodel is not None:
        ident["submodel_type"] = submodel
    return ident


def _describe(ident: Mapping[str, Any]) -> str:
    return f"{ident.get('name')!r} ({ident.get('base')} {ident.get('type')})"


async def sync_models(form: WorkflowForm, client: WorkflowClient) -> ModelSyncReport:
    """Point every model input of ``form`` at a model installed on the server (key, then
    hash, then name + base + type); see the module docstring."""
    models = await installed_models(client)
    by_key = {m.get("key"): m for m in models}
    by_hash: dict[Any, dict[str, Any]] = {}
    for m in models:
        by_hash.setdefault(m.get("hash"), m)
    entries: list[ModelSyncEntry] = []
    updates: list[tuple[Any, dict[str, Any]]] = []
    missing: list[str] = []
    candidates: list[dict[str, Any]] = []
    for field in form.model_fields():
        where = (field.node_id, field.name)
        current = field.value
        previous = model_identifier(current) if current not in (UNSET, None) else None
        label = field.label
        if where in form.values.explicit:
            entries.append(
                ModelSyncEntry(field.node_id, field.name, label, "explicit", previous, previous)
            )
            continue
        if previous is None:
            entries.append(ModelSyncEntry(field.node_id, field.name, label, "unset", None, None))
            continue
        found, how = _match(previous, models, by_key, by_hash)
        if found is None:
            alike = [
                m
                for m in models
                if m.get("base") == previous.get("base") and m.get("type") == previous.get("type")
            ]
            candidates.extend(_identifier(m, None) for m in alike)
            names = ", ".join(_describe(m) for m in alike[:10]) or "none installed"
            missing.append(
                f"input {field.display_name()} wants {_describe(previous)} (key "
                f"{previous.get('key')}); installed models of that base and type: {names}"
            )
            continue
        ident = _identifier(found, previous)
        entries.append(ModelSyncEntry(field.node_id, field.name, label, how, ident, previous))
        updates.append((field, ident))
    if missing:
        raise ModelNotFoundError(
            f"workflow {form.name!r}: {len(missing)} model input(s) match no model on the "
            f"server ({len(models)} installed):\n  - " + "\n  - ".join(missing),
            candidates=candidates,
        )
    for field, ident in updates:
        field._load(ident)
    return ModelSyncReport(tuple(entries))
