#!/usr/bin/env python3
"""Live benchmark (issue 14): a release server over an already generated company, while a
simulated CRM sync writes at a steady rate through the API (new leads, touchpoints, moves,
deals, closes and revenue inside the quarter) and a dashboard client asks every report in turn.
Prints start-up time to /ready, p50/p95/max per report (each report's first ask, which makes
its tally, apart from the later ones), the writes/s achieved and the server's peak RSS.
Standard library only. Run long enough for the dashboard to go round more than once (a round
is ~1 min at `large`).

Usage:
  FUNNELGRAPH_DATABASE_URL=/tmp/large.db scripts/live-bench.py [--duration 60] [--rate 250]
(generate first: funnelgraph generate --scale large)
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request

PERIOD = '{ from: "2026-04-01", to: "2026-07-01" }'
MODELS = ["FIRST_TOUCH", "LAST_TOUCH", "LINEAR", "TIME_DECAY", "POSITION_BASED", "W_SHAPED",
          "FULL_PATH", "MARKOV"]
STAGES = ["INQUIRY", "MQL", "SAL", "SQL", "OPPORTUNITY", "WON"]


def account_reports():
    """The account-mapped reports (issue 16), and the same without the mapping as a control."""
    out = []
    for stage in ["OPPORTUNITY", "WON"]:
        for model in MODELS[:-1]:
            out.append(("attribution ACCOUNT (heuristic)", f"{{ attribution(model: {model}, stage: {stage}, period: {PERIOD}, contacts: ACCOUNT) "
                                                          f"{{ totalConversions totalRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }} }} }}"))
        out.append(("attribution W_SHAPED by ACCOUNT", f"{{ attribution(model: W_SHAPED, stage: {stage}, period: {PERIOD}, groupBy: ACCOUNT) "
                                                        f"{{ totalConversions rows {{ key revenue {{ amount }} }} }} }}"))
        out.append(("attribution LINEAR by SEGMENT, ACCOUNT", f"{{ attribution(model: LINEAR, stage: {stage}, period: {PERIOD}, contacts: ACCOUNT, groupBy: SEGMENT, segment: \"segment\") "
                                                              f"{{ totalConversions rows {{ key revenue {{ amount }} }} }} }}"))
        out.append(("attribution W_SHAPED (control)", f"{{ attribution(model: W_SHAPED, stage: {stage}, period: {PERIOD}) "
                                                      f"{{ totalConversions rows {{ key revenue {{ amount }} }} }} }}"))
        out.append(("campaignRoi W_SHAPED ACCOUNT", f"{{ campaignRoi(model: W_SHAPED, period: {PERIOD}, contacts: ACCOUNT) {{ campaign {{ externalId }} attributedRevenue {{ amount }} }} }}"))
        out.append(("accountFunnel", f"{{ accountFunnel(period: {PERIOD}) {{ mqa opportunity won mqaToOpportunity {{ medianDays p90Days }} }} }}"))
    return out


def model_reports():
    """The models of issue 18: J_SHAPED, INVERSE_J, SHAPLEY, MARKOV of order 2 and 3, a custom
    model, and a five-model comparison (each is a CAMPAIGN report per model), with W_SHAPED as control."""
    out = []
    for stage in ["OPPORTUNITY", "WON"]:
        for model in ["J_SHAPED", "INVERSE_J", "W_SHAPED"]:
            name = "attribution W_SHAPED (control)" if model == "W_SHAPED" else "attribution J_SHAPED / INVERSE_J"
            out.append((name, f"{{ attribution(model: {model}, stage: {stage}, period: {PERIOD}) "
                              f"{{ totalConversions totalRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }} }} }}"))
        out.append(("attribution SHAPLEY", f"{{ attribution(model: SHAPLEY, stage: {stage}, period: {PERIOD}) "
                                           f"{{ totalConversions totalRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }} shapleyValues {{ channel value }} }} }}"))
        out.append(("attribution CUSTOM", f"{{ attribution(model: CUSTOM, customModel: \"bench\", stage: {stage}, period: {PERIOD}) "
                                          f"{{ totalConversions totalRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }} }} }}"))
        # Order 2 with a 30-day lookback: with the default 365 days its chain's largest block
        # holds half its 1.2M states and a solve takes minutes (BENCHMARKS.md).
        for order, lookback in [(2, 30), (3, 365)]:
            out.append((f"attribution MARKOV order {order}", f"{{ attribution(model: MARKOV, markovOrder: {order}, lookbackDays: {lookback}, stage: {stage}, period: {PERIOD}) "
                                                               f"{{ totalConversions totalRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }} removalEffects {{ removalEffect }} }} }}"))
        out.append(("attributionComparison (5 models)", f"{{ attributionComparison(period: {PERIOD}, stage: {stage}, models: [LINEAR, W_SHAPED, J_SHAPED, INVERSE_J], customModels: [\"bench\"]) "
                                                         f"{{ rows {{ key models {{ model conversions revenue {{ amount }} }} }} }} }}"))
    return out


def reports():
    out = []
    for stage in STAGES:
        for model in MODELS:
            extra = " removalEffects { campaign { externalId } removalEffect share }" if model == "MARKOV" else ""
            name = "attribution MARKOV" if model == "MARKOV" else "attribution (heuristic)"
            out.append((name, f"{{ attribution(model: {model}, stage: {stage}, period: {PERIOD}) "
                              f"{{ totalConversions totalRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }}{extra} }} }}"))
        out.append(("funnel", f"{{ funnel(period: {PERIOD}) {{ cohortSize stages {{ stage entered }} }} }}"))
        out.append(("leakage", f"{{ leakage(period: {PERIOD}) {{ mqls leaked }} }}"))
        out.append(("campaignRoi W_SHAPED", f"{{ campaignRoi(model: W_SHAPED, period: {PERIOD}) {{ campaign {{ externalId }} cost {{ amount }} attributedRevenue {{ amount }} }} }}"))
    out.append(("campaignRoi MARKOV", f"{{ campaignRoi(model: MARKOV, period: {PERIOD}) {{ campaign {{ externalId }} cost {{ amount }} attributedRevenue {{ amount }} }} }}"))
    return out


def post(base, token, query, variables=None, timeout=120):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{base}/graphql", data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def export_reports():
    """The credit fact table (issue 20): whole downloads of the quarter's table in Parquet and
    CSV, under the writers' load. A row's name says what; the path is fetched with GET."""
    q = "from=2026-04-01&to=2026-07-01"
    return [
        ("credits.parquet W_SHAPED WON", f"/export/credits.parquet?model=W_SHAPED&stage=WON&{q}"),
        ("credits.parquet LINEAR OPPORTUNITY", f"/export/credits.parquet?model=LINEAR&stage=OPPORTUNITY&{q}"),
        ("credits.parquet W_SHAPED MQL", f"/export/credits.parquet?model=W_SHAPED&stage=MQL&{q}"),
        ("credits.parquet FULL_PATH WON ACCOUNT", f"/export/credits.parquet?model=FULL_PATH&stage=WON&contacts=ACCOUNT&{q}"),
        ("credits.parquet MARKOV WON", f"/export/credits.parquet?model=MARKOV&stage=WON&{q}"),
        ("credits.csv W_SHAPED MQL", f"/export/credits.csv?model=W_SHAPED&stage=MQL&{q}"),
        ("credits.parquet LINEAR INQUIRY 2 years", "/export/credits.parquet?model=LINEAR&stage=INQUIRY&from=2025-01-01&to=2027-01-01"),
    ]


def download(base, token, path, timeout=600):
    """GETs a whole export; returns its size in bytes."""
    req = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {token}"})
    size = 0
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                return size
            size += len(chunk)


def pct(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = p * (len(sorted_values) - 1)
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=240)
    ap.add_argument("--rate", type=float, default=250, help="records written per second")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--bin", default="target/release/funnelgraph")
    ap.add_argument("--accounts", action="store_true",
                    help="ask the account-mapped reports (issue 16); the writers' leads join accounts by domain")
    ap.add_argument("--account-writes", action="store_true",
                    help="only the writers' leads join accounts (the dashboard asks the usual reports)")
    ap.add_argument("--currencies", action="store_true",
                    help="deals and revenue in EUR/GBP/JPY, and every 40th writer step a finance "
                         "correction of a month's rate in the quarter (re-values that month's amounts)")
    ap.add_argument("--models", action="store_true",
                    help="ask the issue-18 model reports (J_SHAPED, INVERSE_J, a custom model, a comparison)")
    ap.add_argument("--exports", action="store_true",
                    help="download the credit fact tables (issue 20) in turn instead of asking reports")
    ap.add_argument("--only", help="ask only the reports whose name contains this")
    ap.add_argument("--base", help="use a server already running at this URL (ADMIN token from "
                    "FUNNELGRAPH_JWT_SECRET) instead of starting one")
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("FUNNELGRAPH_JWT_SECRET", "live-bench-secret-live-bench-secret-live")
    env.setdefault("RUST_LOG", "warn")
    if args.base:
        token = subprocess.check_output([args.bin, "token", "--sub", "live-bench", "--role", "ADMIN",
                                         "--ttl", "7200"], env=env, text=True).strip()
        pid = int(subprocess.check_output(["pgrep", "-f", "funnelgraph serve"], text=True).split()[0])
        run(args, args.base, token, pid, 0.0)
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env["FUNNELGRAPH_BIND"] = f"127.0.0.1:{port}"
    base = f"http://127.0.0.1:{port}"
    started = time.time()
    server = subprocess.Popen([args.bin, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if server.poll() is not None:
                sys.exit("the server exited before it was ready")
            time.sleep(0.05)
        ready_s = time.time() - started
        token = subprocess.check_output([args.bin, "token", "--sub", "live-bench", "--role", "ADMIN",
                                         "--ttl", "7200"], env=env, text=True).strip()
        run(args, base, token, server.pid, ready_s)
    finally:
        server.terminate()
        server.wait()


def run(args, base, token, pid, ready_s):
    stop = threading.Event()
    lock = threading.Lock()
    written = [0]
    failed = [0]
    peak_rss = [0]
    run_id = f"{int(time.time())}"
    if args.models:
        v = post(base, token, "mutation { upsertAttributionModel(key: \"bench\", name: \"Bench stages\", first: \"0.25\", "
                              "last: \"0.15\", mql: \"0.2\", opportunity: \"0.25\", close: \"0.1\", middle: \"0.05\") { key } }")
        if v.get("errors"):
            sys.exit(f"could not define the custom model: {v}")

    def rss_sampler():
        while not stop.is_set():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS"):
                            peak_rss[0] = max(peak_rss[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.2)

    def writer(w):
        rng = random.Random(w)
        interval = args.writers / args.rate
        next_at = time.time()
        n = 0
        while not stop.is_set():
            n += 1
            lead = f"live-{run_id}-{w}-{n}"
            day = rng.randrange(0, 85)
            at = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.mktime((2026, 4, 1, 0, 0, 0, 0, 0, 0)) + day * 86400 - time.timezone))
            d = at[:10]
            lead_input = {"externalId": lead, "createdAt": at, "title": "CTO"}
            if (args.accounts or args.account_writes) and n % 3 != 2:
                # Two leads in three work at one of generate's accounts (matched by domain).
                lead_input["email"] = f"{lead}@acct{rng.randrange(1, 60000)}.example.com"
            ops = [
                ("mutation($i: LeadInput!) { upsertLead(input: $i) { id } }", lead_input),
            ]
            for k in range(2):
                ops.append(("mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
                            {"externalId": f"{lead}-t{k}", "leadExternalId": lead,
                             "campaignExternalId": f"c{rng.randrange(0, 200):04}", "kind": "web",
                             "occurredAt": at}))
            ops.append(("mutation($i: TransitionInput!) { transitionLead(input: $i) { stage } }",
                        {"leadExternalId": lead, "to": "MQL", "occurredAt": at.replace("T00", "T01")}))
            money = {"amount": "1200.00", "currency": "USD"}
            if args.currencies:
                money = [{"amount": "1100.00", "currency": "EUR"}, {"amount": "950.00", "currency": "GBP"},
                         {"amount": "180000", "currency": "JPY"}, money][n % 4]
                if n % 40 == 0:
                    # A finance correction: one month's EUR rate, nudged up or down.
                    month = 4 + rng.randrange(0, 3)
                    ops.append(("mutation($i: Decimal!) { upsertExchangeRate(currency: \"EUR\", rate: $i, effectiveFrom: \"2026-0%d-01\") { revalued } }" % month,
                                "1.08%d" % rng.randrange(10, 99)))
            if n % 3 == 0:
                ops.append(("mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }",
                            {"externalId": f"{lead}-o", "name": "Live deal", "primaryContactExternalId": lead,
                             "amount": money, "createdAt": at.replace("T00", "T02")}))
                ops.append(("mutation($i: CloseOpportunityInput!) { closeOpportunity(input: $i) { status } }",
                            {"externalId": f"{lead}-o", "won": True, "closedAt": at.replace("T00", "T03")}))
                ops.append(("mutation($i: RevenueInput!) { recordRevenue(input: $i) { id } }",
                            {"externalId": f"{lead}-r", "opportunityExternalId": f"{lead}-o",
                             "amount": money, "bookedOn": d}))
            for query, input_ in ops:
                if stop.is_set():
                    return
                next_at += interval
                pause = next_at - time.time()
                if pause > 0:
                    time.sleep(pause)
                try:
                    v = post(base, token, query, {"i": input_})
                    ok = not v.get("errors")
                except Exception:
                    ok = False
                with lock:
                    if ok:
                        written[0] += 1
                    else:
                        failed[0] += 1

    latencies = {}
    sizes = {}

    def dashboard():
        items = (account_reports() if args.accounts else model_reports() if args.models
                 else export_reports() if args.exports else reports())
        if args.only:
            items = [r for r in items if args.only in r[0]]
        i = 0
        while not stop.is_set():
            name, query = items[i % len(items)]
            i += 1
            t = time.time()
            try:
                if query.startswith("/"):
                    sizes[name] = download(base, token, query)
                    ok = True
                else:
                    v = post(base, token, query)
                    ok = not v.get("errors")
            except Exception:
                ok = False
            ms = (time.time() - t) * 1000
            # A report's first ask makes its tally; later asks bring it forward over the
            # writes since (a dashboard's steady state): reported apart.
            if ok and i <= len(items):
                latencies.setdefault(name + " (first ask)", []).append(ms)
            elif ok:
                latencies.setdefault(name, []).append(ms)
            else:
                latencies.setdefault(name + " (errors)", []).append(ms)

    def rss_now():
        try:
            with open(f"/proc/{pid}/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        except (OSError, StopIteration):
            return 0

    ready_rss = rss_now()
    threads = [threading.Thread(target=rss_sampler, daemon=True)]
    threads += [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(args.writers)]
    threads.append(threading.Thread(target=dashboard, daemon=True))
    began = time.time()
    for t in threads:
        t.start()
    time.sleep(args.duration)
    stop.set()
    elapsed = time.time() - began
    for t in threads[1:]:
        t.join(timeout=300)
    print(f"start-up to /ready: {ready_s:.1f} s; RSS with the index loaded: {ready_rss / 1024:.0f} MiB; "
          f"after the run: {rss_now() / 1024:.0f} MiB")
    print(f"writes: {written[0]} in {elapsed:.0f} s = {written[0] / elapsed:.0f}/s acknowledged "
          f"({failed[0]} refused or failed); target rate {args.rate:.0f}/s")
    print(f"server peak RSS: {peak_rss[0] / 1024:.0f} MiB")
    print(f"{'report':<28} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for name in sorted(latencies):
        v = sorted(latencies[name])
        print(f"{name:<28} {len(v):>5} {pct(v, 0.5):>9.1f} {pct(v, 0.95):>9.1f} {v[-1]:>9.1f}")
    for name in sorted(sizes):
        print(f"{name}: {sizes[name] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
