// The README walk-through, through openapi-fetch typed by the types that
// openapi-typescript generated from openapi.yaml with its default settings.
//
// Usage: node walkthrough.js BASE_URL TOKENS_JSON, where TOKENS_JSON maps the
// subjects admin, mia, sam and fin to a token each (`leeway token`), and the
// admin is bootstrapped on an empty database. `tsc --strict` checks every
// field read here against the generated types (`can_decide`,
// `review_history`, ...), so a field the spec lacks fails the build.

import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Money = components["schemas"]["MoneyInput"];

const [baseUrl, tokensPath] = process.argv.slice(2);
const tokens: Record<string, string> = JSON.parse(readFileSync(tokensPath, "utf8"));

function clientFor(subject: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${tokens[subject]}` } });
}

function check(condition: boolean, what: string, value?: unknown): void {
  if (!condition) {
    throw new Error(`${what}: ${JSON.stringify(value)}`);
  }
}

// The typed body of a success, or a failure that names the error answered.
function ok<T>(
  result: { data?: T; error?: unknown; response: Response },
  status: number,
  what: string,
): T {
  check(result.response.status === status && result.data !== undefined, `${what} answered ${result.response.status}`, result.error);
  return result.data as T;
}

function usd(amount: string): Money {
  return { amount, currency: "USD" };
}

const [admin, mia, sam, fin] = ["admin", "mia", "sam", "fin"].map(clientFor);

// A team, its manager, a member, and the team's policy: $400 per problem.
const team = ok(await admin.POST("/v1/teams", { body: { name: "Facilities" } }), 201, "create team");
const miaPerson = ok(
  await admin.POST("/v1/people", {
    body: { subject: "mia", name: "Mia Manager", role: "manager", team_id: team.id },
  }),
  201,
  "create mia",
);
const managed = ok(
  await admin.PATCH("/v1/teams/{id}", { params: { path: { id: team.id } }, body: { manager_id: miaPerson.id } }),
  200,
  "set the manager",
);
check(managed.manager_id === miaPerson.id, "manager_id", managed);
const samPerson = ok(
  await admin.POST("/v1/people", {
    body: { subject: "sam", name: "Sam Member", role: "member", team_id: team.id },
  }),
  201,
  "create sam",
);
check(samPerson.role === "member", "sam's role", samPerson);
const policy = ok(
  await admin.PUT("/v1/teams/{id}/policy", {
    params: { path: { id: team.id } },
    body: { per_problem_limit: usd("400.00"), review_sla_hours: 24 },
  }),
  200,
  "put the policy",
);
check(policy.version === 1 && policy.per_problem_limit.amount === "400.00", "policy", policy);

// Sam opens a problem: its limit is pinned from the policy.
const problem = ok(
  await sam.POST("/v1/problems", {
    body: { title: "Fix the printer", success_criteria: "Prints double-sided again" },
  }),
  201,
  "open the problem",
);
check(problem.limit.amount === "400.00", "limit", problem);
const spends = { params: { path: { id: problem.id } } };

// $350 fits the budget: approved on the spot; a retry with its key replays it.
const toner = { amount: usd("350.00"), merchant: "Acme Office", description: "Toner", spent_on: "2026-11-24" };
const key = { header: { "Idempotency-Key": "toner-2026-11-24" }, path: { id: problem.id } };
const approved = ok(await sam.POST("/v1/problems/{id}/spends", { params: key, body: toner }), 201, "log the toner");
check(approved.status === "approved" && approved.overrun === null, "toner", approved);
const replay = await sam.POST("/v1/problems/{id}/spends", { params: key, body: toner });
check(ok(replay, 201, "retry the toner").id === approved.id, "replayed id", replay.data);
check(replay.response.headers.get("Idempotent-Replayed") === "true", "Idempotent-Replayed", replay.response.status);

// $120 more goes $70 past it: logged, and flagged for Mia.
const drum = { amount: usd("120.00"), merchant: "Acme Office", description: "Drum unit", spent_on: "2026-11-24" };
const flagged = ok(await sam.POST("/v1/problems/{id}/spends", { ...spends, body: drum }), 201, "log the drum");
check(flagged.status === "pending_review" && flagged.overrun?.amount === "70.00", "drum", flagged);
const queue = ok(await mia.GET("/v1/reviews"), 200, "read the queue");
check(queue.items.length === 1, "queue length", queue);
const item = queue.items[0];
check(item.id === flagged.id && item.can_decide && item.on_behalf_of === null, "queue item", item);

// An error is a typed ProblemDetails.
const missing = await mia.GET("/v1/spends/{id}", {
  params: { path: { id: "01936d5e-0000-7000-8000-000000000000" } },
});
check(missing.response.status === 404 && missing.error?.code === "not_found", "unknown spend", missing.error);

// Mia approves it; the spend shows its review history.
const decided = ok(
  await mia.POST("/v1/spends/{id}/review", {
    params: { path: { id: flagged.id } },
    body: { decision: "approve", note: "The drum was worn out too" },
  }),
  200,
  "approve the drum",
);
check(decided.status === "approved_by_manager" && decided.decided_by === miaPerson.id, "decision", decided);
const spend = ok(await sam.GET("/v1/spends/{id}", { params: { path: { id: flagged.id } } }), 200, "read the drum");
const steps = (spend.review_history ?? []).map((step) => step.action);
check(JSON.stringify(steps) === '["routed","approved"]', "review history", steps);

// Finance reads everything and changes nothing: the audit chain and the exports.
const finPerson = ok(
  await admin.POST("/v1/people", { body: { subject: "fin", name: "Fin Finance", role: "finance" } }),
  201,
  "create fin",
);
check(finPerson.role === "finance", "fin's role", finPerson);
const report = ok(await fin.GET("/v1/audit/verify"), 200, "verify the audit chain");
check(report.ok, "audit chain", report);
const csv = ok(await fin.GET("/v1/exports/spends.csv", { parseAs: "text" }), 200, "export csv");
check(csv.trim().split("\n").length === 3, "csv rows", csv);
const jsonl = ok(await fin.GET("/v1/exports/spends.jsonl", { parseAs: "text" }), 200, "export jsonl");
const exported = jsonl.trim().split("\n").map((line) => JSON.parse(line).status as string).sort();
check(JSON.stringify(exported) === '["approved","approved_by_manager"]', "jsonl statuses", exported);

const final = ok(await sam.GET("/v1/problems/{id}", spends), 200, "read the problem");
const totals = [final.approved.amount, final.pending_review.amount, final.remaining.amount];
check(JSON.stringify(totals) === '["470.00","0.00","-70.00"]', "totals", totals);
console.log(`typescript client: walk-through ended with totals ${JSON.stringify(totals)} as documented`);
