#!/usr/bin/env python3
"""Check a Switchyard audit export without Switchyard.

    python3 verify_audit_export.py --public-key KEY EXPORT.json

KEY is the checkpoint public key (64 hex digits, or a file holding them) as
the operator published it -- take it from them out of band, never from the
export. Needs Python 3.9+ and PyNaCl (pip install pynacl); nothing else.

It recomputes every event's hash (SHA-256 over the previous hash, a newline
and the event's canonical JSON, RFC 8785), checks the chain of events and
the chain of checkpoints, every checkpoint's Ed25519 signature, that the
covering checkpoint signs the last exported event and was signed after the
period ended, and that the export neither starts late nor stops early.
The format is described in docs/audit-export.md.

Exit codes: 0 VERIFIED, 1 REJECTED (the reason is printed), 2 bad usage or
an unreadable file, 3 UNSIGNED (the events chain together, but no checkpoint
vouches for them).
"""

import argparse
import datetime
import decimal
import hashlib
import json
import os
import sys

try:
    import nacl.exceptions
    import nacl.signing
except ImportError:  # pragma: no cover - told to the user
    sys.exit("error: PyNaCl is needed to check signatures: pip install pynacl")

FORMAT = "switchyard-audit-export-v1"
GENESIS_HASH = "sha256:" + "0" * 64
CHECKPOINT_GENESIS = "genesis"
MESSAGE_HEADER = "switchyard-checkpoint-v1"
EVENT_FIELDS = ("id", "at", "actor", "action", "model_id", "version",
                "environment", "cluster", "reason", "details")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Rejected(Exception):
    """The export does not prove what it claims; the message says why."""


# ---- RFC 8785 canonical JSON, as the server writes it ----

