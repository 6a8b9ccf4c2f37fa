"""The README walk-through, through a Python client that openapi-python-client
generated from openapi.yaml with its default settings.

Usage: walkthrough.py BASE_URL TOKENS_JSON, where TOKENS_JSON maps the
subjects admin, mia, sam and fin to a token each (`leeway token`), and the
admin is bootstrapped on an empty database. Every answer is read through the
typed models, and each must carry every field the server sent (a field the
spec lacks would be dropped silently), so this fails when openapi.yaml and
the server disagree in a way a generated client notices.
"""

import datetime
import json
import sys
import uuid
from http import HTTPStatus

import attrs

from leeway_client import AuthenticatedClient
from leeway_client.api.audit import verify_audit_chain
from leeway_client.api.exports import export_spends_csv, export_spends_jsonl
from leeway_client.api.people import create_person
from leeway_client.api.policies import put_policy
from leeway_client.api.problems import create_problem, get_problem
from leeway_client.api.reviews import list_review_queue, review_spend
from leeway_client.api.spends import get_spend, log_spend
from leeway_client.api.teams import create_team, update_team
from leeway_client.models import (
    CreatePerson,
    CreateProblem,
    CreateSpend,
    CreateTeam,
    CurrencyCode,
    MoneyInput,
    ProblemDetails,
    PutPolicy,
    ReviewDecision,
    ReviewDecisionDecision,
    Role,
    UpdateTeam,
)
from leeway_client.types import Unset


