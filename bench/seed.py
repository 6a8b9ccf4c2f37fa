"""bench/seed.py: creates the benchmark's organisation through the HTTP API.

Owns: the shape of the organisation every benchmark case writes into, and
the "pairs" files the wrk script reads (one `TOKEN PROBLEM_ID` per line).

Usage: seed.py BASE_URL BINARY OUT_DIR
  BINARY is the leeway binary; it mints tokens with `leeway token`, so
  LEEWAY_JWT_SECRET (and the database settings) must be in the environment.

Creates one team with a policy whose per-problem limit (BENCH_LIMIT, USD) is
far above what any run spends, so spends are approved on the spot;
BENCH_MEMBERS members; BENCH_PROBLEMS problems spread round-robin over the
members, each opened by its owner; one "hot" problem (the first), and two
extra problems of the first member for the history-flatness case: "history"
(which gets N prior spends) and "control" (fresh, measured right after the
history problem, so drift of a shared machine shows). Writes:
  OUT_DIR/pairs-spread.txt   every (owner token, problem) pair
  OUT_DIR/pairs-hot.txt      the first problem only
  OUT_DIR/pairs-history.txt  the history problem only
  OUT_DIR/pairs-control.txt  the control problem only
  OUT_DIR/finance.token      a finance token for the exports
  OUT_DIR/org.json           the ids
"""

import json
import os
import subprocess
import sys
import urllib.request

TOKEN_TTL_SECS = 7200  # far longer than a full run; within the server's 24 h maximum


def call(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def token(binary, subject):
    return subprocess.run(
        [binary, "token", "--subject", subject, "--ttl-secs", str(TOKEN_TTL_SECS)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def main():
    base, binary, out = sys.argv[1:4]
    members = int(os.environ.get("BENCH_MEMBERS", "16"))
    problems = int(os.environ.get("BENCH_PROBLEMS", "64"))
    limit = os.environ.get("BENCH_LIMIT", "1000000000.00")
    admin = token(binary, "admin")
    usd = {"amount": limit, "currency": "USD"}

    team = call(base, admin, "POST", "/v1/teams", {"name": "Bench"})["id"]
    manager = call(base, admin, "POST", "/v1/people", {
        "subject": "bench-manager", "name": "Bench Manager", "role": "manager", "team_id": team})["id"]
    call(base, admin, "PATCH", f"/v1/teams/{team}", {"manager_id": manager})
    call(base, admin, "PUT", f"/v1/teams/{team}/policy",
         {"per_problem_limit": usd, "review_sla_hours": 24})
    call(base, admin, "POST", "/v1/people", {"subject": "bench-finance", "name": "Bench Finance", "role": "finance"})

    tokens = []
    for i in range(members):
        subject = f"bench-member-{i:02d}"
        call(base, admin, "POST", "/v1/people", {
            "subject": subject, "name": f"Member {i}", "role": "member", "team_id": team})
        tokens.append(token(binary, subject))

    pairs = []
    for i in range(problems):
        owner = tokens[i % members]
        problem = call(base, owner, "POST", "/v1/problems", {
            "title": f"Bench problem {i}", "success_criteria": "Benchmarked"})
        if problem["limit"]["amount"] != limit or problem["status"] != "open":
            sys.exit(f"seed: problem {i} did not get the bench limit: {problem}")
        pairs.append((owner, problem["id"]))
    history, control = (call(base, tokens[0], "POST", "/v1/problems", {
        "title": f"{name} problem", "success_criteria": "Benchmarked"})["id"]
        for name in ("History", "Control"))

    def write(name, rows):
        with open(os.path.join(out, name), "w") as f:
            for owner, problem in rows:
                f.write(f"{owner} {problem}\n")

    write("pairs-spread.txt", pairs)
    write("pairs-hot.txt", pairs[:1])
    write("pairs-history.txt", [(tokens[0], history)])
    write("pairs-control.txt", [(tokens[0], control)])
    with open(os.path.join(out, "finance.token"), "w") as f:
        f.write(token(binary, "bench-finance"))
    json.dump({"team": team, "problems": [p for _, p in pairs], "history": history,
               "control": control},
              open(os.path.join(out, "org.json"), "w"))


if __name__ == "__main__":
    main()