def canonical(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        # Members sorted by the UTF-16 code units of their names.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise Rejected("a value of type %s has no JSON form" % type(value).__name__)


def number(n):
    """A JSON number as ECMAScript prints the IEEE 754 double it denotes."""
    f = float(n)
    if f != f or f in (float("inf"), float("-inf")):
        raise Rejected("a number is not finite")
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    # repr gives the shortest digits that read back as the same double.
    digits_tuple = decimal.Decimal(repr(abs(f))).as_tuple()
    digits = "".join(map(str, digits_tuple.digits)).rstrip("0")
    exponent = digits_tuple.exponent + (len(digits_tuple.digits) - len(digits))
    k = len(digits)
    n_ = k + exponent  # the decimal point's place: value = 0.digits * 10^n_
    if k <= n_ <= 21:
        out = digits + "0" * (n_ - k)
    elif 0 < n_ <= 21:
        out = digits[:n_] + "." + digits[n_:]
    elif -6 < n_ <= 0:
        out = "0." + "0" * (-n_) + digits
    else:
        e = n_ - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        out = mantissa + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
           "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(s):
    out = ['"']
    for c in s:
        if c in ESCAPES:
            out.append(ESCAPES[c])
        elif ord(c) < 0x20:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def sha256_prefixed(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def event_hash(event):
    content = {field: event[field] for field in EVENT_FIELDS}
    return sha256_prefixed(event["prev_hash"].encode("utf-8") + b"\n"
                           + canonical(content).encode("utf-8"))


# ---- checkpoints ----

def checkpoint_message(cp):
    return ("%s\nseq %d\nevent_id %d\nevent_hash %s\nevent_at %d\ncount %d\n"
            "signed_at %d\nprev %s\n" % (
                MESSAGE_HEADER, cp["seq"], cp["event_id"], cp["event_hash"],
                cp["event_at"], cp["count"], cp["signed_at"], cp["prev"])).encode("utf-8")


def checkpoint_hash(cp):
    return sha256_prefixed(checkpoint_message(cp)
                           + ("signature %s\n" % cp["signature"]).encode("utf-8"))


def label(cp):
    return "checkpoint %d (event %d, %s)" % (cp["seq"], cp["event_id"], utc(cp["event_at"]))


# ---- times ----

def utc(micros):
    t = EPOCH + datetime.timedelta(microseconds=micros)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def micros_of(text, what):
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise Rejected("%s is not an RFC 3339 time: %r" % (what, text))
    if t.tzinfo is None:
        raise Rejected("%s has no time zone: %r" % (what, text))
    return (t - EPOCH) // datetime.timedelta(microseconds=1)


# ---- the checks ----

def expect(obj, field, kind, where):
    if not isinstance(obj, dict) or field not in obj:
        raise Rejected("%s has no %r" % (where, field))
    value = obj[field]
    ok = (isinstance(value, int) and not isinstance(value, bool)) if kind is int \
        else isinstance(value, kind)
    if not ok:
        raise Rejected("%s: %r must be %s" % (where, field, kind.__name__))
    return value


def check_shape(export):
    if not isinstance(export, dict):
        raise Rejected("the export is not a JSON object")
    if export.get("format") != FORMAT:
        raise Rejected("format is %r, this script reads %r" % (export.get("format"), FORMAT))
    period = export.get("period")
    for field in ("first_event_id", "last_event_id"):
        expect(period, field, int, "period")
    for field in ("from", "to"):
        expect(period, field, str, "period")
    events = expect(export, "events", list, "the export")
    for i, ev in enumerate(events):
        where = "event #%d of the export" % (i + 1)
        for field in ("id", "at"):
            expect(ev, field, int, where)
        for field in ("actor", "action", "prev_hash", "hash"):
            expect(ev, field, str, where)
        for field in ("model_id", "version", "environment", "cluster", "reason"):
            if field not in ev or not (ev[field] is None or isinstance(ev[field], str)):
                raise Rejected("%s: %r must be a string or null" % (where, field))
        if "details" not in ev:
            raise Rejected("%s has no 'details'" % where)
    for i, cp in enumerate(expect(export, "checkpoints", list, "the export")):
        where = "checkpoint #%d of the export" % (i + 1)
        for field in ("seq", "event_id", "event_at", "count", "signed_at"):
            expect(cp, field, int, where)
        for field in ("event_hash", "prev", "signature"):
            expect(cp, field, str, where)


def check_events(events):
    """The chain of events: contiguous ids, each hash recomputed, each link."""
    if not events:
        raise Rejected("the export holds no events")
    if events[0]["id"] == 1 and events[0]["prev_hash"] != GENESIS_HASH:
        raise Rejected("event 1 does not start from the genesis hash: it was rewritten")
    for prev, ev in zip([None] + events[:-1], events):
        if prev is not None and ev["id"] != prev["id"] + 1:
            if ev["id"] > prev["id"] + 1:
                raise Rejected("events %d to %d are missing: event %d follows event %d" % (
                    prev["id"] + 1, ev["id"] - 1, ev["id"], prev["id"]))
            raise Rejected("event %d comes after event %d: out of order or repeated" % (
                ev["id"], prev["id"]))
        if event_hash(ev) != ev["hash"]:
            raise Rejected("event %d was edited: its content no longer matches its hash" % ev["id"])
        if prev is not None and ev["prev_hash"] != prev["hash"]:
            raise Rejected("event %d was rewritten: its hash is not the prev_hash event %d "
                           "recorded" % (prev["id"], ev["id"]))


def check_period(export, events):
    """The export starts just before the period and does not stop inside it."""
    period = export["period"]
    start, end = micros_of(period["from"], "period.from"), micros_of(period["to"], "period.to")
    first, last = period["first_event_id"], period["last_event_id"]
    ids = [ev["id"] for ev in events]
    if first > last or first not in ids or last not in ids:
        raise Rejected("the period's events %d to %d are not all in the export (it holds %d to %d)"
                       % (first, last, ids[0], ids[-1]))
    if first > 1:
        if ids[0] != first - 1:
            raise Rejected("event %d, the one before the period, is not in the export: "
                           "it cannot show that the export does not start late" % (first - 1))
        before = events[0]
        if before["at"] >= start:
            raise Rejected("event %d (%s) lies in the period, but the export's period starts "
                           "after it: events at the period's start were left out"
                           % (before["id"], utc(before["at"])))
    for ev in events:
        if ev["id"] > last and ev["at"] < end:
            raise Rejected("event %d (%s) lies in the period, but the export's period ends "
                           "before it: events at the period's end were left out"
                           % (ev["id"], utc(ev["at"])))
    return start, end


def check_checkpoints(checkpoints, events, key, end):
    """Signatures, the checkpoint chain, and the heads they sign. Returns the covering one."""
    by_id = {ev["id"]: ev for ev in events}
    expected_prev = CHECKPOINT_GENESIS
    for i, cp in enumerate(checkpoints):
        try:
            key.verify(checkpoint_message(cp), bytes.fromhex(cp["signature"]))
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            raise Rejected("%s: the signature does not verify with the public key "
                           "(forged or altered, or signed with another key)" % label(cp))
        if cp["seq"] != i + 1:
            raise Rejected("%s is checkpoint #%d of the export: checkpoint %d is missing"
                           % (label(cp), i + 1, i + 1))
        if cp["prev"] != expected_prev:
            raise Rejected("%s does not follow the checkpoint before it: a checkpoint was "
                           "removed, replaced or reordered" % label(cp))
        expected_prev = checkpoint_hash(cp)
        ev = by_id.get(cp["event_id"])
        if ev is not None:
            if ev["hash"] != cp["event_hash"]:
                raise Rejected("%s signed hash %s, the export's event %d has %s: the events "
                               "were rewritten" % (label(cp), cp["event_hash"], ev["id"], ev["hash"]))
            if cp["count"] != cp["event_id"] or cp["event_at"] != ev["at"]:
                raise Rejected("%s does not describe event %d as exported" % (label(cp), ev["id"]))
    covering = checkpoints[-1]
    if covering["event_id"] != events[-1]["id"]:
        raise Rejected("the last checkpoint, %s, does not sign the last exported event %d"
                       % (label(covering), events[-1]["id"]))
    if covering["signed_at"] < end:
        raise Rejected("the last checkpoint, %s, was signed at %s, before the period ended: "
                       "it cannot show that no event of the period is missing"
                       % (label(covering), utc(covering["signed_at"])))
    return covering


def read_public_key(arg):
    text = arg
    if os.path.exists(arg):
        with open(arg, encoding="utf-8") as f:
            text = f.read()
    try:
        raw = bytes.fromhex(text.strip())
        if len(raw) != 32:
            raise ValueError
        return nacl.signing.VerifyKey(raw)
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise SystemExit("error: the public key %r is not 64 hex digits (as `switchyard audit "
                         "public-key` prints) nor a file holding them" % arg)


def verify(export, key):
    """Returns (exit code, verdict line)."""
    check_shape(export)
    events = export["events"]
    check_events(events)
    _, end = check_period(export, events)
    period = export["period"]
    what = "events %d to %d (%d events, %s to %s)" % (
        period["first_event_id"], period["last_event_id"],
        period["last_event_id"] - period["first_event_id"] + 1, period["from"], period["to"])
    if not export["checkpoints"]:
        return 3, ("UNSIGNED: %s chain together, but no signed checkpoint vouches for them, so "
                   "whoever can write the database could have rewritten them; ask for an export "
                   "made with --checkpoints" % what)
    covering = check_checkpoints(export["checkpoints"], events, key, end)
    n = len(export["checkpoints"])
    return 0, ("VERIFIED: %s are complete and unaltered: they chain to the head that %s signed at "
               "%s, and the chain of %d checkpoint%s from the first holds" % (
                   what, label(covering), utc(covering["signed_at"]), n, "" if n == 1 else "s"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--public-key", required=True,
                        help="the checkpoint public key: 64 hex digits or a file holding them")
    parser.add_argument("export", help="the file `switchyard audit export` wrote")
    args = parser.parse_args()
    key = read_public_key(args.public_key)
    try:
        with open(args.export, encoding="utf-8") as f:
            export = json.load(f)
    except OSError as e:
        print("error: cannot read %s: %s" % (args.export, e), file=sys.stderr)
        return 2
    except ValueError as e:
        print("REJECTED: %s is not JSON: %s" % (args.export, e))
        return 1
    try:
        code, verdict = verify(export, key)
    except Rejected as e:
        print("REJECTED: %s" % e)
        return 1
    print(verdict)
    return code


if __name__ == "__main__":
    sys.exit(main())
