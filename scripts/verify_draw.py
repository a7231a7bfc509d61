#!/usr/bin/env python3
"""Re-derives a medmesh inspection draw (algorithm version 1) from the published plan and the
revealed nonce, independently of medmesh's code. Usage:

    python3 scripts/verify_draw.py plan.json

plan.json is AgencyService/GetInspectionPlan's answer as grpcurl prints it: {"plan": {"id",
"targets": [{"id", "grade"}], "inspectors": [{"id", "homeInstitution", "region"}],
"conflicts": [{"inspector", "institution"}], "drawTargets", "inspectorsPerTarget",
"commitment"}, "draw": {"nonce", "beacon", ...}} (or the nonce and beacon at the top level, as
in services/inspection/testdata/vector.json).
It prints one line per drawn target, "TARGET: INSPECTOR INSPECTOR ...", and fails if the nonce
does not match the commitment.
"""
import hashlib
import json
import sys

WEIGHT = {"A": 1, "B": 2, "C": 3, "D": 4}


def field(d, *names, default=None):
    for n in names:
        if n in d:
            return d[n]
    return default


def derive(plan, nonce_hex, beacon_hex):
    nonce = bytes.fromhex(nonce_hex)
    beacon = bytes.fromhex(beacon_hex)
    assert len(nonce) == 32 and len(beacon) == 32
    if hashlib.sha256(nonce).hexdigest() != field(plan, "commitment").lower():
        raise SystemExit("the nonce does not match the commitment")
    pid = plan["id"].encode()
    seed = hashlib.sha256(b"medmesh-draw-v1" + b"\0" + pid + b"\0" + nonce + beacon).digest()
    counter = [0]

    def below(n):
        limit = 2**64 - (2**64 % n)
        while True:
            block = hashlib.sha256(seed + counter[0].to_bytes(8, "big")).digest()
            counter[0] += 1
            x = int.from_bytes(block[:8], "big")
            if x < limit:
                return x % n

    def grade(t):
        g = str(field(t, "grade", default="A"))
        return WEIGHT[g[-1]]  # "D" or "CREDIT_GRADE_D"

    targets = sorted(plan["targets"], key=lambda t: t["id"].encode())
    inspectors = sorted(plan["inspectors"], key=lambda p: p["id"].encode())
    conflicts = {(c["inspector"], c["institution"]) for c in plan.get("conflicts", [])}
    drawn = []
    for _ in range(int(field(plan, "drawTargets", "draw_targets"))):
        p = below(sum(grade(t) for t in targets))
        for i, t in enumerate(targets):
            if p < grade(t):
                drawn.append(targets.pop(i))
                break
            p -= grade(t)
    out = []
    for t in drawn:
        eligible = [p for p in inspectors
                    if field(p, "homeInstitution", "home_institution", default="") != t["id"]
                    and (p["id"], t["id"]) not in conflicts]
        chosen = []
        for _ in range(int(field(plan, "inspectorsPerTarget", "inspectors_per_target"))):
            p = eligible.pop(below(len(eligible)))
            inspectors.remove(p)
            chosen.append(p["id"])
        out.append((t["id"], chosen))
    return out


if __name__ == "__main__":
    doc = json.load(open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin)
    draw = doc.get("draw", doc)  # GetInspectionPlan's answer, or {"plan", "nonce", "beacon"}
    for target, chosen in derive(doc["plan"], draw["nonce"], draw["beacon"]):
        print(f"{target}: {' '.join(chosen)}")
