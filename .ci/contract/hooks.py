"""Schemathesis hooks: teach the generators the runtime rules a JSON schema
cannot state, so schema-valid requests reach the business logic.

- Ids in paths and in body references name objects seeded by seed.py (a
  random UUID names nothing, and the server rightly answers 404 or 422).
- Money in bodies is in the seeded problems' currency (USD) with at most
  its two decimals, and at most 10^13 (the server's largest amount).
- A delegation window ends after it starts and in the future.

Only values that are already schema-valid are changed, and only into other
schema-valid values, so negative test cases stay negative.
"""

import datetime
import json
import os
import re
import uuid

import schemathesis

IDS = json.load(open(os.environ["LEEWAY_CONTRACT_IDS"]))

# Which seeded object a path's {id} names, by the path's first segments.
PATH_IDS = {
    "/v1/teams/": IDS["ops"],
    "/v1/people/": IDS["sam"],
    "/v1/problems/": IDS["problem"],
    "/v1/spends/": IDS["pending_spend"],
    "/v1/delegations/": IDS["delegation"],
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

AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
LARGEST_AMOUNT = 10**13


def is_uuid(value):
    try:
        uuid.UUID(value)
        return isinstance(value, str)
    except (ValueError, TypeError, AttributeError):
        return False


def fix_money(value):
    """A schema-valid MoneyInput, made valid for a USD problem."""
    if not (isinstance(value, dict) and set(value) == {"amount", "currency"}):
        return value
    amount, currency = value["amount"], value["currency"]
    if not (isinstance(amount, str) and isinstance(currency, str)):
        return value
    if not (AMOUNT.match(amount) and CURRENCY.match(currency) and len(amount) <= 32):
        return value
    whole, _, fraction = amount.partition(".")
    cents = int(whole or "0") * 100 + int((fraction + "00")[:2])
    cents = min(max(cents, 1), LARGEST_AMOUNT * 100)
    return {"amount": f"{cents // 100}.{cents % 100:02d}", "currency": "USD"}


def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if not path_parameters or "id" not in path_parameters:
        return path_parameters
    if not is_uuid(path_parameters["id"]):
        return path_parameters
    path = context.operation.path
    for prefix, seeded in PATH_IDS.items():
        if path.startswith(prefix):
            path_parameters["id"] = seeded
    return path_parameters


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict):
        return body
    for field, seeded in BODY_IDS.items():
        if is_uuid(body.get(field)):
            body[field] = seeded
    for field, value in list(body.items()):
        body[field] = fix_money(value)
    start, end = parse_time(body.get("from")), parse_time(body.get("until"))
    if start and end and start.tzinfo and end.tzinfo:
        now = datetime.datetime.now(datetime.timezone.utc)
        body["from"] = now.isoformat()
        body["until"] = (now + datetime.timedelta(days=1)).isoformat()
    return body
