#!/usr/bin/env python3
"""Writes an NDJSON import file (the POST /import format) of a synthetic company, for measuring
import rates: 200 campaigns over 8 channels; per lead one lead record and 5 touchpoints; one
lead in three moves to MQL and one in six on to SAL (moves with externalIds, so a resend
replays them); one lead in ten gets an opportunity, closed won, with revenue. About 6.8
records per lead.
Usage: scripts/make-ndjson.py LEADS > file.ndjson"""
import json, random, sys

leads = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
rng = random.Random(7)
channels = ["email", "paid_search", "social", "events", "webinar", "content", "partner", "direct"]
out = sys.stdout
w = lambda o: out.write(json.dumps(o, separators=(",", ":")) + "\n")
for c in range(200):
    w({"type": "campaign", "externalId": f"c{c:04}", "name": f"Campaign {c}", "channel": channels[c % 8]})
for i in range(leads):
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    w({"type": "lead", "externalId": f"L{i:08}", "email": f"l{i}@example.com", "company": f"Co {i % 5000}",
       "createdAt": f"2026-{month:02}-{day:02}T08:00:00Z", "attributes": [{"key": "industry", "value": rng.choice(["retail", "software", "finance"])}]})
    for t in range(5):
        w({"type": "touchpoint", "externalId": f"t{i:08}-{t}", "leadExternalId": f"L{i:08}",
           "campaignExternalId": f"c{rng.randrange(200):04}", "kind": "visit",
           "occurredAt": f"2026-{month:02}-{day:02}T{9 + t:02}:00:00Z"})
    if i % 3 == 0:
        w({"type": "transition", "externalId": f"mv{i:08}-mql", "leadExternalId": f"L{i:08}", "to": "MQL",
           "occurredAt": f"2026-{month:02}-{day:02}T14:00:00Z"})
    if i % 6 == 0:
        w({"type": "transition", "externalId": f"mv{i:08}-sal", "leadExternalId": f"L{i:08}", "to": "SAL",
           "occurredAt": f"2026-{month:02}-{day:02}T14:30:00Z"})
    if i % 10 == 0:
        w({"type": "opportunity", "externalId": f"O{i:08}", "name": f"Deal {i}", "primaryContactExternalId": f"L{i:08}",
           "amount": {"amount": f"{1000 + i % 9000}.00", "currency": "USD"}, "createdAt": f"2026-{month:02}-{day:02}T15:00:00Z"})
        w({"type": "closeOpportunity", "externalId": f"O{i:08}", "won": True, "closedAt": f"2026-{month:02}-{day:02}T16:00:00Z"})
        w({"type": "revenue", "externalId": f"R{i:08}", "opportunityExternalId": f"O{i:08}",
           "amount": {"amount": f"{1000 + i % 9000}.00", "currency": "USD"}, "bookedOn": f"2026-{month:02}-{day:02}"})
