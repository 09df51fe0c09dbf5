"""The default integration table mappings, as declarative data, after BC's codeunit "CDS Setup Defaults"
(codeunit 7204, public in StefanMaron/MSDyn365BC.Code.History and microsoft/BCApps), field
by field wherever API v2.0 (or the project's API page) exposes the BC field. BC fields the API does not
expose are left out: the customer's Fax No. and Primary Contact No., the contact's Fax No., Pager, Currency
Code and Salesperson Code, the item's Unit Volume, Gross Weight and vendor fields."""

from __future__ import annotations

from typing import Any

from shared.mappings.model import Mapping

TO, FROM, BOTH = "ToIntegrationTable", "FromIntegrationTable", "Bidirectional"


def _f(bc: str | None, crm: str | None, direction: str = BOTH, **extra: Any) -> dict[str, Any]:
    return {"bc": bc, "crm": crm, "direction": direction, **extra}


# BC's postal address fields and Dataverse's first address, both ways (customers/accounts, contacts).
ADDRESS = [
    _f("addressLine1", "address1_line1"),
    _f("addressLine2", "address1_line2"),
    _f("city", "address1_city"),
    _f("state", "address1_stateorprovince"),
    _f("country", "address1_country"),
    _f("postalCode", "address1_postalcode"),
]

