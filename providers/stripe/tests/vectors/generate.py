"""Generates webhook_signatures.json with Stripe's official Python library.

The Rust tests (tests/stripe/signatures.rs) check that the gateway signs and verifies exactly as
stripe-python does. The vectors are committed, so the tests need no Python; regenerate
them after changing a case:

    python3 -m venv /tmp/stripe-venv
    /tmp/stripe-venv/bin/pip install stripe==16.1.0
    /tmp/stripe-venv/bin/python providers/stripe/tests/vectors/generate.py

Every header below comes from `stripe.WebhookSignature.generate_signature_header` and
every verdict from `stripe.WebhookSignature.verify_header` with the default tolerance,
run at a fixed "now" (the library reads `time.time()`, which is patched per case).
"""

import json
import os
import sys
import time
from unittest import mock

import stripe
from stripe import WebhookSignature

TOLERANCE = stripe.Webhook.DEFAULT_TOLERANCE  # 300 s

SECRET = "whsec_test_secret"
SANDBOX = "whsec_stripe_sandbox"
OLD = "whsec_rotation_old_0123456789abcdef"
NEW = "whsec_rotation_new_fedcba9876543210"
T = 1700000000

PAYLOADS = {
    # The vector published in stripe.md.
    "stripe_md": '{"id":"evt_test_webhook","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,"data":{"object":{"id":"pi_123","object":"payment_intent","amount":2000,"currency":"sek","status":"succeeded","metadata":{"order_id":"ord_1"}}}}',
    # An event in the shape the gateway acts on, pretty-printed as Stripe sends it.
    "capturable": json.dumps(
        {
            "id": "evt_1PvectorCapturable",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": T,
            "data": {
                "object": {
                    "id": "pi_3PvectorCapturable",
                    "object": "payment_intent",
                    "amount": 123450,
                    "amount_capturable": 123450,
                    "amount_received": 0,
                    "capture_method": "manual",
                    "currency": "sek",
                    "metadata": {
                        "cart_id": "0b6f7c1e-2a49-4a8e-9d7e-52f1f0a1c001",
                        "gateway": "psp-gateway",
                    },
                    "status": "requires_capture",
                }
            },
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": "payment_intent.amount_capturable_updated",
        },
        indent=2,
    ),
    # Non-ASCII text: the signature is over the UTF-8 bytes.
    "unicode": '{"id":"evt_unicode","object":"event","type":"customer.updated","data":{"object":{"name":"Malmö Café – ÅÄÖ ✓"}}}',
    "empty_object": "{}",
}


def header(payload, secret, t):
    return WebhookSignature.generate_signature_header(payload, secret, timestamp=t)


def verdict(payload, hdr, secrets, now):
    """What stripe-python says about `hdr`, trying each configured secret in turn."""
    last_error = None
    for secret in secrets:
        with mock.patch("time.time", return_value=float(now)):
            try:
                WebhookSignature.verify_header(payload, hdr, secret, tolerance=TOLERANCE)
                return {"accepted": True, "error": None, "kind": None}
            except stripe.SignatureVerificationError as e:
                last_error = str(e)
    kind = (
        "stale" if "tolerance zone" in last_error
        else "no_match" if "No signatures found" in last_error
        else "malformed" if "Unable to extract" in last_error
        else "missing" if "No Stripe-Signature header" in last_error
        else "other"
    )
    return {"accepted": False, "error": last_error, "kind": kind}


def main():
    signatures = []
    for name, payload in PAYLOADS.items():
        for secret in (SECRET, SANDBOX, OLD):
            for t in (T, T + 12345):
                signatures.append(
                    {
                        "payload_name": name,
                        "payload": payload,
                        "secret": secret,
                        "timestamp": t,
                        "header": header(payload, secret, t),
                    }
                )

    p = PAYLOADS["capturable"]
    good = header(p, SECRET, T)
    good_v1 = good.split(",v1=")[1]
    old = header(p, OLD, T)
    new = header(p, NEW, T)
    cases = [
        ("a fresh header verifies", p, good, [SECRET], T + 5),
        ("a header at the edge of the tolerance verifies", p, good, [SECRET], T + TOLERANCE),
        ("one second past the tolerance is stale", p, good, [SECRET], T + TOLERANCE + 1),
        ("a timestamp far in the future verifies", p, good, [SECRET], T - 10000),
        ("one wrong and one right v1 verify", p, f"t={T},v1={'0' * 64},v1={good_v1}", [SECRET], T),
        ("a v0 next to a good v1 is ignored", p, f"{good},v0={'ab' * 32}", [SECRET], T),
        ("a v0 alone is refused", p, f"t={T},v0={good_v1}", [SECRET], T),
        ("a header without a timestamp is malformed", p, f"v1={good_v1}", [SECRET], T),
        ("a wrong secret is refused", p, good, [NEW], T),
        ("a changed body is refused", p.replace("123450", "123451"), good, [SECRET], T),
        ("the old secret verifies while both are configured", p, old, [NEW, OLD], T),
        ("the new secret verifies while both are configured", p, new, [NEW, OLD], T),
        ("the old secret is refused once retired", p, old, [NEW], T),
        ("a header signed by both secrets verifies with either", p, f"{old},v1={new.split(',v1=')[1]}", [NEW], T),
        ("a stale header signed by the old secret is stale", p, old, [NEW, OLD], T + 3600),
        ("a header signed with a secret that only differs by case is refused", p, header(p, SECRET.upper(), T), [SECRET], T),
    ]
    verifications = []
    for name, payload, hdr, secrets, now in cases:
        v = verdict(payload, hdr, secrets, now)
        verifications.append(
            {"name": name, "payload": payload, "header": hdr, "secrets": secrets, "now": now, **v}
        )

    out = {
        "generator": f"stripe-python {stripe.VERSION}: WebhookSignature.generate_signature_header and verify_header",
        "tolerance": TOLERANCE,
        "signatures": signatures,
        "verifications": verifications,
    }
    # An optional argument writes elsewhere: the test script regenerates the vectors with
    # the library it just installed and compares them with the committed file.
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webhook_signatures.json")
    path = sys.argv[1] if len(sys.argv) > 1 else default
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(signatures)} signatures and {len(verifications)} verdicts to {path}")


if __name__ == "__main__":
    main()
