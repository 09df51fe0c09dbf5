"""Unit tests for the mapping model, the default mappings and their validation (docs/ARCHITECTURE.md §7)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from shared.mappings import (
    DEFAULT_MAPPINGS,
    SEED_ORDER,
    FieldMapping,
    Mapping,
    MappingError,
    default_mappings,
    topological_order,
    validate_mappings,
)
from shared.mappings.entities import CRM_ENTITIES, bc_fields
from shared.odata_filter import compile_filter, properties

EXPECTED_ORDER = [
    "CURRENCY",
    "SALESPEOPLE",
    "UNIT OF MEASURE",
    "PAYMENT TERMS",
    "SHIPMENT METHOD",
    "CUSTOMER",
    "CONTACT",
    "RESOURCE-PRODUCT",
    "ITEM-PRODUCT",
]


def defaults_raw() -> list[dict[str, Any]]:
    return copy.deepcopy(DEFAULT_MAPPINGS)


def raw(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = defaults_raw()
    return data, next(m for m in data if m["name"] == name)


def build(data: list[dict[str, Any]]) -> list[Mapping]:
    return [Mapping.model_validate(m) for m in data]


def by_name(name: str) -> Mapping:
    return next(m for m in default_mappings() if m.name == name)


def test_defaults_validate_in_seed_order() -> None:
    validated = validate_mappings(default_mappings())
    assert [m.name for m in validated] == EXPECTED_ORDER
    assert SEED_ORDER == EXPECTED_ORDER
    assert topological_order(default_mappings()) == EXPECTED_ORDER


def test_dependency_order_respected_even_when_shuffled() -> None:
    order = topological_order(list(reversed(default_mappings())))
    position = {n: i for i, n in enumerate(order)}
    for m in default_mappings():
        for dep in m.depends_on:
            assert position[dep] < position[m.name], (dep, m.name)
    assert sorted(order) == sorted(EXPECTED_ORDER)


def test_default_dependencies_per_design() -> None:
    deps = {m.name: set(m.depends_on) for m in default_mappings()}
    assert deps == {
        "CURRENCY": set(),
        "SALESPEOPLE": set(),
        "UNIT OF MEASURE": set(),
        "PAYMENT TERMS": set(),
        "SHIPMENT METHOD": set(),
        "CUSTOMER": {"CURRENCY", "SALESPEOPLE", "PAYMENT TERMS", "SHIPMENT METHOD"},
        "CONTACT": {"CUSTOMER"},
        "RESOURCE-PRODUCT": {"UNIT OF MEASURE"},
        "ITEM-PRODUCT": {"UNIT OF MEASURE"},
    }
    directions = {m.name: m.direction for m in default_mappings()}
    assert directions == {
        "CURRENCY": "ToIntegrationTable",
        "SALESPEOPLE": "FromIntegrationTable",
        "UNIT OF MEASURE": "ToIntegrationTable",
        "PAYMENT TERMS": "ToIntegrationTable",
        "SHIPMENT METHOD": "ToIntegrationTable",
        "CUSTOMER": "Bidirectional",
        "CONTACT": "Bidirectional",
        "RESOURCE-PRODUCT": "ToIntegrationTable",
        "ITEM-PRODUCT": "Bidirectional",
    }


def test_cycle_names_the_mappings() -> None:
    data, currency = raw("CURRENCY")
    currency["depends_on"] = ["CONTACT"]  # CONTACT -> CUSTOMER -> CURRENCY -> CONTACT
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "depends_on"
    for name in ("CURRENCY", "CUSTOMER", "CONTACT"):
        assert name in str(err.value)
    assert "SALESPEOPLE" not in str(err.value)


def test_self_dependency_rejected() -> None:
    data, currency = raw("CURRENCY")
    currency["depends_on"] = ["CURRENCY"]
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "depends_on"
    assert "CURRENCY" in str(err.value)


def test_unknown_dependency_rejected() -> None:
    data, currency = raw("CURRENCY")
    currency["depends_on"] = ["NOPE"]
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert (err.value.field, err.value.mapping) == ("depends_on", "CURRENCY")
    assert "NOPE" in str(err.value)


@pytest.mark.parametrize(("side", "bad"), [("bc", "noSuchField"), ("crm", "nosuchfield")])
def test_unknown_field_names_the_field(side: str, bad: str) -> None:
    data, customer = raw("CUSTOMER")
    customer["fields"][3][side] = bad
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == f"fields[3].{side}"
    assert err.value.mapping == "CUSTOMER"
    assert bad in str(err.value)


def test_field_with_neither_side_rejected() -> None:
    data, customer = raw("CUSTOMER")
    customer["fields"].append({"direction": "Bidirectional"})
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == f"fields[{len(customer['fields']) - 1}]"


@pytest.mark.parametrize(("attr", "bad"), [("bc_entity", "widgets"), ("crm_entity", "widgets")])
def test_unknown_entity(attr: str, bad: str) -> None:
    data, customer = raw("CUSTOMER")
    customer[attr] = bad
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == attr
    assert "widgets" in str(err.value)


def test_lookup_to_missing_mapping() -> None:
    data = [m for m in defaults_raw() if m["name"] != "UNIT OF MEASURE"]
    for m in data:
        m["depends_on"] = [d for d in m.get("depends_on", []) if d != "UNIT OF MEASURE"]
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.mapping == "RESOURCE-PRODUCT"
    assert err.value.field == "fields[4].lookup"
    assert "UNIT OF MEASURE" in str(err.value)


def test_lookup_target_entity_mismatch() -> None:
    data, customer = raw("CUSTOMER")
    lookup = next(f for f in customer["fields"] if f.get("lookup") == "CURRENCY")
    lookup["lookup"] = "SALESPEOPLE"  # transactioncurrencyid points at transactioncurrencies
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == f"fields[{customer['fields'].index(lookup)}].lookup"
    assert "transactioncurrencies" in str(err.value)


def test_lookup_on_non_lookup_crm_field() -> None:
    data, customer = raw("CUSTOMER")
    customer["fields"][3]["lookup"] = "CURRENCY"  # address1_line1 is not a lookup
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "fields[3].crm"


def test_bc_lookup_key_must_be_id_or_ref_field() -> None:
    data, contact = raw("CONTACT")
    lookup = next(f for f in contact["fields"] if f.get("lookup") == "CUSTOMER")
    lookup["bc_lookup_key"] = "displayName"
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == f"fields[{contact['fields'].index(lookup)}].bc_lookup_key"
    # "id" is always allowed, as is the related mapping's bc_ref_field ("number")
    for key in ("id", "number"):
        lookup["bc_lookup_key"] = key
        validate_mappings(build(data))


def test_lookup_needs_dependency() -> None:
    data, contact = raw("CONTACT")
    contact["depends_on"] = []
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert (err.value.field, err.value.mapping) == ("depends_on", "CONTACT")
    assert "CUSTOMER" in str(err.value)


def test_transitive_dependency_satisfies_lookup() -> None:
    data = defaults_raw()
    extra = {
        "name": "PARENT",
        "bc_entity": "customers",
        "crm_entity": "accounts",
        "direction": "ToIntegrationTable",
        "depends_on": ["CONTACT"],  # CONTACT -> CUSTOMER, so the CUSTOMER lookup is covered
        "fields": [{"bc": "id", "crm": "parentaccountid", "lookup": "CUSTOMER"}],
    }
    validate_mappings(build([*data, extra]))
    extra["depends_on"] = ["CURRENCY"]
    with pytest.raises(MappingError) as err:
        validate_mappings(build([*data, extra]))
    assert (err.value.field, err.value.mapping) == ("depends_on", "PARENT")


@pytest.mark.parametrize(
    ("attr", "text"),
    [
        ("bc_filter", "blocked eq"),
        ("bc_filter", "nosuchfield eq 1"),
        ("crm_filter", "(statecode eq 0"),
        ("crm_filter", "bogus eq 3"),
    ],
)
def test_bad_filter(attr: str, text: str) -> None:
    data, customer = raw("CUSTOMER")
    customer[attr] = text
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == attr
    assert err.value.mapping == "CUSTOMER"


def test_duplicate_names() -> None:
    data = defaults_raw()
    data.append(copy.deepcopy(data[0]))
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "name"
    assert "CURRENCY" in str(err.value)


def test_constant_naming_both_sides() -> None:
    data, customer = raw("CUSTOMER")
    customer["fields"][3]["constant"] = "x"
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "fields[3].constant"


@pytest.mark.parametrize("missing", ["bc", "crm"])
def test_match_field_missing_a_side(missing: str) -> None:
    data, customer = raw("CUSTOMER")
    customer["fields"][3][missing] = None
    customer["fields"][3]["match_priority"] = 3
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "fields[3].match_priority"


def test_bad_bc_ref_field() -> None:
    data, customer = raw("CUSTOMER")
    customer["bc_ref_field"] = "nope"
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert err.value.field == "bc_ref_field"


@pytest.mark.parametrize(
    "change",
    [
        {"unknown_key": 1},
        {"direction": "Sideways"},
        {"direction": "bidirectional"},
        {"update_conflict": "Whatever"},
        {"deletion_conflict": "Delete"},
        {"name": ""},
        {"name": "lower case"},
        {"name": " LEADING"},
        {"name": "BAD/NAME"},
        {"name": "X" * 65},
    ],
)
def test_pydantic_rejects_bad_mapping(change: dict[str, Any]) -> None:
    data = {**defaults_raw()[0], **change}
    with pytest.raises(ValidationError):
        Mapping.model_validate(data)


@pytest.mark.parametrize(
    "change",
    [{"unknown": True}, {"direction": "Both"}, {"match_priority": 0}, {"match_priority": 10}],
)
def test_pydantic_rejects_bad_field(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FieldMapping.model_validate({"bc": "a", "crm": "b", **change})


@pytest.mark.parametrize(
    ("kwargs", "to_crm", "from_crm"),
    [
        ({"bc": "a", "crm": "b", "direction": "Bidirectional"}, True, True),
        ({"bc": "a", "crm": "b", "direction": "ToIntegrationTable"}, True, False),
        ({"bc": "a", "crm": "b", "direction": "FromIntegrationTable"}, False, True),
        ({"bc": None, "crm": "b", "direction": "Bidirectional", "constant": 3}, True, False),
        ({"bc": "a", "crm": None, "direction": "Bidirectional", "constant": "x"}, False, True),
        ({"bc": None, "crm": "b", "direction": "FromIntegrationTable", "constant": 3}, False, False),
    ],
)
def test_field_flows(kwargs: dict[str, Any], to_crm: bool, from_crm: bool) -> None:
    f = FieldMapping(**kwargs)
    assert f.flows("to_crm") is to_crm
    assert f.flows("from_crm") is from_crm


def test_field_key_and_constant() -> None:
    assert FieldMapping(bc="a", crm="b").key == "a>b"
    assert FieldMapping(crm="b", constant=0).key == "=>b"
    assert FieldMapping(crm="b", constant=0).is_constant  # 0 is a real constant
    assert not FieldMapping(bc="a", crm="b").is_constant


@pytest.mark.parametrize(
    ("direction", "passes"),
    [
        ("Bidirectional", ["to_crm", "from_crm"]),
        ("ToIntegrationTable", ["to_crm"]),
        ("FromIntegrationTable", ["from_crm"]),
    ],
)
def test_mapping_passes(direction: str, passes: list[str]) -> None:
    m = Mapping.model_validate({**defaults_raw()[0], "direction": direction})
    assert m.passes() == passes
    for p in ("to_crm", "from_crm"):
        assert m.allows(p) is (p in passes)


def pairs(groups: list[list[FieldMapping]]) -> list[list[tuple[str | None, str | None]]]:
    return [[(f.bc, f.crm) for f in g] for g in groups]


def test_match_groups_per_design() -> None:
    assert pairs(by_name("CUSTOMER").match_groups()) == [
        [("number", "accountnumber")],
        [("displayName", "name"), ("email", "emailaddress1")],
    ]
    assert pairs(by_name("CONTACT").match_groups()) == [
        [("email", "emailaddress1")],
        [("displayName", "fullname"), ("companyNumber", "parentcustomerid")],
    ]
    assert pairs(by_name("CURRENCY").match_groups()) == [[("code", "isocurrencycode")]]
    assert pairs(by_name("SALESPEOPLE").match_groups()) == [[("email", "internalemailaddress")]]
    assert pairs(by_name("UNIT OF MEASURE").match_groups()) == [[("code", "name")]]
    for name in ("ITEM-PRODUCT", "RESOURCE-PRODUCT"):
        assert pairs(by_name(name).match_groups()) == [[("number", "productnumber")]]


def test_match_groups_sorted_by_priority_not_position() -> None:
    m = Mapping(
        name="T",
        bc_entity="customers",
        crm_entity="accounts",
        direction="Bidirectional",
        fields=[
            FieldMapping(bc="email", crm="emailaddress1", match_priority=5),
            FieldMapping(bc="city", crm="address1_city"),
            FieldMapping(bc="number", crm="accountnumber", match_priority=2),
            FieldMapping(bc="displayName", crm="name", match_priority=5),
        ],
    )
    assert pairs(m.match_groups()) == [
        [("number", "accountnumber")],
        [("email", "emailaddress1"), ("displayName", "name")],
    ]


@pytest.mark.parametrize("name", EXPECTED_ORDER)
def test_default_filters_parse_and_use_known_fields(name: str) -> None:
    m = by_name(name)
    bc_known = bc_fields(m.bc_entity)
    crm_known = CRM_ENTITIES[m.crm_entity].all_fields()
    compile_filter(m.bc_filter, bc_known)
    compile_filter(m.crm_filter, crm_known)
    for f in m.fields:
        assert f.bc is None or f.bc in bc_known, f.bc
        assert f.crm is None or f.crm in crm_known, f.crm


def test_default_filters_behave_as_designed() -> None:
    from shared.odata_filter import evaluate, parse

    customer = by_name("CUSTOMER")
    assert properties(parse(customer.crm_filter)) == {"statecode", "customertypecode"}
    assert evaluate(parse(customer.bc_filter), {"blocked": " "})
    assert not evaluate(parse(customer.bc_filter), {"blocked": "All"})
    assert evaluate(parse(customer.crm_filter), {"statecode": 0, "customertypecode": 3})
    assert not evaluate(parse(customer.crm_filter), {"statecode": 1, "customertypecode": 3})
    sales = parse(by_name("SALESPEOPLE").crm_filter)
    user = {"isdisabled": False, "islicensed": True, "accessmode": 0}
    assert evaluate(sales, user)
    assert not evaluate(sales, {**user, "accessmode": 4})  # the integration (application) user
    assert not evaluate(sales, {**user, "isdisabled": True})
    assert not evaluate(sales, {**user, "islicensed": False})
    contact = by_name("CONTACT")
    person = {"type": "Person", "companyNumber": "CT000010", "contactBusinessRelation": "Customer"}
    assert evaluate(parse(contact.bc_filter), person)
    for other in ("Vendor", "Multiple", "None"):  # persons of vendors, of both, of no business relation
        assert not evaluate(parse(contact.bc_filter), {**person, "contactBusinessRelation": other})
    assert not evaluate(parse(contact.bc_filter), {**person, "type": "Company"})
    assert not evaluate(parse(contact.bc_filter), {"type": "Company", "companyNumber": "C00010"})
    assert evaluate(parse(by_name("ITEM-PRODUCT").crm_filter), {"producttypecode": 1})
    assert not evaluate(parse(by_name("RESOURCE-PRODUCT").crm_filter), {"producttypecode": 1})


@pytest.mark.parametrize(
    ("mapping", "field", "message"),
    [
        ("CONTACT", {"bc": "displayName", "crm": "lastname", "transform": "person_name"}, "person_name"),
        ("CURRENCY", {"bc": "displayName", "crm": "exchangerate", "direction": "ToIntegrationTable",
                      "transform": "exchange_rate"}, "currencies.code"),
        ("CUSTOMER", {"bc": "displayName", "crm": "name", "transform": "or_code"}, "only flows to Dataverse"),
        ("ITEM-PRODUCT", {"bc": "blocked", "crm": "name", "direction": "ToIntegrationTable",
                          "transform": "product_state"}, "writes statecode"),
        ("SALESPEOPLE", {"bc": "code", "crm": "fullname", "direction": "FromIntegrationTable",
                         "transform": "new_code", "match_priority": 3}, "new_code"),
        ("CONTACT", {"bc": "displayName", "crm": "fullname"}, "read-only in Dataverse"),
        ("CUSTOMER", {"bc": "balanceDue", "crm": "creditlimit"}, "read-only in Business Central"),
        ("ITEM-PRODUCT", {"bc": "baseUnitOfMeasureId", "crm": "defaultuomid",
                          "direction": "ToIntegrationTable", "lookup": "UNIT OF MEASURE"}, "points at uoms"),
    ],
)  # fmt: skip
def test_computed_and_read_only_fields_are_validated(mapping, field, message) -> None:
    data, m = raw(mapping)
    m["fields"].append(field)
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert message in str(err.value) and err.value.mapping == mapping


def test_company_contact_lookup_key_only_for_customers() -> None:
    data, customer = raw("CUSTOMER")
    currency = next(f for f in customer["fields"] if f.get("lookup") == "CURRENCY")
    currency["bc_lookup_key"] = "companyContact"  # a currency has no company contact
    with pytest.raises(MappingError, match="bc_lookup_key"):
        validate_mappings(build(data))


# --- BC's defaults (CDS Setup Defaults) and option mappings ---------------------------------------------


def _field(mapping: str, crm: str) -> FieldMapping:
    return next(f for f in by_name(mapping).fields if f.crm == crm)


def test_customer_defaults_follow_bc() -> None:
    customer = by_name("CUSTOMER")
    assert customer.bc_filter == "blocked eq ' '"
    owner = _field("CUSTOMER", "ownerid")
    assert owner.direction == "ToIntegrationTable" and owner.keep_if_empty
    for crm, lookup in (
        ("paymenttermscode", "PAYMENT TERMS"),
        ("address1_freighttermscode", "SHIPMENT METHOD"),
    ):
        f = _field("CUSTOMER", crm)
        assert (f.lookup, f.transform, f.direction, f.clear_on_fail) == (
            lookup,
            "option_value",
            "Bidirectional",
            False,
        )
    contact = {f.crm for f in by_name("CONTACT").fields}
    assert {"address1_line1", "address1_line2", "address1_city", "address1_stateorprovince"} <= contact
    assert {"address1_country", "address1_postalcode"} <= contact
    assert _field("ITEM-PRODUCT", "currentcost").bc == "unitCost"


def test_option_mappings_are_entity_sets_of_options() -> None:
    for name, entity in (
        ("PAYMENT TERMS", "paymenttermscode"),
        ("SHIPMENT METHOD", "address1_freighttermscode"),
    ):
        m = by_name(name)
        assert m.is_option_mapping and m.crm_entity == f"accounts.{entity}"
        assert CRM_ENTITIES[m.crm_entity].key == "optionid"
        assert [(f.bc, f.crm, f.match_priority) for f in m.fields] == [("code", "label", 1)]
    assert not by_name("CUSTOMER").is_option_mapping


def _customer_field(data, crm: str) -> dict[str, Any]:
    customer = next(m for m in data if m["name"] == "CUSTOMER")
    return next(f for f in customer["fields"] if f["crm"] == crm)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crm": "name"}, "choice (Picklist) column"),
        ({"lookup": "SHIPMENT METHOD"}, "takes options of accounts.paymenttermscode"),
        ({"lookup": None}, "option_value translates through an option mapping"),
    ],
)
def test_option_value_fields_are_checked(change: dict[str, Any], message: str) -> None:
    data = defaults_raw()
    _customer_field(data, "paymenttermscode").update(change)
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert message in str(err.value), err.value
    assert err.value.mapping == "CUSTOMER"


def test_option_lookup_needs_the_option_mapping_as_dependency() -> None:
    data, customer = raw("CUSTOMER")
    customer["depends_on"] = ["CURRENCY", "SALESPEOPLE", "SHIPMENT METHOD"]
    with pytest.raises(MappingError) as err:
        validate_mappings(build(data))
    assert "PAYMENT TERMS" in str(err.value) and err.value.field == "depends_on"