DEFAULT_MAPPINGS: list[dict[str, Any]] = [
    {
        "name": "CURRENCY",
        "bc_entity": "currencies",
        "crm_entity": "transactioncurrencies",
        "direction": TO,
        "bc_ref_field": "code",
        "fields": [
            _f("code", "isocurrencycode", TO, match_priority=1),
            _f("displayName", "currencyname", TO),
            _f("symbol", "currencysymbol", TO, transform="or_code"),
            # FCY per unit of the Dataverse base currency, as BC's GetCRMLCYToFCYExchangeRate computes it.
            _f("code", "exchangerate", TO, transform="exchange_rate"),
            _f("amountDecimalPlaces", "currencyprecision", TO, transform="decimal_places"),
        ],
    },
    {
        "name": "SALESPEOPLE",
        "bc_entity": "salespeoplePurchasers",
        "crm_entity": "systemusers",
        "direction": FROM,
        # Enabled, licensed, interactive users: application users (the integration user) are accessmode 4.
        "crm_filter": "isdisabled eq false and islicensed eq true and accessmode ne 4",
        "bc_ref_field": "code",
        "fields": [
            _f("displayName", "fullname", FROM),
            _f("email", "internalemailaddress", FROM, match_priority=1),
            _f("phoneNo", "mobilephone", FROM),
            # Code is the key, required and without a number series: made from the name once, at create.
            _f("code", "fullname", FROM, transform="new_code"),
        ],
    },
    {
        "name": "UNIT OF MEASURE",
        "bc_entity": "unitsOfMeasure",
        "crm_entity": "uomschedules",
        "direction": TO,
        "bc_ref_field": "code",
        "fields": [
            _f("code", "name", TO, match_priority=1),
            _f("code", "baseuomname", TO),
            _f("displayName", "description", TO),
        ],
    },
    # Option mappings (BC's "CRM Option Mapping"): BC codes -> options of an account choice column, read
    # and created through the attribute's metadata (shared/connectors/option_sets.py). Toward Dataverse,
    # as CDS Setup Defaults sets PAYMENT TERMS and SHIPMENT METHOD up (direction ToIntegrationTable, synch.
    # only coupled records, coupling codeunit "CDS Int. Option Couple").
    {
        "name": "PAYMENT TERMS",
        "bc_entity": "paymentTerms",
        "crm_entity": "accounts.paymenttermscode",
        "direction": TO,
        "create_new_if_no_match": True,
        "bc_ref_field": "code",
        "fields": [_f("code", "label", TO, match_priority=1)],
    },
    {
        "name": "SHIPMENT METHOD",
        "bc_entity": "shipmentMethods",
        "crm_entity": "accounts.address1_freighttermscode",
        "direction": TO,
        "create_new_if_no_match": True,
        "bc_ref_field": "code",
        "fields": [_f("code", "label", TO, match_priority=1)],
    },
    {
        "name": "CUSTOMER",
        "bc_entity": "customers",
        "crm_entity": "accounts",
        "direction": BOTH,
        "depends_on": ["CURRENCY", "SALESPEOPLE", "PAYMENT TERMS", "SHIPMENT METHOD"],
        # BC's table filter: Blocked = ' ' (a customer blocked for shipping or invoicing stays out too).
        "bc_filter": "blocked eq ' '",
        "crm_filter": "statecode eq 0 and customertypecode eq 3",
        "bc_ref_field": "number",
        "fields": [
            _f("number", "accountnumber", TO, match_priority=1),
            _f("displayName", "name", match_priority=2),
            _f("email", "emailaddress1", match_priority=2),
            *ADDRESS,
            _f("phoneNumber", "telephone1"),
            _f("website", "websiteurl"),
            _f("creditLimit", "creditlimit", TO),
            _f("currencyId", "transactioncurrencyid", TO, lookup="CURRENCY", clear_on_fail=True),
            # Toward Dataverse only, and never emptied (BC: ToIntegrationTable, "Not Null").
            _f(
                "salespersonCode",
                "ownerid",
                TO,
                lookup="SALESPEOPLE",
                bc_lookup_key="code",
                clear_on_fail=True,
                keep_if_empty=True,
            ),  # fmt: skip
            # Both ways as BC's Payment Terms Code / Shipment Method Code; an option without a coupled BC
            # code fails the record (BC does not clear these on a failed sync).
            _f("paymentTermsId", "paymenttermscode", lookup="PAYMENT TERMS", transform="option_value"),
            _f(
                "shipmentMethodId",
                "address1_freighttermscode",
                lookup="SHIPMENT METHOD",
                transform="option_value",
            ),
            _f(None, "customertypecode", TO, constant=3),
            _f("type", None, FROM, constant="Company"),
        ],
    },
    {
        "name": "CONTACT",
        "bc_entity": "contacts",
        "crm_entity": "contacts",
        "direction": BOTH,
        "depends_on": ["CUSTOMER"],
        # Persons of a customer company: BC gives a person its company's business relation, so persons
        # of vendors, of companies that are both, or without a company stay out.
        "bc_filter": "type eq 'Person' and contactBusinessRelation eq 'Customer'",
        "crm_filter": "statecode eq 0 and _parentcustomerid_value ne null",
        "fields": [
            _f("email", "emailaddress1", match_priority=1),
            _f("displayName", "fullname", transform="person_name", match_priority=2),
            # companyNumber is the company contact's number; its Customer business relation names the
            # customer (contactsInformation), whose coupling names the account.
            _f(
                "companyNumber",
                "parentcustomerid",
                lookup="CUSTOMER",
                bc_lookup_key="companyContact",
                match_priority=2,
            ),
            *ADDRESS,
            _f("phoneNumber", "telephone1"),
            _f("mobilePhoneNumber", "mobilephone"),
            _f("jobTitle", "jobtitle"),
            _f("type", None, FROM, constant="Person"),
        ],
    },
    {
        "name": "RESOURCE-PRODUCT",
        "bc_entity": "resources",
        "crm_entity": "products",
        "direction": TO,
        "depends_on": ["UNIT OF MEASURE"],
        "crm_filter": "producttypecode eq 3",
        "bc_ref_field": "number",
        "fields": [
            _f("number", "productnumber", TO, match_priority=1),
            _f("displayName", "name", TO),
            _f("unitPrice", "price", TO),
            _f("unitCost", "standardcost", TO),
            _f(
                "baseUnitOfMeasureCode",
                "defaultuomscheduleid",
                TO,
                lookup="UNIT OF MEASURE",
                bc_lookup_key="code",
                clear_on_fail=True,
            ),
            _f(
                "baseUnitOfMeasureCode",
                "defaultuomid",
                TO,
                lookup="UNIT OF MEASURE",
                bc_lookup_key="code",
                clear_on_fail=True,
                transform="base_uom",
            ),
            _f("blocked", "statecode", TO, transform="product_state"),
            _f(None, "producttypecode", TO, constant=3),
            _f(None, "quantitydecimal", TO, constant=2),
        ],
    },
    {
        "name": "ITEM-PRODUCT",
        "bc_entity": "items",
        "crm_entity": "products",
        "direction": BOTH,
        "depends_on": ["UNIT OF MEASURE"],
        "crm_filter": "producttypecode eq 1",
        "bc_ref_field": "number",
        "fields": [
            _f("number", "productnumber", TO, match_priority=1),
            _f("displayName", "name"),
            _f("unitPrice", "price", TO),
            _f("unitCost", "standardcost", TO),
            _f("unitCost", "currentcost", TO),
            _f("inventory", "quantityonhand", TO),
            _f("baseUnitOfMeasureId", "defaultuomscheduleid", lookup="UNIT OF MEASURE", clear_on_fail=True),
            _f(
                "baseUnitOfMeasureId",
                "defaultuomid",
                TO,
                lookup="UNIT OF MEASURE",
                clear_on_fail=True,
                transform="base_uom",
            ),
            # A blocked item retires its product, unblocking activates it again (BC's CRMSynchHelper).
            _f("blocked", "statecode", TO, transform="product_state"),
            _f(None, "producttypecode", TO, constant=1),
            # BC's CRM Setup Defaults GetProductQuantityPrecision.
            _f(None, "quantitydecimal", TO, constant=2),
            _f("type", None, FROM, constant="Inventory"),
        ],
    },
]

SEED_ORDER = [m["name"] for m in DEFAULT_MAPPINGS]


def default_mappings() -> list[Mapping]:
    return [Mapping.model_validate(m) for m in DEFAULT_MAPPINGS]
