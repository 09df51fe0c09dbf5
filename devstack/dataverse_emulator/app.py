"""Dataverse Web API v9.2 emulator driven by the project's contract file
(shared/contracts/dataverse.json), over SQLite.

Behaviour and its source:
- Entity sets, columns, lookups (`@odata.bind` in, `_x_value` out), max lengths, picklist/state/status
  values, Money/decimal ranges (product price/standardcost/currentcost/quantityonhand ≥ 0),
  read-only columns and required-on-create columns come from the contract (generated table
  references). Validation errors answer 400 `0x80044331` "A validation error occurred. …"; unknown
  properties 400 `0x80060888` "Could not find a property named 'x' on type
  'Microsoft.Dynamics.CRM.<table>'." (query/write error texts: common reports, not in the docs).
- CreateMultiple / UpdateMultiple / UpsertMultiple only where the table lists the message
  (bulk-operations; transactioncurrency and uom have none): otherwise 400 `0x80040800` "The 'X'
  method does not support entities of type 'y'. MessageProcessorCache returned MessageProcessor.Empty."
  (SdkEntityDoesNotSupportMessage; the HTTP status is not documented). All or nothing, ≤ 1000 targets.
- Products start in Draft (statecode 2 / statuscode 0) unless
  organization.createproductswithoutparentinactivestate; PATCH statecode 0/1 publishes, 1/2
  retires, 0/1 again activates (publish-revise-revert-retire-activate-products).
- A uomschedule created with `baseuomname` gets its base uom (name, quantity 1, isschedulebaseuom).
- `organizations` holds one row: base currency (a seeded USD transactioncurrency, currencytype 0),
  expirechangetrackingindays 7 (use-change-tracking-synchronize-data-external-systems),
  createproductswithoutparentinactivestate false.
- Change tracking (`Prefer: odata.track-changes`, delta links, `$deletedEntity` rows); a delta token
  carries its issue time and expires after expirechangetrackingindays on the emulator clock
  (`/_admin/clock`): 400 `0x80044352` "Version stamp associated with the client has expired. Please
  perform a full sync." (ExpiredVersionStamp; HTTP status not documented).
- Paging: `Prefer: odata.maxpagesize` ≤ 5000 with `@odata.nextLink`; `$top` returns at most that
  many rows and no next link; `$skip` and other unsupported options refused (query-data-web-api).
- PATCH-to-key upsert with If-Match / If-None-Match; `$batch` of GETs (multipart, ≤ 1000,
  continue-on-error); WhoAmI; service document, `$metadata`, `EntityDefinitions(LogicalName='x')`
  (`$select`, `$expand=Attributes`). Service protection (api-limits): 6000 requests / 5 min and 52
  concurrent per user, 429 past them. Plain HTTP and, with `--https-port`, HTTPS.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulator_kit import (
    Emulator,
    Limits,
    ODataError,
    ServiceError,
    Store,
    compile_filter,
    json_columns,
    order_clause,
)
from shared.connectors.option_sets import KEY as OPTION_KEY
from shared.connectors.option_sets import OPTION_SETS, option_id
from shared.contracts import DataverseTable, Property, dataverse_contract, dataverse_tables

SEED_USER = "11111111-1111-1111-1111-111111111111"
BUSINESS_UNIT = "22222222-2222-2222-2222-222222222222"
ORGANIZATION = "33333333-3333-3333-3333-333333333333"
BASE_CURRENCY = "44444444-4444-4444-4444-444444444444"
NOT_FOUND, DUPLICATE, BAD = "0x80040217", "0x80040237", "0x80060888"
INVALID, NO_MESSAGE, EXPIRED, BAD_STATE = "0x80044331", "0x80040800", "0x80044352", "0x80040203"
KEY = re.compile(r"^\(([0-9a-fA-F-]{36})\)$")
TABLES: dict[str, DataverseTable] = dataverse_tables()
BY_LOGICAL = {t.logical_name: s for s, t in TABLES.items()}
LOOKUP_TYPES = ("Lookup", "Owner", "Customer")
SERVER_FIELDS = ("createdon", "modifiedon", "versionnumber", "_createdby_value", "_modifiedby_value")
COMPUTED = {"contacts": "fullname", "systemusers": "fullname"}
BULK = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
QUERY_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$deltatoken"}
PRIMARY_NAME = {"contact": "fullname", "systemuser": "fullname", "transactioncurrency": "currencyname"}
ATTRIBUTE_METADATA = {
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
}
EDM = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "Money": "Edm.Decimal",
    "Decimal": "Edm.Decimal",
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "Uniqueidentifier": "Edm.Guid",
}


class DataverseError(ServiceError):
    pass


def base_uom_id(schedule: str) -> str:
    """The id of the base uom Dataverse creates for a uomschedule (fixed here, so seeds can bind it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"baseuom/{schedule.lower()}"))


def _lookups(table: DataverseTable) -> dict[str, dict[str, str]]:
    """lookup attribute -> {navigation property: target entity set} (polymorphic ones have several)."""
    out: dict[str, dict[str, str]] = {}
    for name, prop in table.properties.items():
        if prop.type not in LOOKUP_TYPES:
            continue
        targets = [BY_LOGICAL[t] for t in prop.targets if t in BY_LOGICAL]
        nav = table.bind.get(name, name)
        if len(prop.targets) > 1 and prop.type == "Customer":
            out[name] = {f"{name}_{t}": BY_LOGICAL[t] for t in prop.targets if t in BY_LOGICAL}
        elif targets:
            out[name] = {nav: targets[0]}
    if table.logical_name in ("account", "contact"):
        out.setdefault("ownerid", {"ownerid": "systemusers"})
    return out


