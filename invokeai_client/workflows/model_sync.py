"""Model sync: point a workflow's model inputs at models installed on this server.

A workflow made on another machine names models by ``key`` (a UUID local to that server),
``hash`` (BLAKE3 of the files) and ``name`` + ``base`` + ``type``. The GUI looks models up by
key only and clears what it cannot find; the SDK tries key, then hash, then name+base+type
(the order of the GUI's metadata recall) and rewrites the identifier to the installed model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from .._model_choice import ModelWanted, choose_installed, model_kind
from ..errors import ModelNotFoundError
from ..fields._base import UNSET
from ..fields.models import ModelIdentifierField, model_identifier

if TYPE_CHECKING:
    from ._client import WorkflowClient
    from .form import WorkflowForm

MatchedBy = Literal["key", "hash", "name", "explicit", "unset"]


@dataclass(frozen=True)
class ModelSyncEntry:
    """What sync did for one model input.

    ``matched_by``: ``key``/``hash``/``name`` (how the installed model was found),
    ``explicit`` (you set it on the handle: left alone; a key or name you set is looked up
    among the installed models of the input's base and type) or ``unset`` (no model).
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


def choose_for_input(
    models: Sequence[dict[str, Any]], wanted: str, field: ModelIdentifierField
) -> dict[str, Any]:
    """The one installed model ``wanted`` names for a model input (pure).

    The rules of ``client.generate(model=)`` (one home: :mod:`invokeai_client._model_choice`),
    restricted to the input's model types and bases: a key, else an exact name, else a
    case-insensitive fragment of exactly one name. A model of another type or base, several
    matches or none raise, naming the input and listing the candidates.
    """
    types, bases = field.model_types, field.model_bases
    takes, where = field.describe(), field.display_name()
    rules = ModelWanted(
        usable=lambda m: (not types or m.get("type") in types)
        and (not bases or "any" in bases or m.get("base") in bases),
        one=f"installed {takes}", many="installed models", needs=f"this input takes a {takes}",
        where=f"input {where}: ", input=where, missing=ModelNotFoundError,
    )
    return choose_installed(models, wanted, rules)


def _choose_named(
    fields: Sequence[ModelIdentifierField], models: Sequence[dict[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The identifier each input set to a key or name gets (raises before anything changes)."""
    chosen = {}
    for field in fields:
        name = field.pending_name
        if name is not None:
            chosen[(field.node_id, field.name)] = _identifier(
                choose_for_input(models, name.text, field), None
            )
    return chosen


def _apply_named(form: WorkflowForm, chosen: Mapping[tuple[str, str], dict[str, Any]]) -> None:
    for key, ident in chosen.items():
        held = form.values.fields[key]
        name = getattr(held, "pending_name", None)
        if name is not None:
            form.values.named[key] = name
        held.load(ident)


async def resolve_model_names(form: WorkflowForm, client: WorkflowClient) -> None:
    """Look up the model inputs set to a key or name (``wf.set("Model", "tiny-sdxl")``)
    among the server's installed models; nothing is asked when there is none. Submit does
    this; :func:`sync_models` too."""
    if not any(
        isinstance(held, ModelIdentifierField) and held.pending_name is not None
        for held in form.values.fields.values()
    ):
        return  # a name is set through the handle, so its field is held: nothing to look up
    fields = [f for f in form.model_fields() if f.pending_name is not None]
    if fields:
        _apply_named(form, _choose_named(fields, await installed_models(client)))


def _match(
    previous: Mapping[str, Any], models: Sequence[dict[str, Any]]
) -> tuple[dict[str, Any] | None, MatchedBy]:
    """The installed model for an identifier: same key, else hash, else name+base+type."""
    for how in ("key", "hash"):
        wanted = previous.get(how)
        same = [m for m in models if wanted and m.get(how) == wanted]
        if same:
            return same[0], how
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


async def sync_models(
    form: WorkflowForm, client: WorkflowClient, *, follow_explicit: bool = False
) -> ModelSyncReport:
    """Point every model input of ``form`` at a model installed on the server (key, then
    hash, then name + base + type); inputs set to a key or name are looked up by it (the
    user's choice); see the module docstring. ``follow_explicit`` (a pool sending one
    workflow to many servers): a model the user set is the same model found on this server
    the same way (only its server-local key changes; never another model)."""
    models = await installed_models(client)
    fields = form.model_fields()
    named = _choose_named(fields, models)
    entries: list[ModelSyncEntry] = []
    updates: list[tuple[Any, dict[str, Any]]] = []
    missing: list[str] = []
    candidates: list[dict[str, Any]] = []
    for field in fields:
        where = (field.node_id, field.name)
        current = field.value
        previous = model_identifier(current) if current not in (UNSET, None) else None
        entry = ModelSyncEntry(field.node_id, field.name, field.label, "explicit",
                               named.get(where, previous), previous)
        explicit = where in form.values.explicit
        if previous is None or (explicit and (where in named or not follow_explicit)):
            entries.append(entry if explicit else replace(entry, matched_by="unset", model=None))
            continue
        found, how = _match(previous, models)
        if found is None:
            alike = [
                m
                for m in models
                if m.get("base") == previous.get("base") and m.get("type") == previous.get("type")
            ]
            candidates.extend(_identifier(m, None) for m in alike)
            names = ", ".join(model_kind(m) for m in alike[:10]) or "none installed"
            missing.append(
                f"input {field.display_name()} wants {model_kind(previous)} (key "
                f"{previous.get('key')}); installed models of that base and type: {names}"
            )
            continue
        ident = _identifier(found, previous)
        entries.append(replace(entry, matched_by="explicit" if explicit else how, model=ident))
        updates.append((field, ident))
    if missing:
        raise ModelNotFoundError(
            f"workflow {form.name!r}: {len(missing)} model input(s) match no model on the "
            f"server ({len(models)} installed):\n  - " + "\n  - ".join(missing),
            candidates=candidates,
        )
    _apply_named(form, named)
    for field, ident in updates:
        field.load(ident)
    return ModelSyncReport(tuple(entries))
