"""A deterministic demo data set for both sides, scalable with ``records`` (number of BC customers).

Shaped like the real services (shared/contracts): every BC customer and vendor brings its company
contact with a Customer / Vendor business relation (the seed rows carry ``companyContact`` so its
keys are fixed), persons have a displayName only and point at their company contact's number,
salespeople have codes and CRM users with matching e-mails, currencies have exchange rates against
the company's LCY (USD, also Dataverse's base currency), a few items have negative inventory or
cost, resources live on the project's API page. Some records exist on both sides on purpose (same
customer number / e-mail / product number), so matching couples them instead of duplicating; some
violate the mapping filters or BC's limits on purpose (blocked customers, inactive accounts, vendor
persons, CRM addresses longer than BC's fields, a free-text country).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from typing import Any

from devstack.dataverse_emulator.app import base_uom_id

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
# "NET 30" / "FOB" match Dataverse's own options "Net 30" / "FOB" (coupled by label); the rest become new
# options of the account's payment terms / freight terms.
PAYMENT_TERMS = [
    ("NET 30", "Net 30 days", "30D"),
    ("14 DAYS", "Net 14 days", "14D"),
    ("COD", "Cash on delivery", "0D"),
    ("1M(8D)", "1 Month/2% 8 days", "1M"),
]
SHIPMENT_METHODS = [("FOB", "Free on board"), ("EXW", "Ex works"), ("PICKUP", "Pickup at location")]
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
    """A deterministic version-5-shaped GUID (formatted by hand: uuid.uuid5 is most of the build time)."""
    h = hashlib.sha1(f"demo/{seed}/{kind}/{n}".encode()).hexdigest()  # noqa: S324 - an id, not security
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _slug(text: str) -> str:
    return text.lower().replace(" ", "")


LCY = "USD"
# Units of the exchange rate: 1 unit of the currency = `rate` USD (relationalCurrencyCode '' = LCY).
RATES = {
    "EUR": (1.08, 1.12),
    "GBP": (1.27, 1.25),
    "SEK": (0.095,),
    "DKK": (0.145,),
    "NOK": (0.093, 0.091),
    "CHF": (1.13,),
    "JPY": (0.0067,),
}
LONG_STREET = "Industrial Estate Unit 14, Building C, Floor 3, Reception B, " * 2  # > BC's 100 / 50


def build(records: int = 1000, seed: int = 7) -> dict[str, Any]:
    rnd = random.Random(seed)
    bc: dict[str, list[dict[str, Any]]] = {}
    dv: dict[str, list[dict[str, Any]]] = {}
    foreign = [c for c in CURRENCIES if c[0] != LCY]  # the LCY is not a currencies row in BC
    bc["companyInformation"] = [{"id": _id(seed, "companyinfo", 0), "currencyCode": LCY}]
    bc["currencies"] = [
        {
            "id": _id(seed, "cur", i),
            "code": c,
            "displayName": n,
            "symbol": s if i % 4 else "",
            "amountDecimalPlaces": "2:2",
        }
        for i, (c, n, s) in enumerate(foreign)
    ]
    bc["currencyExchangeRates"] = [
        {
            "id": _id(seed, "rate", i * 10 + k),
            "currencyCode": c,
            "startingDate": f"{2025 + k}-01-01",
            "exchangeRateAmount": 100.0 if c == "JPY" else 1.0,
            "relationalCurrencyCode": "",
            "relationalExchangeRateAmount": round(rate * (100 if c == "JPY" else 1), 6),
        }
        for i, (c, _, _) in enumerate(foreign)
        for k, rate in enumerate(RATES[c])
    ]
    dv["transactioncurrencies"] = [  # USD is the organization's base currency already
        {
            "transactioncurrencyid": _id(seed, "tcur", i),
            "isocurrencycode": c,
            "currencyname": n,
            "currencysymbol": s,
            "exchangerate": 1.0,
            "currencyprecision": 2,
        }
        for i, (c, n, s) in enumerate(foreign[:2])
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
    codes: list[str] = []
    for f, ln in people[:10]:
        code = (f[0] + ln.replace(" ", "")[0]).upper()
        codes.append(code if code not in codes else f"{code}{len(codes)}")
    mail = [f"{f.lower()}.{_slug(ln)}@cronus.example" for f, ln in people]
    bc["salespeoplePurchasers"] = [
        {
            "id": _id(seed, "sp", i),
            "code": codes[i],
            "displayName": f"{f} {ln}",
            "email": mail[i],
            "phoneNo": f"+46 8 555 {i:04d}",
            "jobTitle": "Sales" if i % 3 else "Account Manager",
        }
        for i, (f, ln) in enumerate(people[:10])
    ]
    bc["paymentTerms"] = [
        {"id": _id(seed, "terms", i), "code": c, "displayName": n, "dueDateCalculation": due}
        for i, (c, n, due) in enumerate(PAYMENT_TERMS)
    ]
    bc["shipmentMethods"] = [
        {"id": _id(seed, "ship", i), "code": c, "displayName": n} for i, (c, n) in enumerate(SHIPMENT_METHODS)
    ]
    dv["systemusers"] = [
        {
            "systemuserid": _id(seed, "user", i),
            "firstname": f,
            "lastname": ln,
            "fullname": f"{f} {ln}",
            "internalemailaddress": mail[i] if i < 6 else f"{f.lower()}@sales.example",
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
                "email": f"info@{_slug(name)}.example",
                "website": f"www.{_slug(name)}.example",
                "salespersonCode": codes[n % 10] if n % 4 else "",
                "creditLimit": float((n % 20) * 1000),
                "currencyId": currency["id"] if currency else None,
                "paymentTermsId": bc["paymentTerms"][n % 4]["id"] if n % 5 else None,
                "shipmentMethodId": bc["shipmentMethods"][n % 3]["id"] if n % 2 == 0 else None,
                "blocked": blocked,
                "companyContact": {"id": _id(seed, "custcont", n), "number": f"CC{n:07d}"},
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
        account = {
            "accountid": _id(seed, "acct", n),
            "name": name,
            "telephone1": f"+33 4 {200000 + n}",
            "emailaddress1": f"contact@{_slug(name)}.example",
            "address1_city": CITIES[n % 8][0],
            "address1_country": CITIES[n % 8][1],
            "websiteurl": f"www.{_slug(name)}.example",
            "customertypecode": 11 if n % 50 == 49 else 3,
            **({"paymenttermscode": 1, "address1_freighttermscode": 1} if n % 4 == 0 else {}),  # Net 30, FOB
            "statecode": 1 if inactive else 0,
            "statuscode": 2 if inactive else 1,
        }
        if n % 97 == 3:  # longer than BC's Address (100) / City (30)
            account["address1_line1"] = LONG_STREET[:140]
            account["address1_line2"] = LONG_STREET[:60]
            account["address1_city"] = "Saint-Remy-en-Bouzemont-Saint-Genest-et-Isson"
        if n % 41 == 1:  # free text, not a Country/Region code
            account["address1_country"] = "United States"
        accounts.append(account)
    bc["customers"], dv["accounts"] = customers, accounts
    vendors = [
        {
            "id": _id(seed, "vend", n),
            "number": f"V{20000 + n}",
            "displayName": f"{WORDS[n % 16]} Supplies {n + 1}",
            "city": CITIES[n % 8][0],
            "country": CITIES[n % 8][1],
            "email": f"orders@supplies{n + 1}.example",
            "companyContact": {"id": _id(seed, "vendcont", n), "number": f"CV{n:07d}"},
        }
        for n in range(max(1, records // 20))
    ]
    bc["vendors"] = vendors
    contacts, crm_contacts = [], []
    for n in range(records * 2):
        owner = customers[n // 2]
        first, last = FIRST[n % len(FIRST)], LAST[(n * 5) % len(LAST)]
        email = f"{first.lower()}.{n}@{_slug(owner['displayName'])}.example"
        contacts.append(
            {
                "id": _id(seed, "cont", n),
                "number": f"CP{n:07d}",
                "type": "Person",
                "displayName": f"{first} {last}",
                "jobTitle": ["Buyer", "CEO", "Accountant", "Engineer"][n % 4],
                "companyNumber": owner["companyContact"]["number"],
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
    for n, vendor in enumerate(vendors):  # persons of vendors: left out of CONTACT by its filter
        contacts.append(
            {
                "id": _id(seed, "vperson", n),
                "number": f"CQ{n:07d}",
                "type": "Person",
                "displayName": f"{FIRST[(n * 7) % 20]} {LAST[(n * 3) % 16]}",
                "companyNumber": vendor["companyContact"]["number"],
                "email": f"sales{n}@supplies{n + 1}.example",
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
                "emailaddress1": f"{first.lower()}.{_slug(last)}.{n}@crm.example",
                "telephone1": f"+33 1 {400000 + n}",
                "jobtitle": "Purchasing and logistics coordinator, EMEA" if n % 29 == 2 else "Purchaser",
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
            "unitCost": -1.5 if n % 53 == 7 else round(6 + (n % 50) * 2.1, 2),
            "inventory": -3.0 if n % 37 == 5 else float(n % 40),
            "baseUnitOfMeasureId": bc["unitsOfMeasure"][n % 3]["id"],
        }
        for n in range(max(1, records // 2))
    ]
    bc["resources"] = [
        {
            "id": _id(seed, "res", n),
            "number": f"R{1000 + n}",
            "displayName": f"{FIRST[n % 20]} (consultant)",
            "type": "Person" if n % 7 else "Machine",
            "blocked": n % 25 == 24,
            "unitPrice": 95.0 + n % 5 * 10,
            "unitCost": 60.0,
            "baseUnitOfMeasureCode": "HOUR",
        }
        for n in range(max(1, records // 20))
    ]
    schedule = dv["uomschedules"][0]["uomscheduleid"]
    dv["products"] = [
        {
            "productid": _id(seed, "prod", n),
            "name": bc["items"][n]["displayName"] if n % 2 == 0 else f"CRM product {n}",
            "productnumber": bc["items"][n]["number"] if n % 2 == 0 else f"P-{5000 + n}",
            "price": 12.0,
            "producttypecode": 1,
            "quantitydecimal": 2,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({schedule})",
            "defaultuomid@odata.bind": f"/uoms({base_uom_id(schedule)})",
            **({"statecode": 0, "statuscode": 1} if n % 3 else {}),  # the rest stay in Draft
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
    counts["bc.company_contacts"] = len(data["bc"]["customers"]) + len(data["bc"].get("vendors", []))
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
