"""schemathesis hooks for server/tests/api/fuzz.rs: a refused request changes nothing.

Before each generated request the ledger's head is read; after a refusal (4xx)
it must be the same. Every change Switchyard makes appends a ledger event in
the same transaction, and the test's server runs no operation runner or
background jobs, so an unchanged head means the refusal changed nothing.
Runs with one worker: the head read before a call belongs to that call.
"""

import os

import requests
import schemathesis

BASE = os.environ["SWITCHYARD_FUZZ_URL"]
TOKEN = os.environ["SWITCHYARD_FUZZ_TOKEN"]

_before = {"head": None}
# One kept-alive connection for the head reads.
_session = requests.Session()
_session.headers["Authorization"] = f"Bearer {TOKEN}"


def ledger_head():
    res = _session.get(f"{BASE}/api/v1/audit", params={"limit": 1}, timeout=30)
    res.raise_for_status()
    events = res.json()["events"]
    return (events[0]["id"], events[0]["hash"]) if events else None


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    _before["head"] = ledger_head()


@schemathesis.check
def refusal_changes_nothing(ctx, response, case):
    if not 400 <= response.status_code < 500:
        return None
    after = ledger_head()
    if after != _before["head"]:
        raise AssertionError(
            f"refused with {response.status_code}, yet the ledger moved "
            f"from {_before['head']} to {after}"
        )
    return None
