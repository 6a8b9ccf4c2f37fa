"""Schemathesis hooks: teach the generators the runtime rules a JSON schema
cannot state, so schema-valid requests reach the business logic.

- Ids in paths and in body references name objects seeded by seed.py (a
  random UUID names nothing, and the server rightly answers 404). PATCHes of
  people and teams go to scratch objects, so fuzzed roles and parents never
  undo the organisation the other operations rely on.
- A spend's date is not in the future, and an approved part is at most the
  seeded pending spend's amount (rules relative to today and to a stored row).
- Money in bodies is in the seeded organisation's currency, USD: its
  problems are in USD, and a policy in another currency would make every
  later USD spend a currency_mismatch. At most USD's two decimals and at
  most 10^13 (the server's largest amount). Which codes exist at all is the
  spec's CurrencyCode enum.
- A delegation window ends after it starts and in the future.
- A webhook URL's host is made into one that names nothing: every
  character of its authority that the spec's pattern allows there becomes
  `h`, in valid and invalid cases alike. So the fuzzed server never delivers
  anywhere (no IP literal, no real name, no private address it would
  rightly refuse), and each case stays as valid or invalid as it was.
- Each request carries its own Idempotency-Key, as a correct client's does
  (the same key with another body is refused by design, answering 422).

Only values that are already schema-valid are changed, and only into other
schema-valid values, so negative test cases stay negative.
"""

import datetime
import json
import os
import re
import uuid

import schemathesis
import yaml

IDS = json.load(open(os.environ["LEEWAY_CONTRACT_IDS"]))
SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml")
# The codes the spec accepts: money in another code is a negative case and
# must stay one.
KNOWN_CURRENCIES = frozenset(yaml.safe_load(open(SPEC))["components"]["schemas"]["CurrencyCode"]["enum"])

# Which seeded object a path's {id} names, by the path's first segments.
PATH_IDS = {
    "/v1/teams/": IDS["ops"],
    "/v1/people/": IDS["sam"],
    "/v1/problems/": IDS["problem"],
    "/v1/spends/": IDS["pending_spend"],
    "/v1/delegations/": IDS["delegation"],
    "/v1/webhooks/": IDS["webhook"],
}

# PATCH and DELETE targets: scratch objects nothing else relies on.
SCRATCH_IDS = {
    "PATCH": {
        "/v1/teams/": IDS["ops_east"],
        "/v1/people/": IDS["pat"],
        "/v1/webhooks/": IDS["webhook_to_patch"],
    },
    "DELETE": {
        "/v1/webhooks/": IDS["webhook_to_delete"],
    },
}

# Which seeded object a body field names.
BODY_IDS = {
    "team_id": IDS["ops"],
    "parent_id": IDS["sales"],
    "manager_id": IDS["mia"],
    "owner_id": IDS["sam"],
    "delegate_id": IDS["max"],
    "delegator_id": IDS["mia"],
}

IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")
# A URL's scheme (and the slashes and tabs a WHATWG parser skips after it),
# its authority (up to the path, query or fragment), and the rest.
URL_PARTS = re.compile(r"^([^:/?#]*:[/\\\t\n\r]*)([^/\\?#]*)(.*)$", re.DOTALL)
# The whitespace WebhookUrl's pattern allows around a URL (the server trims it).
URL_SPACE = "\t\n\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
TRIMMED = re.compile(f"^([{URL_SPACE}]*)(.*?)([{URL_SPACE}]*)$", re.DOTALL)
# What WebhookUrl's pattern allows in an authority.
AUTHORITY_CHARACTER = re.compile(
    "[^\u0000-\u0008\u000B\u000C\u000E-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000/?#@\\\\<>^|]"
)
AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
LARGEST_AMOUNT = 10**13
# The seeded pending spend's amount, in cents (seed.py).
PENDING_SPEND_CENTS = 500_00


def is_uuid(value):
    try:
        uuid.UUID(value)
        return isinstance(value, str)
    except (ValueError, TypeError, AttributeError):
        return False


def fix_money(value, largest_cents=LARGEST_AMOUNT * 100):
    """A schema-valid MoneyInput, made valid for a USD problem."""
    if not (isinstance(value, dict) and set(value) == {"amount", "currency"}):
        return value
    amount, currency = value["amount"], value["currency"]
    if not (isinstance(amount, str) and isinstance(currency, str)):
        return value
    if not (AMOUNT.match(amount) and currency in KNOWN_CURRENCIES and len(amount) <= 32):
        return value
    whole, _, fraction = amount.partition(".")
    cents = int(whole or "0") * 100 + int((fraction + "00")[:2])
    cents = min(max(cents, 1), largest_cents)
    return {"amount": f"{cents // 100}.{cents % 100:02d}", "currency": "USD"}


def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None


def defuse_url(value):
    """The URL with a host that names nothing, as valid or invalid as before."""
    if not isinstance(value, str):
        return value
    before, url, after = TRIMMED.match(value).groups()
    match = URL_PARTS.match(url)
    if not match:
        return value
    scheme, authority, rest = match.groups()
    return before + scheme + AUTHORITY_CHARACTER.sub("h", authority) + rest + after


def map_path_parameters(method, operation_path, path_parameters):
    if not isinstance(path_parameters, dict) or not is_uuid(path_parameters.get("id")):
        return
    targets = SCRATCH_IDS.get(method.upper(), {}) if operation_path.count("/") == 3 else {}
    for prefix, seeded in {**PATH_IDS, **targets}.items():
        if operation_path.startswith(prefix):
            path_parameters["id"] = seeded


def map_body(operation_path, body):
    if not isinstance(body, dict):
        return
    if operation_path.startswith("/v1/webhooks") and "url" in body:
        body["url"] = defuse_url(body["url"])
    for field, seeded in BODY_IDS.items():
        if is_uuid(body.get(field)):
            body[field] = seeded
    for field, value in list(body.items()):
        largest = PENDING_SPEND_CENTS if field == "approved_amount" else LARGEST_AMOUNT * 100
        body[field] = fix_money(value, largest)
    spent_on = body.get("spent_on")
    if isinstance(spent_on, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", spent_on):
        try:
            if datetime.date.fromisoformat(spent_on) > datetime.date.today():
                body["spent_on"] = datetime.date.today().isoformat()
        except ValueError:
            pass
    start, end = parse_time(body.get("from")), parse_time(body.get("until"))
    if start and end and start.tzinfo and end.tzinfo:
        now = datetime.datetime.now(datetime.timezone.utc)
        body["from"] = now.isoformat()
        body["until"] = (now + datetime.timedelta(days=1)).isoformat()


# One case hook rather than map_path_parameters/map_body: schemathesis
# applies case hooks in every phase, the coverage phase included.
def map_headers(headers):
    # A case-insensitive mapping, not a dict.
    if headers is None or not hasattr(headers, "items"):
        return
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and IDEMPOTENCY_KEY.match(value):
            headers[name] = str(uuid.uuid4())


@schemathesis.hook
def map_case(context, case):
    map_path_parameters(context.operation.method, context.operation.path, case.path_parameters)
    map_body(context.operation.path, case.body)
    map_headers(case.headers)
    return case