def _state_of_status(table: DataverseTable) -> dict[int, int]:
    """statuscode -> the statecode it belongs to, from the enum labels ("Active (state 0)", "Draft (2)")."""
    prop = table.properties.get("statuscode")
    out = {}
    for value, label in zip(prop.enum or (), _labels(table, "statuscode"), strict=False):
        found = re.search(r"\((?:state )?(\d+)\)", label)
        if found:
            out[int(value)] = int(found.group(1))
    return out


def _labels(table: DataverseTable, name: str) -> list[str]:
    raw = dataverse_contract()["tables"][table.logical_name]["properties"][name].get("enum") or {}
    return list(raw.values()) if isinstance(raw, dict) else list(raw)


def _raw(table: DataverseTable, name: str) -> dict[str, Any]:
    return dataverse_contract()["tables"][table.logical_name]["properties"].get(name, {})


class Dataverse(Emulator):
    name = "dataverse"
    # api-limits: 0x80072322 number of requests, 0x80072326 concurrent requests.
    error_codes = {
        "unauthorized": "0x8004a101",
        "throttled": "0x80072322",
        "concurrency": "0x80072326",
        "server": "0x80040216",
    }

    def __init__(
        self, port: int, authority: str, ca: str, db: str = ":memory:", https_port: int | None = None
    ):
        self.org = f"http://127.0.0.1:{port}"
        self.orgs = [self.org] + ([f"https://127.0.0.1:{https_port}"] if https_port else [])
        super().__init__(authority, ca, self.orgs, 52, Limits(6000, 300, queue=None))
        self.sets = TABLES
        self.lookups = {s: _lookups(t) for s, t in TABLES.items()}
        self.status_state = {
            s: _state_of_status(t) for s, t in TABLES.items() if "statuscode" in t.properties
        }
        self.store = Store(list(self.sets), db)
        self.columns = {}
        for s, t in TABLES.items():
            fields = {p for p, prop in t.properties.items() if prop.type not in LOOKUP_TYPES}
            fields |= (
                {f"_{a}_value" for a in self.lookups[s]} | set(SERVER_FIELDS) | {"statecode", "statuscode"}
            )
            self.columns[s] = json_columns(sorted(fields | {t.key}), t.key)
        self.app_users: dict[str, str] = {}
        # Local option sets of every choice column: (table, attribute) -> options; InsertOptionValue adds.
        self.options: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.reset()

    def reset(self) -> None:
        self.store.reset()
        self.app_users = {}
        self.options = {
            (t.logical_name, name): [
                {"Value": int(v), "Label": label, "ExternalValue": None}
                for v, label in zip(p.enum or (), _labels(t, name), strict=False)
            ]
            for t in TABLES.values()
            for name, p in t.properties.items()
            if p.type == "Picklist"
        }
        self.limits.reset()
        base = {
            "isocurrencycode": "USD",
            "currencyname": "US Dollar",
            "currencysymbol": "$",
            "exchangerate": 1.0,
            "currencyprecision": 2,
            "currencytype": 0,
        }
        self._write("transactioncurrencies", BASE_CURRENCY, base, SEED_USER, trusted=True)
        org = {
            "basecurrencyid@odata.bind": f"/transactioncurrencies({BASE_CURRENCY})",
            "expirechangetrackingindays": 7,
            "createproductswithoutparentinactivestate": False,
        }
        self._write("organizations", ORGANIZATION, org, SEED_USER, trusted=True)

    def organization(self) -> dict[str, Any]:
        return self.store.get("organizations", ORGANIZATION) or {}

    # --- errors & helpers ------------------------------------------------------------------------------
    def kind(self, request: Request) -> str:
        path = request.url.path
        if "Microsoft.Dynamics.CRM." in path:
            return "bulk"
        if path.endswith("$batch"):
            return "batch"
        return super().kind(request)

    def user_for(self, request: Request) -> str:
        """The application user of the calling app (created on first sight, like an app user in Dataverse)."""
        claims = request.scope.get("state", {}).get("claims", {})
        appid = claims.get("appid") or claims.get("azp") or "unknown"
        if appid not in self.app_users:
            user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"appuser:{appid}"))
            self.app_users[appid] = user_id
            if self.store.get("systemusers", user_id) is None:
                self._write(
                    "systemusers",
                    user_id,
                    {
                        "firstname": "#",
                        "lastname": "sync integration",
                        "applicationid": appid,
                        "accessmode": 4,
                        "isdisabled": False,
                        "islicensed": False,
                        "azureactivedirectoryobjectid": claims.get("oid"),
                    },
                    SEED_USER,
                    create_only=True,
                    trusted=True,
                )
        return self.app_users[appid]

    def _shape(self, entity_set: str, data: dict[str, Any]) -> dict[str, Any]:
        out = {"@odata.etag": f'W/"{data["versionnumber"]}"'}
        out.update({k: v for k, v in data.items() if not k.startswith("__")})
        return out

    def _type_name(self, entity_set: str) -> str:
        return f"Microsoft.Dynamics.CRM.{self.sets[entity_set].logical_name}"

    def _invalid(self, message: str) -> DataverseError:
        return DataverseError(400, INVALID, f"A validation error occurred. {message}")

    def _check(self, entity_set: str, prop: Property, value: Any) -> Any:
        table = self.sets[entity_set].logical_name
        name, kind = prop.name, prop.type
        if value is None:
            return None
        if kind in ("String", "Memo"):
            if not isinstance(value, str):
                raise DataverseError(
                    400, BAD, f"Cannot convert the literal '{value}' to the expected type 'Edm.String'."
                )
            if prop.max_length is not None and len(value) > prop.max_length:
                raise self._invalid(
                    f"The length of the '{name}' attribute of the '{table}' entity exceeded the maximum "
                    f"allowed length of '{prop.max_length}'."
                )
        elif kind in ("Money", "Decimal", "Integer", "BigInt", "Picklist", "State", "Status"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DataverseError(
                    400, BAD, f"Cannot convert the literal '{value}' to the expected type of '{name}'."
                )
            if kind in ("Integer", "BigInt", "Picklist", "State", "Status") and value != int(value):
                raise DataverseError(
                    400, BAD, f"Cannot convert the literal '{value}' to 'Edm.Int32' ({name})."
                )
            options = self.options.get((table, name)) if kind == "Picklist" else None
            if options is not None:
                if int(value) not in {o["Value"] for o in options}:
                    raise self._invalid(
                        f"{value} is not a valid value for {name} on record of type '{table}'."
                    )
            elif prop.enum and str(int(value)) not in prop.enum:
                raise self._invalid(f"{value} is not a valid value for {name} on record of type '{table}'.")
            low, high = prop.minimum, prop.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"{'-' if low is None else low} to {'-' if high is None else high}"
                raise self._invalid(
                    f"The value {value} of '{name}' on record of type '{table}' is outside the valid range. "
                    f"Accepted range: {span}."
                )
        elif kind == "Boolean" and not isinstance(value, bool):
            raise DataverseError(
                400, BAD, f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'."
            )
        elif kind == "Uniqueidentifier":
            try:
                value = str(uuid.UUID(str(value)))
            except ValueError:
                raise DataverseError(
                    400, BAD, f"Cannot convert the literal '{value}' to 'Edm.Guid'."
                ) from None
        return value

    def _apply(
        self, entity_set: str, current: dict[str, Any] | None, body: dict[str, Any], trusted: bool
    ) -> dict[str, Any]:
        """Validate a write body against the contract and merge it into the record."""
        t = self.sets[entity_set]
        record = dict(current or {})
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                lookup, target = next(
                    ((a, navs[nav]) for a, navs in self.lookups[entity_set].items() if nav in navs),
                    (None, None),
                )
                if lookup is None:
                    raise DataverseError(
                        400,
                        BAD,
                        f"An undeclared property '{nav}' which only has property "
                        "annotations in the payload but no property value was found.",
                    )
                prop = t.properties.get(lookup)
                if prop is not None and prop.read_only and not trusted:
                    raise DataverseError(
                        400,
                        BAD,
                        f"The property '{lookup}' is read-only on type '{self._type_name(entity_set)}'.",
                    )
                if value is None:
                    record[f"_{lookup}_value"] = None
                    continue
                match = re.fullmatch(
                    rf"/?{target}\(([0-9a-fA-F-]{{36}})\)", str(value).split("/api/data/v9.2/")[-1]
                )
                if not match:
                    raise DataverseError(400, BAD, f"Invalid @odata.bind value {value!r} for {nav}.")
                ref = match.group(1).lower()
                if self.store.get(target, ref) is None:
                    raise DataverseError(404, NOT_FOUND, f"{target[:-1]} With Id = {ref} Does Not Exist")
                record[f"_{lookup}_value"] = ref
                continue
            prop = t.properties.get(name)
            if prop is None or prop.type in LOOKUP_TYPES or name == t.key:
                if name in SERVER_FIELDS and trusted:
                    continue
                raise DataverseError(
                    400,
                    BAD,
                    f"Could not find a property named '{name}' on type '{self._type_name(entity_set)}'.",
                )
            if prop.read_only and not trusted and name not in ("modifiedon", "versionnumber"):
                raise DataverseError(
                    400, BAD, f"The property '{name}' is read-only on type '{self._type_name(entity_set)}'."
                )
            if name in ("modifiedon", "versionnumber"):
                continue  # server-maintained, like createdon
            record[name] = self._check(entity_set, prop, value)
        if current is None:
            missing = [
                r
                for r in t.required_on_create
                if record.get(r) in (None, "") and record.get(f"_{r}_value") is None
            ]
            if missing:
                raise self._invalid(
                    f"The attribute '{missing[0]}' of '{t.logical_name}' is required on create."
                )
        self._state(entity_set, current, record, body)
        if entity_set in COMPUTED:
            record["fullname"] = " ".join(p for p in (record.get("firstname"), record.get("lastname")) if p)
        return record

    def _state(
        self, entity_set: str, current: dict | None, record: dict[str, Any], body: dict[str, Any]
    ) -> None:
        """Default state/status of a new record (products: Draft), and a status that fits its state."""
        if "statecode" not in self.sets[entity_set].properties:
            return
        pairs = self.status_state.get(entity_set, {})
        if current is None and "statecode" not in body:
            draft = entity_set == "products" and not self.organization().get(
                "createproductswithoutparentinactivestate"
            )
            record["statecode"] = 2 if draft else 0
        if "statuscode" not in body and (current is None or "statecode" in body):
            record["statuscode"] = next((s for s, st in pairs.items() if st == record["statecode"]), None)
        if pairs and pairs.get(record.get("statuscode")) != record.get("statecode"):
            raise DataverseError(
                400,
                BAD_STATE,
                f"{record.get('statuscode')} is not a valid status code for state code "
                f"{self.sets[entity_set].logical_name}State.{record.get('statecode')}.",
            )

    def _write(
        self, entity_set, key, body, user, *, create_only=False, update_only=False, etag=None, trusted=False
    ):
        """Upsert semantics of PATCH to a key; returns (record, created)."""
        key = key.lower()
        current = self.store.get(entity_set, key)
        if current is None and update_only:
            raise DataverseError(404, NOT_FOUND, f"{entity_set} With Id = {key} Does Not Exist")
        if current is not None and create_only:
            raise DataverseError(412, DUPLICATE, "A record with matching key values already exists.")
        if current is not None and etag not in (None, "*") and etag != f'W/"{current["versionnumber"]}"':
            raise DataverseError(
                412,
                "0x80060882",
                "The version of the existing record doesn't match the RowVersion property provided.",
            )
        record = self._apply(entity_set, current, body, trusted)
        now, version = self.clock.now(), self.store.next_version()
        record.update(
            {
                self.sets[entity_set].key: key,
                "modifiedon": now,
                "versionnumber": version,
                "_modifiedby_value": user,
            }
        )
        if current is None:
            record.update({"createdon": now, "_createdby_value": user})
            if "ownerid" in self.lookups[entity_set] and not record.get("_ownerid_value"):
                record["_ownerid_value"] = user  # like Dataverse: the creating user owns the record
        self.store.put(entity_set, key, record, version=version)
        if current is None and entity_set == "uomschedules" and record.get("baseuomname"):
            unit = base_uom_id(key)
            base = {
                "name": record["baseuomname"],
                "quantity": 1.0,
                "isschedulebaseuom": True,
                "uomscheduleid@odata.bind": f"/uomschedules({key})",
            }
            self._write("uoms", unit, base, user, trusted=True)
            self.store.db.execute(
                "UPDATE uoms SET data = json_set(data, '$._baseuom_value', ?) WHERE key = ?", (unit, unit)
            )
        return record, current is None

    # --- routes --------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/api/data/v9.2/WhoAmI", self.whoami),
            Route("/api/data/v9.2/WhoAmI()", self.whoami),
            Route("/api/data/v9.2/$batch", self.batch, methods=["POST"]),
            Route("/api/data/v9.2/$metadata", self.metadata),
            Route("/api/data/v9.2/", self.service_document),
            Route("/api/data/v9.2", self.service_document),
            Route("/api/data/v9.2/{target:path}", self.dispatch, methods=["GET", "POST", "PATCH", "DELETE"]),
        ]

    def origin(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def whoami(self, request: Request) -> Response:
        with self.lock:
            user = self.user_for(request)
        return JSONResponse({"BusinessUnitId": BUSINESS_UNIT, "UserId": user, "OrganizationId": ORGANIZATION})

    async def service_document(self, request: Request) -> Response:
        org = self.origin(request)
        value = [{"name": s, "kind": "EntitySet", "url": s} for s in sorted(self.sets)]
        return JSONResponse({"@odata.context": f"{org}/api/data/v9.2/$metadata", "value": value})

    async def metadata(self, request: Request) -> Response:
        types, sets = [], []
        for entity_set, t in sorted(self.sets.items()):
            props = [f'<Property Name="{t.key}" Type="Edm.Guid"/>']
            for name, p in t.properties.items():
                if name == t.key:
                    continue
                if p.type in LOOKUP_TYPES:
                    props.append(f'<Property Name="_{name}_value" Type="Edm.Guid"/>')
                    for nav, target in self.lookups[entity_set].get(name, {}).items():
                        logical = self.sets[target].logical_name
                        props.append(
                            f'<NavigationProperty Name="{nav}" Type="Microsoft.Dynamics.CRM.{logical}"/>'
                        )
                    continue
                length = f' MaxLength="{p.max_length}"' if p.max_length else ""
                props.append(f'<Property Name="{name}" Type="{EDM.get(p.type, "Edm.String")}"{length}/>')
            for extra, kind in (
                ("createdon", "Edm.DateTimeOffset"),
                ("modifiedon", "Edm.DateTimeOffset"),
                ("versionnumber", "Edm.Int64"),
            ):
                if extra not in t.properties:
                    props.append(f'<Property Name="{extra}" Type="{kind}"/>')
            types.append(
                f'<EntityType Name="{t.logical_name}"><Key><PropertyRef Name="{t.key}"/></Key>'
                + "".join(props)
                + "</EntityType>"
            )
            sets.append(
                f'<EntitySet Name="{entity_set}" EntityType="Microsoft.Dynamics.CRM.{t.logical_name}"/>'
            )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
            '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
            + "".join(types)
            + '<EntityContainer Name="System">'
            + "".join(sets)
            + "</EntityContainer>"
            "</Schema></edmx:DataServices></edmx:Edmx>"
        )
        return Response(xml, media_type="application/xml")

    def entity_definition(self, org: str, entity_set: str, select: list[str], expand: str) -> dict[str, Any]:
        t = self.sets[entity_set]
        out: dict[str, Any] = {
            "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"entity/{t.logical_name}")),
            "LogicalName": t.logical_name,
            "SchemaName": t.logical_name.capitalize(),
            "EntitySetName": entity_set,
            "PrimaryIdAttribute": t.key,
            "PrimaryNameAttribute": PRIMARY_NAME.get(t.logical_name, "name"),
            "ChangeTrackingEnabled": True,
            "ObjectTypeCode": None,
        }
        if select:
            out = {k: v for k, v in out.items() if k in select or k == "MetadataId"}
        if expand.split("(")[0] == "Attributes":
            inner = re.search(r"\$select=([\w,]+)", expand)
            attrs = [self.attribute(entity_set, n, p) for n, p in t.properties.items()]
            if inner:
                keep = set(inner.group(1).split(",")) | {"MetadataId", "@odata.type"}
                attrs = [{k: v for k, v in a.items() if k in keep} for a in attrs]
            out["Attributes"] = attrs
        return out

    def attribute(self, entity_set: str, name: str, p: Property) -> dict[str, Any]:
        t = self.sets[entity_set]
        raw = _raw(t, name)
        out: dict[str, Any] = {
            "@odata.type": f"#Microsoft.Dynamics.CRM.{ATTRIBUTE_METADATA.get(p.type, 'AttributeMetadata')}",
            "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"attribute/{t.logical_name}/{name}")),
            "LogicalName": name,
            "SchemaName": name,
            "AttributeType": p.type,
            "IsValidForCreate": not p.read_only,
            "IsValidForUpdate": not p.read_only,
            "IsValidForRead": True,
            "RequiredLevel": {"Value": raw.get("required_level", "None"), "CanBeChanged": True},
        }
        if p.max_length is not None:
            out["MaxLength"] = p.max_length
        if p.minimum is not None:
            out["MinValue"] = p.minimum
        if p.maximum is not None:
            out["MaxValue"] = p.maximum
        if p.targets:
            out["Targets"] = list(p.targets)
        if p.enum:
            out["OptionSet"] = {
                "Options": [
                    {"Value": int(v), "Label": label}
                    for v, label in zip(p.enum, _labels(t, name), strict=False)
                ]
            }
        return out

    # --- option sets (metadata) -------------------------------------------------------------------------
    @staticmethod
    def _label(text: str) -> dict[str, Any]:
        """A Label complex type (one language, 1033), as the metadata API returns it."""
        localized = {"Label": text, "LanguageCode": 1033, "IsManaged": False, "MetadataId": None,
                     "HasChanged": None}  # fmt: skip
        return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}

    def picklist(self, org: str, table: str, name: str, expand: str) -> Response:
        """EntityDefinitions(LogicalName=..)/Attributes(LogicalName=..)/Microsoft.Dynamics.CRM.
        PicklistAttributeMetadata, with ``$expand=OptionSet`` its options (query-metadata-web-api)."""
        entity_set = BY_LOGICAL[table]
        prop = self.sets[entity_set].properties.get(name)
        if prop is None:
            return self.error(404, NOT_FOUND, f"Could not find attribute '{name}' on entity '{table}'.")
        if prop.type != "Picklist":
            return self.error(400, BAD, f"The attribute '{name}' is not of type 'PicklistAttributeMetadata'.")
        body = {
            "@odata.context": f"{org}/api/data/v9.2/$metadata#EntityDefinitions('{table}')/Attributes/"
            "Microsoft.Dynamics.CRM.PicklistAttributeMetadata/$entity",
            **{k: v for k, v in self.attribute(entity_set, name, prop).items() if k != "OptionSet"},
        }
        if expand.split("(")[0] == "OptionSet":
            body["OptionSet"] = {
                "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"optionset/{table}/{name}")),
                "IsGlobal": False,
                "OptionSetType": "Picklist",
                "Options": [
                    {
                        "Value": o["Value"],
                        "Color": None,
                        "IsManaged": False,
                        "ExternalValue": o["ExternalValue"],
                        "ParentValues": [],
                        "MetadataId": None,
                        "HasChanged": None,
                        "Label": self._label(o["Label"]),
                        "Description": self._label(""),
                    }
                    for o in self.options[(table, name)]
                ],
            }
        return JSONResponse(body)

    async def option_action(self, request: Request, action: str) -> Response:
        """InsertOptionValue / UpdateOptionValue on a local option set (Web API action reference pages)."""
        if request.method != "POST":
            return self.error(405, BAD, "Method not allowed for this resource.")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return self.error(400, BAD, "The request body is not valid JSON.")
        table, name = body.get("EntityLogicalName"), body.get("AttributeLogicalName")
        if not isinstance(body, dict) or not table or not name:
            return self.error(
                400, BAD, "EntityLogicalName and AttributeLogicalName are required for a local option set."
            )
        with self.lock:
            options = self.options.get((table, name))
            if options is None:
                return self.error(404, NOT_FOUND, f"Could not find a local option set for {table}.{name}.")
            labels = (body.get("Label") or {}).get("LocalizedLabels") or []
            text = next((str(x.get("Label")) for x in labels if x.get("Label")), "")
            value = body.get("Value")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return self.error(400, BAD, f"Cannot convert the literal '{value}' to 'Edm.Int32' (Value).")
            if action == "UpdateOptionValue":
                if "MergeLabels" not in body:
                    return self.error(400, BAD, "The parameter 'MergeLabels' is required.")
                option = next((o for o in options if o["Value"] == value), None)
                if option is None:
                    return self.error(
                        404, NOT_FOUND, f"The option value {value} was not found in {table}.{name}."
                    )
                if text:
                    option["Label"] = text
                return Response(status_code=204)
            if not text:
                return self.error(400, BAD, "The Label parameter is required to insert an option.")
            taken = {o["Value"] for o in options}
            if value is None:
                value = max([v for v in taken if v >= 100_000_000] or [99_999_999]) + 1
            elif value in taken:
                # Refused as Dataverse refuses a value in use (the error code is not documented).
                return self.error(
                    400, INVALID, f"The value {value} is already used by an option of {table}.{name}."
                )
            options.append({"Value": value, "Label": text, "ExternalValue": body.get("ExternalValue")})
        context = (
            f"{self.origin(request)}/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.InsertOptionValueResponse"
        )
        return JSONResponse({"@odata.context": context, "NewOptionValue": value})

    def definitions(self, request: Request, target: str) -> Response:
        org = self.origin(request)
        params = request.query_params
        select = [s for s in params.get("$select", "").split(",") if s]
        expand = params.get("$expand", "")
        picklist = re.fullmatch(
            r"EntityDefinitions\(LogicalName='(\w+)'\)/Attributes\(LogicalName='(\w+)'\)"
            r"/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata",
            target,
        )
        if picklist:
            if picklist.group(1) not in BY_LOGICAL:
                return self.error(
                    404, NOT_FOUND, f"Could not find an entity with LogicalName = '{picklist.group(1)}'."
                )
            return self.picklist(org, picklist.group(1), picklist.group(2), expand)
        match = re.fullmatch(r"EntityDefinitions(?:\(LogicalName='(\w+)'\))?(/Attributes)?", target)
        if not match:
            return self.error(404, BAD, f"Resource not found for the segment '{target}'.")
        context = f"{org}/api/data/v9.2/$metadata#EntityDefinitions"
        if match.group(1) is None:
            rows = [self.entity_definition(org, s, select, expand) for s in sorted(self.sets)]
            return JSONResponse({"@odata.context": context, "value": rows})
        entity_set = BY_LOGICAL.get(match.group(1))
        if entity_set is None:
            return self.error(
                404, "0x80040217", f"Could not find an entity with LogicalName = '{match.group(1)}'."
            )
        if match.group(2):
            attrs = [self.attribute(entity_set, n, p) for n, p in self.sets[entity_set].properties.items()]
            return JSONResponse({"@odata.context": f"{context}({match.group(1)})/Attributes", "value": attrs})
        body = {
            "@odata.context": f"{context}/$entity",
            **self.entity_definition(org, entity_set, select, expand),
        }
        return JSONResponse(body)

    async def dispatch(self, request: Request) -> Response:
        target = request.path_params["target"]
        if target.startswith("EntityDefinitions"):
            return self.definitions(request, target)
        if target in ("InsertOptionValue", "UpdateOptionValue"):
            return await self.option_action(request, target)
        match = re.fullmatch(r"([a-z]+)(\([^)]*\))?(/Microsoft\.Dynamics\.CRM\.(\w+))?", target)
        if not match or match.group(1) not in self.sets:
            return self.error(
                404, "0x80060888", f"Resource not found for the segment '{target.split('(')[0]}'."
            )
        entity_set, key_part, action = match.group(1), match.group(2), match.group(4)
        key = None
        if key_part:
            key_match = KEY.match(key_part)
            if not key_match:
                return self.error(400, BAD, f"Bad Request - Error in query syntax: invalid key {key_part}")
            key = key_match.group(1).lower()
        org = self.origin(request)
        try:
            body = None
            if request.method in ("POST", "PATCH"):
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self.error(400, BAD, "The request body is not valid JSON.")
                if not isinstance(body, dict):
                    return self.error(400, BAD, "The request body must be a JSON object.")
            with self.lock:
                user = self.user_for(request)
                if action:
                    return self.bulk(entity_set, action, body or {}, user, request)
                if request.method == "GET":
                    return self.read(org, request.query_params, request.headers, entity_set, key)
                if request.method == "POST" and key is None:
                    new_key = str(body.pop(self.sets[entity_set].key, None) or uuid.uuid4()).lower()
                    record, _ = self._write(entity_set, new_key, body, user, create_only=True)
                    return self._written(org, request, entity_set, record, 201)
                if request.method == "PATCH" and key:
                    body.pop(self.sets[entity_set].key, None)
                    record, created = self._write(
                        entity_set,
                        key,
                        body,
                        user,
                        create_only=request.headers.get("if-none-match") == "*",
                        update_only=request.headers.get("if-match") is not None,
                        etag=request.headers.get("if-match"),
                    )
                    return self._written(org, request, entity_set, record, 201 if created else 200)
                if request.method == "DELETE" and key:
                    if not self.store.delete(entity_set, key):
                        raise DataverseError(404, NOT_FOUND, f"{entity_set} With Id = {key} Does Not Exist")
                    return Response(status_code=204)
            return self.error(405, BAD, "Method not allowed for this resource.")
        except DataverseError as exc:
            return self.error(exc.status, exc.code, exc.message)
        except ODataError as exc:
            return self.error(exc.status, BAD, exc.message)

    async def batch(self, request: Request) -> Response:
        """`$batch` of GET requests (multipart/mixed). Without `Prefer: odata.continue-on-error` the batch
        stops at the first failed request, as Dataverse does. Change sets (writes) are not emulated."""
        found = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
        if not request.headers.get("content-type", "").startswith("multipart/mixed") or not found:
            return self.error(
                400, BAD, "A $batch request needs Content-Type multipart/mixed with a boundary."
            )
        text = (await request.body()).decode("utf-8", "replace").replace("\r\n", "\n")
        delimiter = f"--{found.group(1)}"
        parts = [p for p in text.split(delimiter)[1:] if not p.startswith("--")]
        if len(parts) > 1000:
            return self.error(400, BAD, "The number of requests in a batch cannot exceed 1000.")
        go_on = "odata.continue-on-error" in request.headers.get("prefer", "")
        answers = []
        org = self.origin(request)
        with self.lock:
            self.user_for(request)
            for part in parts:
                status, body = self._batch_get(org, part.strip("\n"))
                answers.append((status, body))
                if status >= 400 and not go_on:
                    break
        boundary = f"batchresponse_{uuid.uuid4()}"
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found"}
        out = []
        for status, body in answers:
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"HTTP/1.1 {status} {reasons.get(status, '')}\r\n"
                "Content-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n"
                f"{json.dumps(body)}\r\n"
            )
        out.append(f"--{boundary}--\r\n")
        return Response("".join(out), media_type=f"multipart/mixed; boundary={boundary}")

    def _batch_get(self, org: str, part: str) -> tuple[int, Any]:
        _, _, http = part.partition("\n\n")
        head = http.split("\n\n", 1)[0].split("\n")
        request_line = head[0].split()
        if len(request_line) < 2 or request_line[0] != "GET":
            return 400, {
                "error": {"code": BAD, "message": "This emulator's $batch accepts GET requests only."}
            }
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if ":" in h)}
        url = request_line[1].split("/api/data/v9.2/", 1)[-1]
        path, _, query = url.partition("?")
        match = re.fullmatch(r"([a-z]+)(?:\(([0-9a-fA-F-]{36})\))?", path)
        if not match or match.group(1) not in self.sets:
            return 404, {"error": {"code": BAD, "message": f"Resource not found for the segment '{path}'."}}
        scope = {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []}
        params = Request(scope).query_params
        try:
            response = self.read(org, params, headers, match.group(1), (match.group(2) or "").lower() or None)
        except DataverseError as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}
        except ODataError as exc:
            return exc.status, {"error": {"code": BAD, "message": exc.message}}
        return response.status_code, json.loads(response.body)

    def _written(
        self, org: str, request: Request, entity_set: str, record: dict[str, Any], created_status: int
    ) -> Response:
        key = record[self.sets[entity_set].key]
        headers = {"OData-EntityId": f"{org}/api/data/v9.2/{entity_set}({key})"}
        if "return=representation" in request.headers.get("prefer", ""):
            return JSONResponse(self._shape(entity_set, record), status_code=created_status, headers=headers)
        return Response(status_code=204, headers=headers)

    def read(self, org: str, params, headers, entity_set: str, key: str | None) -> Response:
        unknown = [p for p in params if p.startswith("$") and p not in QUERY_OPTIONS]
        if unknown:
            raise ODataError(f"The query parameter {unknown[0]} is not supported")
        select = [s for s in params.get("$select", "").split(",") if s]
        columns = self.columns[entity_set]
        missing = [s for s in select if s not in columns]
        if missing:
            raise ODataError(
                f"Could not find a property named '{missing[0]}' on type '{self._type_name(entity_set)}'."
            )
        if key:
            record = self.store.get(entity_set, key)
            if record is None:
                raise DataverseError(404, NOT_FOUND, f"{entity_set} With Id = {key} Does Not Exist")
            return JSONResponse(self._project(entity_set, record, select))
        prefer = headers.get("prefer", "")
        size_match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = max(1, min(int(size_match.group(1)), 5000)) if size_match else 5000
        if "odata.track-changes" in prefer or "$deltatoken" in params:
            return self.changes(org, entity_set, params, select, size)
        where, args = compile_filter(params.get("$filter"), columns)
        order = order_clause(params.get("$orderby"), columns)
        top = params.get("$top")
        if top is not None and not str(top).isdigit():
            raise ODataError(f"Invalid value for $top: '{top}'.")
        state = _token(params.get("$skiptoken"))
        # `$top` caps the result and is not paged (query-data-web-api: use maxpagesize to page).
        limit = min(int(top), 5000) if top is not None else size
        rows = self.store.query(
            entity_set,
            where,
            args,
            after=None if order else state.get("after"),
            order=order,
            offset=state.get("offset", 0) if order else 0,
            limit=limit + 1,
        )
        more = len(rows) > limit and top is None
        rows = rows[:limit]
        body: dict[str, Any] = {"@odata.context": f"{org}/api/data/v9.2/$metadata#{entity_set}"}
        if params.get("$count") == "true":
            body["@odata.count"] = min(self.store.count(entity_set, where, args), 5000)
        body["value"] = [self._project(entity_set, r, select) for r in rows]
        if more and rows:
            nxt: dict[str, Any] = {}
            if order:
                nxt["offset"] = state.get("offset", 0) + len(rows)
            else:
                nxt["after"] = rows[-1][self.sets[entity_set].key]
            body["@odata.nextLink"] = self._link(org, entity_set, params, {"$skiptoken": _encode(nxt)})
        out_headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if size_match else None
        return JSONResponse(body, headers=out_headers)

    def changes(self, org: str, entity_set: str, params, select: list[str], size: int) -> Response:
        """Change tracking: initial sync (all rows) or changes since a delta token, then a new delta link.
        A token is `<version>!<issued epoch seconds>`; it expires after expirechangetrackingindays."""
        if params.get("$filter") or params.get("$orderby") or params.get("$top"):
            raise ODataError("Change tracking does not support $filter, $orderby or $top.")
        since = 0
        if "$deltatoken" in params:
            version, _, issued = params["$deltatoken"].partition("!")
            try:
                since, issued_at = int(version), float(issued)
            except ValueError:
                raise DataverseError(400, BAD, "The delta token is not valid.") from None
            days = self.organization().get("expirechangetrackingindays", 7)
            if self.clock.epoch() - issued_at > days * 86400:
                raise DataverseError(
                    400,
                    EXPIRED,
                    "Version stamp associated with the client has expired. Please perform a full sync.",
                )
        state = _token(params.get("$skiptoken"))
        upto = state.get("upto", self.store.version)
        rows = self.store.query(
            entity_set,
            "1=1",
            [],
            after=state.get("after"),
            limit=size + 1,
            min_version=since,
            max_version=upto,
        )
        body: dict[str, Any] = {"@odata.context": f"{org}/api/data/v9.2/$metadata#{entity_set}"}
        value = [self._project(entity_set, r, select) for r in rows[:size]]
        if len(rows) > size:
            nxt = {"upto": upto, "after": rows[size - 1][self.sets[entity_set].key]}
            extra = {"$skiptoken": _encode(nxt)}
            if "$deltatoken" in params:
                extra["$deltatoken"] = params["$deltatoken"]
            body["value"] = value
            body["@odata.nextLink"] = self._link(
                org, entity_set, {"$select": params.get("$select", "")}, extra
            )
            return JSONResponse(body)
        if since:
            context = f"{org}/api/data/v9.2/$metadata#{entity_set}/$deletedEntity"
            value += [
                {"@odata.context": context, "id": k, "reason": "deleted"}
                for k in self.store.deleted_since(entity_set, since, upto)
            ]
        body["value"] = value
        body["@odata.deltaLink"] = self._link(
            org,
            entity_set,
            {"$select": params.get("$select", "")},
            {"$deltatoken": f"{upto}!{int(self.clock.epoch())}"},
        )
        return JSONResponse(body)

    def _project(self, entity_set: str, record: dict[str, Any], select: list[str]) -> dict[str, Any]:
        shaped = self._shape(entity_set, record)
        if not select:
            return shaped
        keep = set(select) | {self.sets[entity_set].key, "@odata.etag"}
        return {k: v for k, v in shaped.items() if k in keep}

    def _link(self, org: str, entity_set: str, params, extra: dict[str, str]) -> str:
        query = {k: v for k, v in dict(params).items() if v and k not in ("$skiptoken", "$deltatoken")}
        query.update(extra)
        return f"{org}/api/data/v9.2/{entity_set}?{urlencode(query)}"

    def bulk(
        self, entity_set: str, action: str, body: dict[str, Any], user: str, request: Request
    ) -> Response:
        if action not in BULK or request.method != "POST":
            return self.error(404, BAD, f"Resource not found for the segment '{action}'.")
        table = self.sets[entity_set]
        if not table.supports(action):
            raise DataverseError(
                400,
                NO_MESSAGE,
                f"The '{action}' method does not support entities of type '{table.logical_name}'. "
                "MessageProcessorCache returned MessageProcessor.Empty.",
            )
        targets = body.get("Targets")
        if not isinstance(targets, list) or not targets:
            raise DataverseError(400, BAD, "Targets must be a non-empty array.")
        if len(targets) > 1000:
            raise DataverseError(400, "0x80040203", "The number of records exceeds the limit of 1000.")
        key_name = table.key
        # All or nothing, like the real operations on standard tables: any failure undoes them all.
        self.store.db.execute("SAVEPOINT bulk")
        ids = []
        try:
            for i, target in enumerate(targets):
                if not isinstance(target, dict):
                    raise DataverseError(400, BAD, f"Targets[{i}] must be an object.")
                key = str(
                    target.get(key_name) or (uuid.uuid4() if action == "CreateMultiple" else "")
                ).lower()
                if not key:
                    raise DataverseError(400, BAD, f"Targets[{i}]: {key_name} is required for {action}.")
                fields = {k: v for k, v in target.items() if k != key_name}
                try:
                    self._write(
                        entity_set,
                        key,
                        fields,
                        user,
                        create_only=action == "CreateMultiple",
                        update_only=action == "UpdateMultiple",
                    )
                except DataverseError as exc:
                    raise DataverseError(
                        exc.status, exc.code, f"Targets[{i}] ({key}): {exc.message}"
                    ) from None
                ids.append(key)
        except Exception:
            self.store.db.execute("ROLLBACK TO bulk")
            self.store.db.execute("RELEASE bulk")
            raise
        self.store.db.execute("RELEASE bulk")
        return JSONResponse({"Ids": ids})

    # --- admin -------------------------------------------------------------------------------------------
    def _seed(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        """Rows are validated like API writes but may set read-only columns (fullname, …)."""
        counts = {}
        order = [
            "organizations",
            "transactioncurrencies",
            "systemusers",
            "uomschedules",
            "uoms",
            "pricelevels",
        ]
        for entity_set in sorted(data, key=lambda s: order.index(s) if s in order else 99):
            rows = data[entity_set]
            if entity_set not in self.sets:
                raise KeyError(entity_set)
            key_name = self.sets[entity_set].key
            for row in rows:
                key = str(row.get(key_name) or uuid.uuid4()).lower()
                fields = {k: v for k, v in row.items() if k != key_name and k not in SERVER_FIELDS}
                try:
                    self._write(entity_set, key, fields, SEED_USER, trusted=True)
                except DataverseError as exc:
                    raise KeyError(f"{entity_set} row {row}: {exc.code}: {exc.message}") from None
            counts[entity_set] = len(rows)
        return counts

    def records(self, entity: str) -> list[dict[str, Any]]:
        if entity in OPTION_SETS:  # "<entity set>.<choice column>": its options, as the sync reads them
            ref = OPTION_SETS[entity]
            return [
                {
                    OPTION_KEY: option_id(ref, o["Value"], o["ExternalValue"]),
                    "value": o["Value"],
                    "label": o["Label"],
                }
                for o in sorted(self.options[(ref.entity, ref.attribute)], key=lambda o: o["Value"])
            ]
        if entity not in self.sets:
            raise KeyError(entity)
        return [self._shape(entity, r) for r in self.store.query(entity, "1=1", [], limit=10**9)]


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _token(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        return json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        raise ODataError("The skip token is invalid.") from None
