"""Business Central API emulator driven by the project's contract file (shared/contracts/bc.json),
over SQLite via devstack.emulator_kit.

Roots (both see the same company data):
- standard `/v2.0/<tenant>/<environment>/api/v2.0/`: every contract entity with `api` v2.0 — no
  `salespeople`, no `resources` (endpoints-apis-for-dynamics; api-reference/v2.0).
- custom `/v2.0/<tenant>/<environment>/api/bcsync/crm/v1.0/`: `companies`, `resources`,
  `salespeoplePurchasers` (the project's own AL API pages; devenv-develop-custom-api).
Each root has a service document (`GET <root>/`), `$metadata` (CSDL generated from the contract),
`companies`, `companies(<id>)/<set>[(<id>)]` and a JSON `$batch` (≤ 100 operations, use-odata-batch;
`Isolation: snapshot` makes it all-or-nothing).

Behaviour and its source:
- Writes are checked against the contract: unknown properties (400 `BadRequest`), read-only
  properties (`BadRequest_InvalidOperation`), `max_length` (`Application_StringExceededLength`),
  enums (blank member also as `_x0020_`), types, GUIDs (`Application_InvalidGUID`), required-on-create
  (`Application_DialogException`; a blank code `Application_FieldValidationException`), and
  relations (`Internal_InvalidTableRelation`; messages as in dynamics_error_codes): country →
  countriesRegions, salespersonCode → salespeoplePurchasers, currency/unit/payment terms/shipment
  method ids and codes (BaseApp TableRelations; dynamics-error-codes). Only documented error codes.
- A client-supplied `id` on POST becomes the SystemId (transition-to-api-v2.0); an existing id or a
  duplicate number/code: 400 `Internal_EntityWithSameKeyExists` (status 400: BC reports AL/platform
  errors as Bad Request; not stated per code in the docs). Number series for customers C00010,
  contacts CT000010, items 1000, vendors V00010, resources R0010; salespeoplePurchasers.code has none.
- Contacts: no firstName/surname (APIV2Contacts.Page.al); `companyNumber` is the number of a contact
  of type Company; `companyName` comes from it; `contactBusinessRelation` as Contact.Table.al
  GetBusinessRelation (None / the one relation / Multiple; a person gets its company's). A new
  customer or vendor gets a company contact with a Customer / Vendor business relation, and keeps it
  in step on rename/address change (Marketing Setup, CustCont-Update / VendCont-Update).
  `contactsInformation` (GET only) top level and bound to customers(<id>) / vendors(<id>).
- Key lookups are scoped to the company of the URL (another company's record is 404).
- ETags `W/"<base64>"`; PATCH/DELETE need If-Match (400 `BadRequest_InvalidToken`; stale: 409
  `Request_EntityChanged`); missing record 404 `Internal_RecordNotFound`.
- Paging: up to 20,000 per page, `Prefer: odata.maxpagesize=N` (Server-Driven-Paging); `$top` with
  `@odata.nextLink` pages until `$top` rows were returned.
- Limits (operational-limits-online): 5 requests per user processed at once, more wait in a queue
  (503 after 8 minutes); 429 only past 95 queued or 6000 requests per 5 minutes; `/_admin/faults`
  can still inject 429s (429 code `Unknown`: dynamics-rate-limits documents the status only).
- 401 `Authentication_InvalidCredentials` for a missing/invalid token or another tenant.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape

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
from shared.contracts import STANDARD_API, BcEntity, Property, bc_contract, bc_entities

AUDIENCE = "https://api.businesscentral.dynamics.com"
ENTITIES: dict[str, BcEntity] = bc_entities()
CUSTOM_ROOT: str = bc_contract()["custom_api_root"]
ROOTS = {
    STANDARD_API: {n for n, e in ENTITIES.items() if e.api == STANDARD_API},
    CUSTOM_ROOT: {"companies"} | {n for n, e in ENTITIES.items() if CUSTOM_ROOT in (e.api, e.also_custom)},
}
STORED = [n for n in ENTITIES if n != "companies"]
DEFAULT_COMPANY = {
    "id": "c0c0c0c0-0000-4000-8000-000000000001",
    "name": "CRONUS",
    "displayName": "CRONUS Inc.",
}
LCY = "USD"
SERIES = {
    "customers": ("C", 10, 5),
    "contacts": ("CT", 10, 6),
    "items": ("", 1000, 4),
    "vendors": ("V", 10, 5),
    "resources": ("R", 10, 4),
}
KEY_FIELD = {
    n: ("number" if "number" in e.properties else "code")
    for n, e in ENTITIES.items()
    if "number" in e.properties or "code" in e.properties
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "customers": {
        "type": "Company",
        "blocked": " ",
        "creditLimit": 0,
        "currencyId": None,
        "currencyCode": "",
    },
    "vendors": {"blocked": " ", "currencyCode": "", "balance": 0},
    "contacts": {"type": "Person", "companyNumber": "", "companyName": "", "contactBusinessRelation": "None"},
    "items": {"type": "Inventory", "blocked": False, "unitPrice": 0, "unitCost": 0, "inventory": 0},
    "resources": {
        "type": "Person",
        "blocked": False,
        "unitPrice": 0,
        "unitCost": 0,
        "baseUnitOfMeasureCode": "",
    },
    "salespeoplePurchasers": {
        "blocked": False,
        "displayName": "",
        "email": "",
        "phoneNo": "",
        "jobTitle": "",
    },
}
# Fields BC copies from a customer/vendor to its company contact (CustCont-Update / VendCont-Update).
CONTACT_COPY = (
    "displayName",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "country",
    "postalCode",
    "phoneNumber",
    "email",
    "website",
)
LINK_TYPE = {"customers": "Customer", "vendors": "Vendor"}
# The ISO codes a fresh company has in Country/Region (CRONUS demo data carries these and more).
COUNTRIES = [
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BE", "Belgium"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CN", "China"),
    ("CZ", "Czech Republic"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "Great Britain"),
    ("IE", "Ireland"),
    ("IN", "India"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NZ", "New Zealand"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("SE", "Sweden"),
    ("US", "USA"),
    ("ZA", "South Africa"),
]
GUID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
GUID_RE = re.compile(rf"^{GUID}$")
QUERY_OPTIONS = {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$skiptoken", "$schemaversion"}
SINGULAR = {
    "customers": "customer",
    "contacts": "contact",
    "contactsInformation": "contactInformation",
    "items": "item",
    "currencies": "currency",
    "currencyExchangeRates": "currencyExchangeRate",
    "unitsOfMeasure": "unitOfMeasure",
    "paymentTerms": "paymentTerm",
    "shipmentMethods": "shipmentMethod",
    "vendors": "vendor",
    "salespeoplePurchasers": "salespersonPurchaser",
    "companies": "company",
    "companyInformation": "companyInformation",
    "countriesRegions": "countryRegion",
    "resources": "resource",
}
EDM = {
    "string": "Edm.String",
    "decimal": "Edm.Decimal",
    "boolean": "Edm.Boolean",
    "GUID": "Edm.Guid",
    "datetime": "Edm.DateTimeOffset",
    "date": "Edm.Date",
    "int64": "Edm.Int64",
}


class BcError(ServiceError):
    pass


def _relation(prop: Property) -> tuple[str, str, str | None] | None:
    """`contacts.number where type = Company` -> ("contacts", "number", "Company")."""
    if not prop.relation:
        return None
    target, _, rest = prop.relation.partition(".")
    field, _, where = rest.partition(" where type = ")
    return target, field.strip(), (where.strip() or None)


RELATIONS = {
    n: {p.name: rel for p in e.properties.values() if (rel := _relation(p))} for n, e in ENTITIES.items()
}
# Fields related to the same table as another field of the entity (currencyId and currencyCode).
PARTNERS = {
    n: {f: [o for o, other in rels.items() if o != f and other[0] == rel[0]] for f, rel in rels.items()}
    for n, rels in RELATIONS.items()
}


def _edm_name(member: str) -> str:
    """Enum member names as CSDL writes them: other characters as _xHHHH_ (" " -> _x0020_)."""
    return "".join(c if c.isalnum() or c == "_" else f"_x{ord(c):04X}_" for c in member)


class BusinessCentral(Emulator):
    name = "bc"
    error_codes = {
        "unauthorized": "Authentication_InvalidCredentials",
        # dynamics-rate-limits documents the 429 status only; "Unknown" is the documented catch-all code.
        "throttled": "Unknown",
        "server": "Internal_ServerError",
    }

    def __init__(
        self, port: int, authority: str, ca: str, tenant: str, environment: str, db: str = ":memory:"
    ):
        # operational-limits-online: 6000 requests / 5 min per user, 5 processed at once, 95 queued.
        super().__init__(authority, ca, AUDIENCE, 5, Limits(6000, 300, queue=95))
        self.tenant, self.environment = tenant, environment
        self.origin = f"http://127.0.0.1:{port}/v2.0/{tenant}/{environment}/api"
        self.store = Store(["companies", *STORED], db)
        self.columns = {n: json_columns(list(e.properties), "id") for n, e in ENTITIES.items()}
        self.columns["contactsInformation"] = json_columns(
            list(ENTITIES["contactsInformation"].properties), "key"
        )
        self.reset()

    def base(self, root: str) -> str:
        return f"{self.origin}/{root}"

    def reset(self) -> None:
        self.store.reset()
        # Expression indexes matching the kit's column expressions: number/code lookups (series,
        # duplicates, relations, contact links) and lastModifiedDateTime filters stay O(log n).
        for entity in STORED:
            fields = {"lastModifiedDateTime", KEY_FIELD.get(entity, "id")} & set(ENTITIES[entity].properties)
            if entity == "contacts":
                fields.add("companyNumber")
            if entity == "contactsInformation":
                fields = {"_company", "relatedId"}
            for field in fields:
                self.store.db.execute(
                    f'CREATE INDEX IF NOT EXISTS "{entity}_{field}" ON "{entity}"'
                    f"(json_extract(data, '$.\"{field}\"'))"
                )
        self.series: dict[tuple[str, str], int] = {}
        self.limits.reset()
        self._add_company(DEFAULT_COMPANY)

    def _add_company(self, row: dict[str, Any]) -> None:
        company = str(row["id"]).lower()
        fresh = self.store.get("companies", company) is None
        self.store.put("companies", company, {**row, "id": company})
        if not fresh:
            return
        info = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"companyInformation/{company}")),
            "displayName": row.get("displayName") or row.get("name") or "",
            "currencyCode": LCY,
        }
        self.write(company, "companyInformation", info, None, trusted=True)
        for code, name in COUNTRIES:
            self.write(company, "countriesRegions", {"code": code, "displayName": name}, None, trusted=True)

    def kind(self, request: Request) -> str:
        return "batch" if request.url.path.endswith("$batch") else super().kind(request)

    # --- records ---------------------------------------------------------------------------------------
    def etag(self, record: dict[str, Any]) -> str:
        token = base64.b64encode(
            f"{record['_version']};{record.get('lastModifiedDateTime')}".encode()
        ).decode()
        return f'W/"{token}"'

    def shape(self, record: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
        out = {"@odata.etag": self.etag(record)} if "_version" in record else {}
        out.update({k: v for k, v in record.items() if not k.startswith("_")})
        if select:
            out = {k: v for k, v in out.items() if k in select or k in ("id", "@odata.etag")}
        return out

    def _next_number(self, company: str, entity: str) -> str:
        prefix, start, width = SERIES[entity]
        n = self.series.get((company, entity), start)
        while True:
            candidate = f"{prefix}{n:0{width}d}"
            n += 1
            if not self._find(company, entity, KEY_FIELD[entity], candidate):
                self.series[(company, entity)] = n
                return candidate

    def _find(self, company: str, entity: str, field: str, value: Any) -> dict[str, Any] | None:
        if field == "id":
            return self.store.get(entity, str(value).lower(), company)
        rows = self.store.query(
            entity, f"json_extract(data, '$.\"{field}\"') = ?", [value], part=company, limit=1
        )
        return rows[0] if rows else None

    # --- contract checks -------------------------------------------------------------------------------
    def _check_value(self, entity: str, prop: Property, value: Any) -> Any:
        """The value as stored, or a BcError in BC's words."""
        name, kind = prop.name, prop.type
        if value is None:
            if kind in ("GUID", "string", "date"):
                return None if kind != "string" else ""
            raise BcError(400, "BadRequest", f"Cannot convert a null value to the type of '{name}'.")
        if prop.enum:
            value = " " if value == "_x0020_" else value
            if value not in prop.enum:
                raise BcError(
                    400,
                    "BadRequest",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Microsoft.NAV.{kind.removeprefix('NAV.')}'.",
                )
            return value
        if kind == "string":
            if not isinstance(value, str):
                raise BcError(
                    400, "BadRequest", f"Cannot convert the literal '{value}' to 'Edm.String' ({name})."
                )
            if prop.max_length is not None and len(value) > prop.max_length:
                raise BcError(
                    400,
                    "Application_StringExceededLength",
                    f"The length of the string is {len(value)}, but it must be less than or equal to "
                    f"{prop.max_length} characters. Value: {value}",
                )
        elif kind == "decimal" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BcError(
                400, "BadRequest", f"Cannot convert the literal '{value}' to 'Edm.Decimal' ({name})."
            )
        elif kind == "boolean" and not isinstance(value, bool):
            raise BcError(
                400, "BadRequest", f"Cannot convert the literal '{value}' to 'Edm.Boolean' ({name})."
            )
        elif kind == "GUID":
            if not isinstance(value, str) or not GUID_RE.match(value):
                raise BcError(
                    400,
                    "Application_InvalidGUID",
                    f"Invalid format of GUID string ({name}). The correct format of the GUID string is: "
                    "CDEF7890-ABCD-0123-1234-567890ABCDEF where 0-9, A-F symbolizes hexadecimal digits.",
                )
            value = value.lower()
        return value

    def _check_relations(
        self, company: str, entity: str, record: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Table relations of the fields in the body; a code/id pair to one table is kept in step.
        Returns the company contact a contact's companyNumber points at (None otherwise)."""
        relations, parent = RELATIONS[entity], None
        for name in body:
            rel = relations.get(name)
            if rel is None:
                continue
            target, field, only_type = rel
            partners = [(o, relations[o]) for o in PARTNERS[entity][name] if o not in body]
            if record.get(name) in (None, ""):
                for other, _ in partners:
                    record[other] = None if ENTITIES[entity].properties[other].type == "GUID" else ""
                continue
            found = self._find(company, target, field, record[name])
            if found is not None and only_type and found.get("type") != only_type:
                found = None
            if found is None:
                where = f" where type = {only_type}" if only_type else ""
                raise BcError(
                    400,
                    "Internal_InvalidTableRelation",
                    f"The field {name} of table {entity} contains a value ({record[name]}) that cannot be "
                    f"found in the related table ({target}{where}).",
                )
            for other, other_rel in partners:  # currencyId <-> currencyCode, ...
                record[other] = found[other_rel[1]]
            if entity == "contacts" and name == "companyNumber":
                parent = found
        return parent

    def write(
        self,
        company: str,
        entity: str,
        body: dict[str, Any],
        current: dict[str, Any] | None,
        *,
        trusted: bool = False,
        contact_hint: dict[str, Any] | None = None,
        hidden: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create (current None) or update one record; `trusted` (the admin seed) may set read-only
        fields; `hidden` sets internal fields (a company contact's business relations). Raises
        BcError and changes nothing when the body breaks the contract."""
        e = ENTITIES[entity]
        record = dict(current) if current else {**DEFAULTS.get(entity, {})}
        for name, value in body.items():
            if name == "@odata.etag":
                continue
            prop = e.properties.get(name)
            if prop is None:
                raise BcError(
                    400,
                    "BadRequest",
                    f"The property '{name}' does not exist on type 'Microsoft.NAV.{SINGULAR[entity]}'. "
                    "Make sure to only use property names that are defined by the type.",
                )
            if name == "id":
                if current is None:
                    record["id"] = self._check_value(entity, prop, value)
                elif str(value).lower() != current["id"]:
                    raise BcError(400, "BadRequest_InvalidOperation", "Control 'id' is read-only")
                continue
            if prop.read_only and not trusted:
                # dynamics_error_codes: ODataInvalidOperationException "Control '…' is read-only".
                raise BcError(400, "BadRequest_InvalidOperation", f"Control '{name}' is read-only")
            record[name] = self._check_value(entity, prop, value)
        record.update(hidden or {})
        if current is None:
            record["id"] = record.get("id") or str(uuid.uuid4())
            if self.store.get(entity, record["id"]) is not None:
                raise BcError(
                    400,
                    "Internal_EntityWithSameKeyExists",
                    f"The record in table {entity} already exists. Identification fields and values: "
                    f"SystemId='{record['id']}'",
                )
        key_field = KEY_FIELD.get(entity)
        if key_field and not record.get(key_field):
            if entity in SERIES:
                record[key_field] = self._next_number(company, entity)
            else:
                raise BcError(
                    400,
                    "Application_FieldValidationException",
                    f"{key_field} must have a value in {SINGULAR[entity]}: {key_field}=. "
                    "It cannot be zero or empty.",
                )
        if current is None:
            for prop in e.properties.values():
                if prop.required and record.get(prop.name) in (None, ""):
                    raise BcError(400, "Application_DialogException", f'A "{prop.name}" must be provided.')
        if key_field and (current is None or current.get(key_field) != record[key_field]):
            twin = self._find(company, entity, key_field, record[key_field])
            if twin is not None and twin["id"] != record["id"]:
                raise BcError(
                    400,
                    "Internal_EntityWithSameKeyExists",
                    f"The record in table {entity} already exists. Identification fields and values: "
                    f"{key_field}='{record[key_field]}'",
                )
        parent = self._check_relations(company, entity, record, body)
        if entity == "contacts":
            parent = self._contact_links(company, record, parent)
        if entity in LINK_TYPE and current is None:
            # The company contact BC's Marketing setup creates with the customer/vendor.
            record["_contact"] = str((contact_hint or {}).get("id") or uuid.uuid4()).lower()
        if "lastModifiedDateTime" in e.properties:
            record["lastModifiedDateTime"] = self.clock.now()
        record["_version"] = self.store.next_version()
        self.store.put(entity, record["id"], record, part=company, version=record["_version"])
        if entity in LINK_TYPE:
            self._company_contact(company, entity, record, current, contact_hint)
        if entity == "contacts":
            self._after_contact(company, record, current, parent)
        return record

    # --- contacts and business relations ---------------------------------------------------------------
    def _contact_links(
        self, company: str, record: dict[str, Any], parent: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """companyNumber/companyName/contactBusinessRelation as BC keeps them; returns the company."""
        if record.get("type") == "Company":
            record["companyNumber"] = record["number"]
            record["companyName"] = record.get("displayName") or ""
            links = record.get("_links") or []
            kinds = {kind for kind, _ in links}
            record["contactBusinessRelation"] = (
                "None" if not links else (next(iter(kinds)) if len(links) == 1 else "Multiple")
            )
            return record
        if parent is None and record.get("companyNumber"):
            parent = self._find(company, "contacts", "number", record["companyNumber"])
        record["companyName"] = (parent or {}).get("displayName") or ""
        record["contactBusinessRelation"] = (parent or {}).get("contactBusinessRelation") or "None"
        return parent

    def _after_contact(
        self,
        company: str,
        record: dict[str, Any],
        current: dict[str, Any] | None,
        head: dict[str, Any] | None,
    ) -> None:
        if record.get("type") == "Company":
            watched = ("displayName", "contactBusinessRelation", "number", "_links")
            if current is not None and any(current.get(f) != record.get(f) for f in watched):
                for person in self._persons(company, record["number"]):
                    if person["id"] == record["id"]:
                        continue
                    person["companyName"] = record.get("displayName") or ""
                    person["contactBusinessRelation"] = record["contactBusinessRelation"]
                    person["lastModifiedDateTime"] = self.clock.now()
                    person["_version"] = self.store.next_version()
                    self.store.put("contacts", person["id"], person, part=company, version=person["_version"])
                self._refresh_info(company, record["number"])
            elif current is None and record.get("_links"):
                self._info_rows(company, record, record)
            return
        old = (current or {}).get("companyNumber")
        if old and old != record.get("companyNumber"):
            self._refresh_info(company, old)
        if head is not None:
            self._info_rows(company, head, record)

    def _info_rows(self, company: str, head: dict[str, Any], person: dict[str, Any]) -> None:
        """The contactsInformation rows of one contact: one per business relation of its company."""
        for kind, related in head.get("_links") or []:
            row = {
                "contactId": person["id"],
                "contactNumber": person["number"],
                "contactName": person.get("displayName") or "",
                "contactType": person.get("type"),
                "relatedId": related,
                "relatedType": kind,
                "_company": head["number"],
            }
            self.store.put("contactsInformation", f"{related}:{person['id']}", row, part=company)

    def _persons(self, company: str, number: str) -> list[dict[str, Any]]:
        return self.store.query(
            "contacts", "json_extract(data, '$.\"companyNumber\"') = ?", [number], part=company, limit=10**9
        )

    def _company_contact(
        self,
        company: str,
        entity: str,
        record: dict[str, Any],
        current: dict[str, Any] | None,
        hint: dict[str, Any] | None,
    ) -> None:
        """Create the company contact of a new customer/vendor with its business relation, or keep it
        in step with the customer/vendor (CustCont-Update.OnInsert/OnModify)."""
        values = {f: record.get(f) or "" for f in CONTACT_COPY}
        values["displayName"] = values["displayName"][:100]
        if current is None:
            body = {"type": "Company", **values, "id": record["_contact"]}
            if (hint or {}).get("number"):
                body["number"] = hint["number"]
            self.write(
                company, "contacts", body, None, hidden={"_links": [[LINK_TYPE[entity], record["id"]]]}
            )
            return
        contact = self.store.get("contacts", record.get("_contact") or "", company)
        if contact is not None and any(contact.get(f) != v for f, v in values.items()):
            self.write(company, "contacts", values, contact)

    def _unlink(self, company: str, entity: str, record: dict[str, Any]) -> None:
        """A deleted customer/vendor takes its business relation with it (the contact stays)."""
        contact = self.store.get("contacts", record.get("_contact") or "", company)
        if contact is not None:
            links = [link for link in contact.get("_links") or [] if link[1] != record["id"]]
            self.write(company, "contacts", {}, contact, hidden={"_links": links})

    def _refresh_info(self, company: str, company_number: str) -> None:
        """All contactsInformation rows of one company contact: it and its persons, per relation."""
        self.store.db.execute(
            'DELETE FROM "contactsInformation" WHERE json_extract(data, \'$."_company"\') = ? AND part = ?',
            (company_number, company),
        )
        head = self._find(company, "contacts", "number", company_number)
        if head is None or head.get("type") != "Company":
            return
        for person in [head] + [p for p in self._persons(company, company_number) if p["id"] != head["id"]]:
            self._info_rows(company, head, person)

    # --- routing ---------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        out = []
        for root in ROOTS:
            prefix = "/v2.0/{tenant}/{environment}/api/" + root

            async def document(request: Request, root=root) -> Response:
                return await self.route(request, root, "")

            async def metadata(request: Request, root=root) -> Response:
                try:
                    self._check_target(request)
                except BcError as exc:
                    return self.error(exc.status, exc.code, exc.message)
                return Response(self.metadata(root), media_type="application/xml")

            async def batch(request: Request, root=root) -> Response:
                return await self.batch_route(request, root)

            async def path(request: Request, root=root) -> Response:
                return await self.route(request, root, request.path_params["path"])

            out += [
                Route(prefix, document, methods=["GET"]),
                Route(prefix + "/", document, methods=["GET"]),
                Route(prefix + "/$metadata", metadata, methods=["GET"]),
                Route(prefix + "/$batch", batch, methods=["POST"]),
                Route(prefix + "/{path:path}", path, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
            ]
        return out

    def _check_target(self, request: Request) -> None:
        claims = request.scope.get("state", {}).get("claims", {})
        if (
            request.path_params["tenant"] != claims.get("tid")
            or request.path_params["environment"] != self.environment
        ):
            raise BcError(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials (tenant or environment of the URL).",
            )

    async def route(self, request: Request, root: str, path: str) -> Response:
        try:
            self._check_target(request)
            body = None
            if request.method in ("POST", "PATCH", "PUT"):
                try:
                    body = json.loads(await request.body() or b"{}")
                except ValueError:
                    raise BcError(400, "BadRequest", "The request body is not valid JSON.") from None
            with self.lock:
                status, payload, headers = self.handle(
                    root, request.method, path, dict(request.query_params), dict(request.headers), body
                )
        except BcError as exc:
            return self.error(exc.status, exc.code, exc.message)
        except ODataError as exc:
            return self.error(exc.status, "BadRequest", exc.message)
        if payload is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(payload, status_code=status, headers=headers)

    def handle(self, root: str, method: str, path: str, params: dict, headers: dict, body: Any):
        headers = {k.lower(): v for k, v in headers.items()}
        base = self.base(root)
        if body is not None and not isinstance(body, dict):
            raise BcError(400, "BadRequest", "The request body must be a JSON object.")
        unknown = [p for p in params if p.startswith("$") and p not in QUERY_OPTIONS]
        if unknown:
            raise BcError(400, "BadRequest", f"The query parameter '{unknown[0]}' is not supported.")
        path = path.rstrip("/")
        if path == "":
            if method != "GET":
                raise BcError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")
            sets = sorted(ROOTS[root])
            value = [{"name": s, "kind": "EntitySet", "url": s} for s in sets]
            return 200, {"@odata.context": f"{base}/$metadata", "value": value}, None
        if path == "companies":
            if method != "GET":
                raise BcError(405, "BadRequest_MethodNotAllowed", "Companies are read-only.")
            rows = self.store.query("companies", "1=1", [], limit=1000)
            return 200, {"@odata.context": f"{base}/$metadata#companies", "value": rows}, None
        match = re.fullmatch(rf"companies\({GUID}\)(?:/(\w+)(?:\({GUID}\))?(?:/(\w+))?)?", path)
        if not match:
            raise BcError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches '{path}'.")
        company, entity, key, bound = match.group(1).lower(), match.group(2), match.group(3), match.group(4)
        if self.store.get("companies", company) is None:
            raise BcError(404, "Internal_CompanyNotFound", f"The company {company} does not exist.")
        if entity is None:
            return 200, self.store.get("companies", company), None
        if entity not in ROOTS[root] or entity == "companies":
            raise BcError(404, "BadRequest_NotFound", f"Resource not found for the segment '{entity}'.")
        if not bound and method not in ENTITIES[entity].methods:
            raise BcError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed on {entity}.")
        key = key.lower() if key else None
        current = self.store.get(entity, key, company) if key else None
        if key and current is None:
            raise BcError(404, "Internal_RecordNotFound", f"The {entity} record {key} does not exist.")
        if bound:
            if (
                bound != "contactsInformation"
                or entity not in ENTITIES["contactsInformation"].bound_to
                or not key
            ):
                raise BcError(404, "BadRequest_NotFound", f"Resource not found for the segment '{bound}'.")
            if method != "GET":
                raise BcError(
                    405, "BadRequest_MethodNotAllowed", f"{method} is not allowed on contactsInformation."
                )
            scope = ("json_extract(data, '$.\"relatedId\"') = ?", [key])
            return 200, self.list(base, company, "contactsInformation", params, headers, scope, path), None
        if method == "GET":
            if current:
                return 200, self.shape(current, _select(params)), None
            size = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
            applied = {"Preference-Applied": f"odata.maxpagesize={size.group(1)}"} if size else None
            return 200, self.list(base, company, entity, params, headers), applied
        if method == "POST" and not key:
            record = self.write(company, entity, body or {}, None)
            return 201, self.shape(record), {"ETag": self.etag(record)}
        if method in ("PATCH", "DELETE") and key:
            expected = headers.get("if-match")
            if not expected:
                # What real BC answers when If-Match is missing (not 428).
                raise BcError(
                    400,
                    "BadRequest_InvalidToken",
                    "Could not validate the client concurrency token required by the service. "
                    "Please provide a valid token in the client request.",
                )
            if expected != "*" and expected != self.etag(current):
                raise BcError(409, "Request_EntityChanged", "Another user has already changed the record.")
            if method == "DELETE":
                self.store.delete(entity, key, company)
                if entity in LINK_TYPE:
                    self._unlink(company, entity, current)
                if entity == "contacts":
                    self._refresh_info(company, current.get("companyNumber") or current["number"])
                return 204, None, None
            record = self.write(company, entity, body or {}, current)
            return 200, self.shape(record), {"ETag": self.etag(record)}
        raise BcError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")

    def list(
        self,
        base: str,
        company: str,
        entity: str,
        params: dict,
        headers: dict,
        scope: tuple[str, list] | None = None,
        path: str | None = None,
    ) -> dict[str, Any]:
        columns = self.columns[entity]
        select = _select(params)
        unknown = [s for s in select if s not in columns]
        if unknown:
            raise ODataError(
                f"Could not find a property named '{unknown[0]}' on type 'Microsoft.NAV.{SINGULAR[entity]}'."
            )
        where, args = compile_filter(params.get("$filter"), columns)
        if scope:
            where, args = f"({where}) AND {scope[0]}", [*args, *scope[1]]
        order = order_clause(params.get("$orderby"), columns)
        size_match = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
        size = max(1, min(int(size_match.group(1)), 20000)) if size_match else 20000
        state = _token(params.get("$skiptoken"))
        skip = _count_option(params, "$skip") or 0
        top = _count_option(params, "$top")
        taken = state.get("n", 0)
        limit = max(0, min(size, top - taken)) if top is not None else size
        by_offset = bool(order or skip)
        rows = self.store.query(
            entity,
            where,
            args,
            part=company,
            after=None if by_offset else state.get("after"),
            order=order,
            offset=(skip + state.get("offset", 0)) if by_offset else 0,
            limit=limit + 1,
        )
        more = len(rows) > limit and (top is None or taken + limit < top)
        rows = rows[:limit]
        target = path or f"companies({company})/{entity}"
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{target}"}
        body["value"] = [self.shape(r, select) for r in rows]
        if params.get("$count") == "true":
            body["@odata.count"] = self.store.count(entity, where, args, part=company)
        if more:
            nxt: dict[str, Any] = {"n": taken + len(rows)}
            if by_offset:
                nxt["offset"] = state.get("offset", 0) + len(rows)
            else:
                nxt["after"] = self._key_of(entity, rows[-1])
            query = {k: v for k, v in params.items() if k != "$skiptoken"}
            query["$skiptoken"] = base64.urlsafe_b64encode(json.dumps(nxt).encode()).decode()
            # Real BC writes `$skiptoken` unescaped in its nextLink.
            body["@odata.nextLink"] = f"{base}/{target}?{urlencode(query, safe='$')}"
        return body

    @staticmethod
    def _key_of(entity: str, row: dict[str, Any]) -> str:
        return f"{row['relatedId']}:{row['contactId']}" if entity == "contactsInformation" else row["id"]

    async def batch_route(self, request: Request, root: str) -> Response:
        try:
            self._check_target(request)
            payload = json.loads(await request.body() or b"{}")
        except BcError as exc:
            return self.error(exc.status, exc.code, exc.message)
        except ValueError:
            return self.error(400, "BadRequest", "The request body is not valid JSON.")
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            return self.error(400, "BadRequest", "A $batch body needs a non-empty 'requests' array.")
        if len(requests) > 100:
            return self.error(400, "BadRequest", "The batch request exceeds the limit of 100 operations.")
        # `Isolation: snapshot` makes the batch one transaction: any failed operation undoes them all.
        snapshot = request.headers.get("isolation", "").lower() == "snapshot"
        with self.lock:
            if snapshot:
                self.store.db.execute("SAVEPOINT batch")
                series = dict(self.series)
            failed = True
            try:
                responses = [self._batch_op(root, op, n) for n, op in enumerate(requests)]
                failed = any(r["status"] >= 400 for r in responses)
            finally:
                if snapshot:
                    if failed:
                        self.store.db.execute("ROLLBACK TO batch")
                        self.series = series
                    self.store.db.execute("RELEASE batch")
        return JSONResponse({"responses": responses})

    def _batch_op(self, root: str, op: Any, n: int) -> dict[str, Any]:
        if not isinstance(op, dict):
            op = {}
        op_id = op.get("id", str(n))
        url = str(op.get("url", ""))
        for candidate in ROOTS:  # absolute URLs are allowed too, to either root
            if f"/api/{candidate}/" in url:
                root, url = candidate, url.split(f"/api/{candidate}/", 1)[1]
                break
        path, _, query = url.lstrip("/").partition("?")
        try:
            status, body, headers = self.handle(
                root,
                str(op.get("method", "GET")).upper(),
                path,
                dict(parse_qsl(query, keep_blank_values=True)),
                op.get("headers") or {},
                op.get("body"),
            )
        except BcError as exc:
            status, headers, body = exc.status, None, {"error": {"code": exc.code, "message": exc.message}}
        except ODataError as exc:
            status, headers, body = 400, None, {"error": {"code": "BadRequest", "message": exc.message}}
        answer: dict[str, Any] = {"id": op_id, "status": status, "headers": headers or {}}
        if body is not None:
            answer["body"] = body
        return answer

    # --- $metadata -------------------------------------------------------------------------------------
    def metadata(self, root: str) -> str:
        """CSDL of the root's entity sets, generated from the contract."""
        sets = sorted(ROOTS[root])
        enums: dict[str, tuple[str, ...]] = {}
        types = []
        for name in sets:
            e = ENTITIES[name]
            key = "contactId" if name == "contactsInformation" else "id"
            props = []
            for p in e.properties.values():
                if p.enum:
                    enum = p.type.removeprefix("NAV.")
                    enums[enum] = p.enum
                    kind = f"Microsoft.NAV.{enum}"
                else:
                    kind = EDM.get(p.type, "Edm.String")
                length = f' MaxLength="{p.max_length}"' if p.max_length else ""
                nullable = ' Nullable="false"' if p.name == key else ""
                props.append(f'<Property Name="{p.name}" Type="{kind}"{nullable}{length}/>')
            if name == "companies":
                props += [
                    f'<NavigationProperty Name="{s}" Type="Collection(Microsoft.NAV.{SINGULAR[s]})" '
                    'ContainsTarget="true"/>'
                    for s in sets
                    if s != "companies"
                ]
            if name in ENTITIES["contactsInformation"].bound_to and "contactsInformation" in sets:
                props.append(
                    '<NavigationProperty Name="contactsInformation" '
                    'Type="Collection(Microsoft.NAV.contactInformation)" ContainsTarget="true"/>'
                )
            types.append(
                f'<EntityType Name="{SINGULAR[name]}"><Key><PropertyRef Name="{key}"/></Key>'
                + "".join(props)
                + "</EntityType>"
            )
        enum_xml = [
            f'<EnumType Name="{n}">'
            + "".join(f'<Member Name="{escape(_edm_name(m))}" Value="{i}"/>' for i, m in enumerate(members))
            + "</EnumType>"
            for n, members in sorted(enums.items())
        ]
        container = (
            '<EntityContainer Name="NAV">'
            + "".join(f'<EntitySet Name="{s}" EntityType="Microsoft.NAV.{SINGULAR[s]}"/>' for s in sets)
            + "</EntityContainer>"
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
            '<Schema Namespace="Microsoft.NAV" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
            + "".join(enum_xml + types)
            + container
            + "</Schema></edmx:DataServices></edmx:Edmx>"
        )

    # --- admin -------------------------------------------------------------------------------------------
    SEED_ORDER = [
        "companies",
        "countriesRegions",
        "companyInformation",
        "currencies",
        "currencyExchangeRates",
        "unitsOfMeasure",
        "paymentTerms",
        "shipmentMethods",
        "salespeoplePurchasers",
        "customers",
        "vendors",
        "contacts",
        "items",
        "resources",
    ]

    def _seed(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        """Rows are written as the API would write them (relations checked, company contacts and
        business relations created), but may set read-only fields. A customer/vendor row may carry
        `companyContact: {id, number}` to fix its company contact's keys (deterministic demo data)."""
        counts = {}
        for entity in sorted(data, key=lambda e: self.SEED_ORDER.index(e) if e in self.SEED_ORDER else 99):
            rows = data[entity]
            if entity == "companies":
                for row in rows:
                    self._add_company(row)
            elif entity not in STORED or entity == "contactsInformation":
                raise KeyError(entity)
            else:
                for row in rows:
                    company = str(row.get("companyId") or DEFAULT_COMPANY["id"]).lower()
                    hint = row.get("companyContact")
                    fields = {k: v for k, v in row.items() if k not in ("companyId", "companyContact")}
                    current = None
                    if entity == "companyInformation":
                        current = self.store.query("companyInformation", "1=1", [], part=company, limit=1)[0]
                        fields.pop("id", None)
                    elif row.get("id"):
                        current = self.store.get(entity, str(row["id"]).lower(), company)
                    if current is not None:
                        fields.pop("id", None)
                    try:
                        self.write(company, entity, fields, current, trusted=True, contact_hint=hint)
                    except BcError as exc:
                        raise KeyError(f"{entity} row {row}: {exc.code}: {exc.message}") from None
            counts[entity] = len(rows)
        return counts

    def records(self, entity: str) -> list[dict[str, Any]]:
        if entity == "companies":
            return self.store.query("companies", "1=1", [], limit=10**9)
        if entity not in STORED:
            raise KeyError(entity)
        return [self.shape(r) for r in self.store.query(entity, "1=1", [], limit=10**9)]


def _select(params: dict) -> list[str]:
    return [s for s in str(params.get("$select") or "").split(",") if s]


def _count_option(params: dict, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not str(value).isdigit():
        raise ODataError(f"Invalid value for {name}: '{value}' is not a non-negative integer.")
    return int(value)


def _token(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        return json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        raise ODataError("The skip token is invalid.") from None
