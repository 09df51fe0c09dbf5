"""A deterministic demo data set for both sides, scalable with ``records`` (number of BC customers).

Some records exist on both sides on purpose (same customer number / e-mail / product number), so
matching couples them instead of duplicating; a few violate the mapping filters (blocked customers,
inactive accounts, vendors, blocked items).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from typing import Any

OVERLAP_CUSTOMERS = 0.10  # share of BC customers that also exist as accounts (same number and name)
OVERLAP_CONTACTS = 0.10  # share of BC contacts that also exist as CRM contacts (same e-mail)
BLOCKED_CUSTOMERS = 0.02
INACTIVE_ACCOUNTS = 0.02
CURRENCIES = [
    ("EUR", "Euro", "€"),
    ("USD", "US dollar", "$"),
    ("GBP", "Pound sterling", "£"),
    ("SEK", "Swedish krona", "kr"),
    ("DKK", "Danish krone", "kr"),
    ("NOK", "Norwegian krone", "kr"),
    ("CHF", "Swiss franc", "Fr."),
    ("JPY", "Yen", "¥"),
]
UNITS = [
    ("PCS", "Piece"),
    ("BOX", "Box"),
    ("HOUR", "Hour"),
    ("KG", "Kilogram"),
    ("DAY", "Day"),
    ("PACK", "Pack"),
    ("L", "Litre"),
    ("M", "Metre"),
]
FIRST = [
    "Anna",
    "Erik",
    "Sofie",
    "Lars",
    "Emma",
    "Jonas",
    "Marie",
    "Pieter",
    "Claire",
    "Lucas",
    "Nora",
    "Oskar",
    "Julie",
    "Hugo",
    "Eva",
    "Tom",
    "Ines",
    "Daan",
    "Lea",
    "Finn",
]
LAST = [
    "Andersson",
    "Johansson",
    "de Vries",
    "Janssens",
    "Martin",
    "Bernard",
    "Peeters",
    "Lindqvist",
    "Dubois",
    "Bakker",
    "Nilsson",
    "Moreau",
    "Visser",
    "Laurent",
    "Berg",
    "Maes",
]
WORDS = [
    "Nordic",
    "Alpine",
    "Harbor",
    "Summit",
    "Granite",
    "Cedar",
    "Aurora",
    "Meridian",
    "Lumen",
    "Vertex",
    "Atlas",
    "Fjord",
    "Beacon",
    "Orchard",
    "Pioneer",
    "Silver",
]
KINDS = [
    "Trading",
    "Logistics",
    "Foods",
    "Systems",
    "Design",
    "Motors",
    "Textiles",
    "Energy",
    "Labs",
    "Retail",
]
CITIES = [
    ("Stockholm", "SE", "111 22"),
    ("Gent", "BE", "9000"),
    ("Lyon", "FR", "69001"),
    ("Auckland", "NZ", "1010"),
    ("Utrecht", "NL", "3511"),
    ("Geneva", "CH", "1201"),
    ("Malmö", "SE", "211 20"),
    ("Lille", "FR", "59000"),
]
PRODUCTS = [
    "Desk",
    "Chair",
    "Lamp",
    "Cabinet",
    "Shelf",
    "Table",
    "Monitor arm",
    "Whiteboard",
    "Locker",
    "Stool",
]


def _id(seed: int, kind: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo/{seed}/{kind}/{n}"))


def build(records: int = 1000, seed: int = 7) -> dict[str, Any]:
    rnd = random.Random(seed)
    bc: dict[str, list[dict[str, Any]]] = {}
    dv: dict[str, list[dict[str, Any]]] = {}
    bc["currencies"] = [
        {"id": _id(seed, "cur", i), "code": c, "displayName": n, "symbol": s, "amountDecimalPlaces": "2:2"}
        for i, (c, n, s) in enumerate(CURRENCIES)
    ]
    dv["transactioncurrencies"] = [
        {
            "transactioncurrencyid": _id(seed, "tcur", i),
            "isocurrencycode": c,
            "currencyname": n,
            "currencysymbol": s,
            "exchangerate": 1.0,
            "currencyprecision": 2,
        }
        for i, (c, n, s) in enumerate(CURRENCIES[:3])
    ]
    bc["unitsOfMeasure"] = [
        {"id": _id(seed, "uom", i), "code": c, "displayName": n, "internationalStandardCode": c[:3]}
        for i, (c, n) in enumerate(UNITS)
    ]
    dv["uomschedules"] = [
        {"uomscheduleid": _id(seed, "uoms", i), "name": c, "baseuomname": c, "description": n}
        for i, (c, n) in enumerate(UNITS[:3])
    ]
    people = [(FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]) for i in range(12)]
    bc["salespeople"] = [
        {
            "id": _id(seed, "sp", i),
            "code": f"SP{i + 1:02d}",
            "name": f"{f} {ln}",
            "email": f"{f.lower()}.{ln.lower().replace(' ', '')}@cronus.example",
            "phoneNumber": f"+46 8 555 {i:04d}",
        }
        for i, (f, ln) in enumerate(people[:10])
    ]
    dv["systemusers"] = [
        {
            "systemuserid": _id(seed, "user", i),
            "firstname": f,
            "lastname": ln,
            "fullname": f"{f} {ln}",
            "internalemailaddress": (
                f"{f.lower()}.{ln.lower().replace(' ', '')}@cronus.example"
                if i < 6
                else f"{f.lower()}@sales.example"
            ),
            "mobilephone": f"+46 70 555 {i:04d}",
            "isdisabled": i == 10,
            "islicensed": i != 11,
            "accessmode": 0,
        }
        for i, (f, ln) in enumerate(people)
    ]
    customers, accounts = [], []
    for n in range(records):
        name = f"{WORDS[n % len(WORDS)]} {KINDS[(n // len(WORDS)) % len(KINDS)]} {n + 1}"
        city, country, postal = CITIES[n % len(CITIES)]
        number = f"C{10000 + n}"
        currency = bc["currencies"][n % 4] if n % 3 == 0 else None
        blocked = "All" if rnd.random() < BLOCKED_CUSTOMERS else " "
        customers.append(
            {
                "id": _id(seed, "cust", n),
                "number": number,
                "displayName": name,
                "type": "Company",
                "addressLine1": f"{n % 90 + 1} Harbour Street",
                "addressLine2": "",
                "city": city,
                "state": "",
                "country": country,
                "postalCode": postal,
                "phoneNumber": f"+46 8 {100000 + n}",
                "email": f"info@{name.lower().replace(' ', '')}.example",
                "website": f"www.{name.lower().replace(' ', '')}.example",
                "salespersonCode": f"SP{n % 10 + 1:02d}" if n % 4 else "",
                "creditLimit": float((n % 20) * 1000),
                "currencyId": currency["id"] if currency else None,
                "blocked": blocked,
            }
        )
        if n < records * OVERLAP_CUSTOMERS:
            accounts.append(
                {
                    "accountid": _id(seed, "acct-twin", n),
                    "name": name,
                    "accountnumber": number,
                    "emailaddress1": customers[-1]["email"],
                    "address1_city": city,
                    "customertypecode": 3,
                    "statecode": 0,
                }
            )
    for n in range(records // 2):
        name = f"{WORDS[(n * 3) % len(WORDS)]} {KINDS[n % len(KINDS)]} CRM {n + 1}"
        inactive = rnd.random() < INACTIVE_ACCOUNTS
        accounts.append(
            {
                "accountid": _id(seed, "acct", n),
                "name": name,
                "telephone1": f"+33 4 {200000 + n}",
                "emailaddress1": f"contact@{name.lower().replace(' ', '')}.example",
                "address1_city": CITIES[n % 8][0],
                "address1_country": CITIES[n % 8][1],
                "websiteurl": f"www.{name.lower().replace(' ', '')}.example",
                "customertypecode": 11 if n % 50 == 49 else 3,
                "statecode": 1 if inactive else 0,
                "statuscode": 2 if inactive else 1,
            }
        )
    bc["customers"], dv["accounts"] = customers, accounts
    contacts, crm_contacts = [], []
    for n in range(records * 2):
        owner = customers[n // 2]
        first, last = FIRST[n % len(FIRST)], LAST[(n * 5) % len(LAST)]
        email = f"{first.lower()}.{n}@{owner['displayName'].lower().replace(' ', '')}.example"
        contacts.append(
            {
                "id": _id(seed, "cont", n),
                "number": f"CT{100000 + n}",
                "type": "Person",
                "displayName": f"{first} {last}",
                "firstName": first,
                "surname": last,
                "jobTitle": ["Buyer", "CEO", "Accountant", "Engineer"][n % 4],
                "companyNumber": owner["number"],
                "email": email,
                "phoneNumber": f"+32 9 {300000 + n}",
                "mobilePhoneNumber": f"+32 470 {n:06d}",
            }
        )
        if n < records * 2 * OVERLAP_CONTACTS and n // 2 < records * OVERLAP_CUSTOMERS:
            crm_contacts.append(
                {
                    "contactid": _id(seed, "ccont-twin", n),
                    "firstname": first,
                    "lastname": last,
                    "emailaddress1": email,
                    "parentcustomerid_account@odata.bind": f"/accounts({_id(seed, 'acct-twin', n // 2)})",
                }
            )
    for n in range(records):
        parent = accounts[min(len(accounts) - 1, int(records * OVERLAP_CUSTOMERS) + n // 2)]
        first, last = FIRST[(n * 3) % len(FIRST)], LAST[n % len(LAST)]
        crm_contacts.append(
            {
                "contactid": _id(seed, "ccont", n),
                "firstname": first,
                "lastname": last,
                "emailaddress1": f"{first.lower()}.{last.lower().replace(' ', '')}.{n}@crm.example",
                "telephone1": f"+33 1 {400000 + n}",
                "jobtitle": "Purchaser",
                "parentcustomerid_account@odata.bind": f"/accounts({parent['accountid']})",
            }
        )
    bc["contacts"], dv["contacts"] = contacts, crm_contacts
    bc["items"] = [
        {
            "id": _id(seed, "item", n),
            "number": f"{1000 + n}",
            "displayName": f"{PRODUCTS[n % 10]} {WORDS[n % 16]} {n}",
            "type": "Inventory",
            "blocked": n % 100 == 99,
            "unitPrice": round(10 + (n % 50) * 3.5, 2),
            "unitCost": round(6 + (n % 50) * 2.1, 2),
            "inventory": float(n % 40),
            "baseUnitOfMeasureId": bc["unitsOfMeasure"][n % 3]["id"],
        }
        for n in range(max(1, records // 2))
    ]
    bc["resources"] = [
        {
            "id": _id(seed, "res", n),
            "number": f"R{1000 + n}",
            "name": f"{FIRST[n % 20]} (consultant)",
            "type": "Person",
            "blocked": False,
            "unitPrice": 95.0 + n % 5 * 10,
            "unitCost": 60.0,
            "baseUnitOfMeasureId": bc["unitsOfMeasure"][2]["id"],
        }
        for n in range(max(1, records // 20))
    ]
    dv["products"] = [
        {
            "productid": _id(seed, "prod", n),
            "name": bc["items"][n]["displayName"] if n % 2 == 0 else f"CRM product {n}",
            "productnumber": bc["items"][n]["number"] if n % 2 == 0 else f"P-{5000 + n}",
            "price": 12.0,
            "producttypecode": 1,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({dv['uomschedules'][0]['uomscheduleid']})",
        }
        for n in range(max(1, min(len(bc["items"]), records // 4)))
    ]
    return {"bc": bc, "dataverse": dv}


def summary(data: dict[str, Any]) -> dict[str, Any]:
    counts = {f"bc.{k}": len(v) for k, v in data["bc"].items()}
    counts.update({f"dataverse.{k}": len(v) for k, v in data["dataverse"].items()})
    bc_numbers = {c["number"] for c in data["bc"]["customers"]}
    counts["overlap.customers"] = sum(
        1 for a in data["dataverse"]["accounts"] if a.get("accountnumber") in bc_numbers
    )
    bc_mail = {c["email"] for c in data["bc"]["contacts"]}
    counts["overlap.contacts"] = sum(
        1 for c in data["dataverse"]["contacts"] if c["emailaddress1"] in bc_mail
    )
    items = {i["number"] for i in data["bc"]["items"]}
    counts["overlap.products"] = sum(1 for p in data["dataverse"]["products"] if p["productnumber"] in items)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="-")
    args = parser.parse_args(argv)
    data = build(args.records, args.seed)
    text = json.dumps(data)
    if args.out == "-":
        print(json.dumps(summary(data), indent=2))
    else:
        with open(args.out, "w") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