def same_keys(sent, typed, path):
    """Fails unless `typed` (a model's to_dict()) has every key of `sent`."""
    if isinstance(sent, dict):
        assert isinstance(typed, dict), f"{path}: {typed!r} is not an object"
        missing = sorted(set(sent) - set(typed))
        assert not missing, f"{path}: the typed model dropped {missing}"
        for key, value in sent.items():
            same_keys(value, typed[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(typed, list) and len(typed) == len(sent), f"{path}: lists differ"
        for index, (item, typed_item) in enumerate(zip(sent, typed)):
            same_keys(item, typed_item, f"{path}[{index}]")


def nothing_untyped(value, path):
    """Fails if a model in `value` keeps a field as an untyped extra: one the
    spec does not declare where the generator can see it."""
    if attrs.has(type(value)):
        extra = sorted(getattr(value, "additional_properties", {}))
        assert not extra, f"{path}: {type(value).__name__} has no typed field for {extra}"
        for field in attrs.fields(type(value)):
            nothing_untyped(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            nothing_untyped(item, f"{path}[{index}]")


def call(endpoint, status, **kwargs):
    """Calls `endpoint` and returns its typed answer, which must have `status`
    and carry every field of the JSON the server sent as a typed field."""
    response = endpoint.sync_detailed(**kwargs)
    name = endpoint.__name__.rsplit(".", 1)[-1]
    assert response.status_code == status, f"{name}: {response.status_code} {response.content!r}"
    if response.headers.get("content-type", "").endswith("json"):
        same_keys(json.loads(response.content), response.parsed.to_dict(), name)
        nothing_untyped(response.parsed, name)
    return response.parsed


def usd(amount):
    return MoneyInput(amount=amount, currency=CurrencyCode.USD)


def main(base_url, tokens_path):
    tokens = json.load(open(tokens_path))
    admin, mia, sam, fin = (
        AuthenticatedClient(base_url=base_url, token=tokens[subject], raise_on_unexpected_status=True)
        for subject in ["admin", "mia", "sam", "fin"]
    )

    # A team, its manager, a member, and the team's policy: $400 per problem.
    team = call(create_team, HTTPStatus.CREATED, client=admin, body=CreateTeam(name="Facilities"))
    mia_person = call(
        create_person,
        HTTPStatus.CREATED,
        client=admin,
        body=CreatePerson(subject="mia", name="Mia Manager", role=Role.MANAGER, team_id=team.id),
    )
    team = call(update_team, HTTPStatus.OK, client=admin, id=team.id, body=UpdateTeam(manager_id=mia_person.id))
    assert team.manager_id == mia_person.id
    sam_person = call(
        create_person,
        HTTPStatus.CREATED,
        client=admin,
        body=CreatePerson(subject="sam", name="Sam Member", role=Role.MEMBER, team_id=team.id),
    )
    assert sam_person.role == Role.MEMBER
    policy = call(
        put_policy,
        HTTPStatus.OK,
        client=admin,
        id=team.id,
        body=PutPolicy(per_problem_limit=usd("400.00"), review_sla_hours=24),
    )
    assert (policy.version, policy.per_problem_limit.amount) == (1, "400.00")

    # Sam opens a problem: its limit is pinned from the policy.
    problem = call(
        create_problem,
        HTTPStatus.CREATED,
        client=sam,
        body=CreateProblem(title="Fix the printer", success_criteria="Prints double-sided again"),
    )
    assert problem.limit.amount == "400.00"

    # $350 fits the budget: approved on the spot; a retry with its key replays it.
    toner = CreateSpend(
        amount=usd("350.00"),
        merchant="Acme Office",
        description="Toner",
        spent_on=datetime.date(2026, 11, 24),
    )
    approved = call(
        log_spend, HTTPStatus.CREATED, client=sam, id=problem.id, body=toner, idempotency_key="toner-2026-11-24"
    )
    assert (approved.status.value, approved.overrun) == ("approved", None)
    replayed = call(
        log_spend, HTTPStatus.CREATED, client=sam, id=problem.id, body=toner, idempotency_key="toner-2026-11-24"
    )
    assert replayed.id == approved.id

    # $120 more goes $70 past it: logged, and flagged for Mia.
    drum = CreateSpend(
        amount=usd("120.00"),
        merchant="Acme Office",
        description="Drum unit",
        spent_on=datetime.date(2026, 11, 24),
    )
    flagged = call(log_spend, HTTPStatus.CREATED, client=sam, id=problem.id, body=drum)
    assert (flagged.status.value, flagged.overrun.amount) == ("pending_review", "70.00")
    queue = call(list_review_queue, HTTPStatus.OK, client=mia)
    [item] = queue.items
    assert (item.id, item.overrun.amount, item.can_decide, item.on_behalf_of) == (flagged.id, "70.00", True, None)

    # An error is a typed ProblemDetails too.
    missing = call(get_spend, HTTPStatus.NOT_FOUND, client=mia, id=uuid.UUID("01936d5e-0000-7000-8000-000000000000"))
    assert isinstance(missing, ProblemDetails) and missing.code.value == "not_found", missing

    # Mia approves it; the spend shows its review history.
    decided = call(
        review_spend,
        HTTPStatus.OK,
        client=mia,
        id=flagged.id,
        body=ReviewDecision(decision=ReviewDecisionDecision.APPROVE, note="The drum was worn out too"),
    )
    assert (decided.status.value, decided.decided_by) == ("approved_by_manager", mia_person.id)
    spend = call(get_spend, HTTPStatus.OK, client=sam, id=flagged.id)
    assert not isinstance(spend.review_history, Unset)
    assert [step.action.value for step in spend.review_history] == ["routed", "approved"]

    # Finance reads everything and changes nothing: the audit chain and the exports.
    fin_person = call(
        create_person, HTTPStatus.CREATED, client=admin, body=CreatePerson(subject="fin", name="Fin Finance", role=Role.FINANCE)
    )
    assert fin_person.role == Role.FINANCE
    report = call(verify_audit_chain, HTTPStatus.OK, client=fin)
    assert report.ok, report
    csv = call(export_spends_csv, HTTPStatus.OK, client=fin)
    assert len(csv.strip().splitlines()) == 3, csv
    lines = [json.loads(line) for line in call(export_spends_jsonl, HTTPStatus.OK, client=fin).splitlines()]
    assert sorted(line["status"] for line in lines) == ["approved", "approved_by_manager"], lines

    problem = call(get_problem, HTTPStatus.OK, client=sam, id=problem.id)
    totals = [problem.approved.amount, problem.pending_review.amount, problem.remaining.amount]
    assert totals == ["470.00", "0.00", "-70.00"], totals
    print(f"python client: walk-through ended with totals {totals} as documented")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
