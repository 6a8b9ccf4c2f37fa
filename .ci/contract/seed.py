"""Seeds a running Leeway server with a small organisation for contract
fuzzing and writes the ids the hooks hand to schemathesis.

Usage: seed.py BASE_URL TOKENS_JSON OUT_JSON, where TOKENS_JSON maps the
subjects admin, mia (manager), sam (member) and fin (finance) to tokens.
Pat (a member of Ops East) and Ops East are scratch objects: the admin's
fuzzed PATCHes land on them, so the roles and teams the other operations rely
on stay put. So are two of the three webhook endpoints, one to PATCH and one
to DELETE. The endpoints' URLs name nothing (`.invalid`, RFC 6761): every
delivery fails without leaving the machine, and the delivery log the fuzzer
reads fills with failed and retrying attempts.
"""

import datetime
import json
import sys
import time
import urllib.request

# Every webhook endpoint subscribes to every type; none is ever reached.
WEBHOOK = {
    "url": "https://hooks.leeway.invalid/contract",
    "event_types": [
        "spend.approved", "spend.flagged", "spend.decided", "spend.escalated", "spend.voided",
        "problem.opened", "problem.closed", "problem.limit_changed",
        "delegation.created", "delegation.revoked",
    ],
}


def call(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def main():
    base, tokens, out = sys.argv[1:4]
    tokens = json.load(open(tokens))
    admin = tokens["admin"]
    usd = lambda amount: {"amount": amount, "currency": "USD"}
    webhooks = {name: call(base, admin, "POST", "/v1/webhooks", {**WEBHOOK, "description": name})["id"]
                for name in ("webhook", "webhook_to_patch", "webhook_to_delete")}
    ops = call(base, admin, "POST", "/v1/teams", {"name": "Ops"})["id"]
    sales = call(base, admin, "POST", "/v1/teams", {"name": "Sales"})["id"]
    east = call(base, admin, "POST", "/v1/teams", {"name": "Ops East", "parent_id": ops})["id"]
    people = {}
    for subject, role, team in [
        ("mia", "manager", ops), ("max", "manager", sales), ("sam", "member", ops),
        ("kim", "member", ops), ("fin", "finance", None), ("pat", "member", east),
    ]:
        body = {"subject": subject, "name": subject.title(), "role": role}
        if team:
            body["team_id"] = team
        people[subject] = call(base, admin, "POST", "/v1/people", body)["id"]
    call(base, admin, "PATCH", f"/v1/teams/{ops}", {"manager_id": people["mia"]})
    call(base, admin, "PATCH", f"/v1/teams/{sales}", {"manager_id": people["max"]})
    for team in (ops, sales):
        call(base, admin, "PUT", f"/v1/teams/{team}/policy",
             {"per_problem_limit": usd("400.00"), "review_sla_hours": 24})
    problem = call(base, tokens["sam"], "POST", "/v1/problems",
                   {"title": "Printer", "success_criteria": "Prints again"})["id"]
    spend = {"merchant": "Acme", "description": "Toner", "spent_on": "2026-11-20"}
    approved = call(base, tokens["sam"], "POST", f"/v1/problems/{problem}/spends",
                    {**spend, "amount": usd("100.00")})["id"]
    pending = call(base, tokens["sam"], "POST", f"/v1/problems/{problem}/spends",
                   {**spend, "amount": usd("500.00")})["id"]
    now = datetime.datetime.now(datetime.timezone.utc)
    delegation = call(base, tokens["mia"], "POST", "/v1/delegations", {
        "delegate_id": people["max"], "from": now.isoformat(),
        "until": (now + datetime.timedelta(days=30)).isoformat()})["id"]
    # A test message, so the delivery log holds an attempt from the start.
    test = call(base, admin, "POST", f"/v1/webhooks/{webhooks['webhook']}/test")["message_id"]
    for _ in range(100):
        log = call(base, admin, "GET", f"/v1/webhooks/{webhooks['webhook']}/deliveries?limit=200")
        if any(attempt["message_id"] == test for attempt in log["items"]):
            break
        time.sleep(0.1)
    else:
        sys.exit("the webhook test message was never attempted")
    ids = {"ops": ops, "sales": sales, "ops_east": east, **people, "problem": problem,
           "approved_spend": approved, "pending_spend": pending, "delegation": delegation,
           **webhooks}
    json.dump(ids, open(out, "w"))


if __name__ == "__main__":
    main()
