"""The entities a mapping may name, and their fields (validation of mappings and filters).

BC API v2.0 entities (plus the salespeople/resources API extension) and Dataverse entity sets. A
mapping naming a field that is not listed here is rejected with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BC_COMMON = ("id", "lastModifiedDateTime")
BC_ENTITIES: dict[str, tuple[str, ...]] = {
    "currencies": ("code", "displayName", "symbol", "amountDecimalPlaces"),
    "salespeople": ("code", "name", "email", "phoneNumber", "blocked"),
    "unitsOfMeasure": ("code", "displayName", "internationalStandardCode"),
    "customers": (
        "number", "displayName", "type", "addressLine1", "addressLine2", "city", "state", "country",
        "postalCode", "phoneNumber", "email", "website", "salespersonCode", "creditLimit", "currencyId",
        "currencyCode", "blocked",
    ),
    "contacts": (
        "number", "type", "displayName", "firstName", "surname", "jobTitle", "companyNumber", "companyName",
        "email", "phoneNumber", "mobilePhoneNumber",
    ),
    "items": (
        "number", "displayName", "type", "blocked", "unitPrice", "unitCost", "inventory",
        "baseUnitOfMeasureId", "baseUnitOfMeasureCode",
    ),
    "resources": (
        "number", "name", "type", "blocked", "unitPrice", "unitCost", "baseUnitOfMeasureId",
        "baseUnitOfMeasureCode",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class CrmEntity:
    entity_set: str
    logical_name: str
    fields: tuple[str, ...]
    # lookup attribute -> (navigation property used in @odata.bind, target entity set)
    lookups: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.logical_name}id"

    def all_fields(self) -> set[str]:
        common = {self.key, "createdon", "modifiedon", "versionnumber", "statecode", "statuscode"}
        lookups = {f"_{name}_value" for name in self.lookups} | {"_modifiedby_value", "_createdby_value"}
        return set(self.fields) | common | lookups | set(self.lookups)


CRM_ENTITIES: dict[str, CrmEntity] = {
    e.entity_set: e
    for e in (
        CrmEntity(
            "transactioncurrencies",
            "transactioncurrency",
            ("isocurrencycode", "currencyname", "currencysymbol", "exchangerate", "currencyprecision"),
        ),
        CrmEntity(
            "systemusers",
            "systemuser",
            (
                "fullname",
                "firstname",
                "lastname",
                "internalemailaddress",
                "mobilephone",
                "isdisabled",
                "islicensed",
                "accessmode",
                "applicationid",
                "azureactivedirectoryobjectid",
            ),
        ),  # fmt: skip
        CrmEntity("uomschedules", "uomschedule", ("name", "baseuomname", "description")),
        CrmEntity(
            "accounts",
            "account",
            (
                "name",
                "accountnumber",
                "address1_line1",
                "address1_line2",
                "address1_city",
                "address1_stateorprovince",
                "address1_country",
                "address1_postalcode",
                "telephone1",
                "emailaddress1",
                "websiteurl",
                "creditlimit",
                "customertypecode",
            ),
            {
                "transactioncurrencyid": ("transactioncurrencyid", "transactioncurrencies"),
                "ownerid": ("ownerid", "systemusers"),
                "parentaccountid": ("parentaccountid", "accounts"),
            },
        ),  # fmt: skip
        CrmEntity(
            "contacts",
            "contact",
            ("firstname", "lastname", "fullname", "emailaddress1", "telephone1", "mobilephone", "jobtitle"),
            {"parentcustomerid": ("parentcustomerid_account", "accounts")},
        ),
        CrmEntity(
            "products",
            "product",
            ("name", "productnumber", "price", "standardcost", "quantityonhand", "producttypecode"),
            {"defaultuomscheduleid": ("defaultuomscheduleid", "uomschedules")},
        ),
    )
}


def bc_fields(entity: str) -> set[str]:
    return set(BC_ENTITIES[entity]) | set(BC_COMMON)
