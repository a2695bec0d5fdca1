# ruff: noqa: E501 — report templates read better unwrapped
"""`make bench`: every benchmark in order, then bench/results/<YYYY-MM-DD>.md and the README's
performance table. Benchmarks print figures; they never fail (a benchmark that breaks is reported
as such and the others still run).

    make bench                                  # the full set (~30–40 min on 2 cores)
    make bench BENCH_ARGS=--quick               # everything small, to check it works (~5 min)
    .venv/bin/python bench/run_all.py --only ingest pipeline --profile

Own database `of_bench` (dropped and recreated by each benchmark) and Redis db 12; nothing else
is touched. Needs wrk (`apt-get install -y wrk`) for the ingest figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import RESULTS, ROOT, say

ALL = ["ingest", "pipeline", "flow_cost", "cluster", "live_push", "soak", "stats"]
README = ROOT / "README.md"
START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"


def run_stats(args: argparse.Namespace) -> dict[str, Any]:
    """The dashboard's stats selector over 100k orders (bench/stats_100k.py, its own script)."""
    n = 10000 if args.quick else 100000
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stats_100k.py"), "--orders", str(n), "--runs", "5"],
        cwd=ROOT, env=common.base_env(), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    text = out.stdout.strip()
    print(text)
    m = re.search(r"median ([\d.]+) ms", text)
    return {"orders": n, "median_ms": float(m.group(1)) if m else None, "output": text[-3000:],
            "returncode": out.returncode}  # fmt: skip


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def pace(results: dict[str, Any]) -> dict[str, float] | None:
    """Do the workers keep pace with the front door? Pipeline orders/s to paid (the best worker
    process count) ÷ ingest orders/s (the best concurrency), both from this run. Goal ≥ 0.5."""
    ing, pl = results.get("ingest"), results.get("pipeline")
    if not (isinstance(ing, dict) and "concurrency" in ing and isinstance(pl, dict) and "by_procs" in pl):
        return None
    door = max(r["ingest"]["rps"] for r in ing["concurrency"].values())
    procs, paid = max(
        ((procs, r["pipeline"].get("rate_paid", 0.0)) for procs, r in pl["by_procs"].items()),
        key=lambda x: x[1],
    )
    return {"ingest_rps": door, "paid_rps": paid, "procs": procs, "pace": paid / door if door else 0.0}


def flow_cost_line(results: dict[str, Any]) -> str | None:
    fc = results.get("flow_cost")
    if not (isinstance(fc, dict) and "by_lines" in fc):
        return None
    return ", ".join(
        f"{r['lines']} line(s): {r['messages']} message(s), {r['statements']} statements"
        for r in fc["by_lines"]
    )


def statement_cpu_lines(results: dict[str, Any]) -> list[str]:
    """bench/flow_cost.py --cpu: what each statement of the accepted-to-paid task costs, this
    process's CPU (building it and what runs before it) and PostgreSQL's (running it)."""
    fc = results.get("flow_cost")
    cpu = fc.get("cpu") if isinstance(fc, dict) else None
    if not cpu:
        return []
    pg = cpu["postgres_ms_per_order"]
    out = ["", f"CPU of the accepted-to-paid task, in process (bench/flow_cost.py --cpu, {cpu['orders']} orders of "
           f"{cpu['lines']} lines; mean per order): the worker's {cpu['python_ms_per_order']} ms, PostgreSQL's "
           f"{pg if pg is not None else '-'} ms. Per statement (the worker's: since the statement before; "
           "in the driver: inside psycopg's call):", "",
           "| # | worker ms | in the driver ms | PostgreSQL ms | statement |", "|---|---|---|---|---|"]  # fmt: skip
    for i, r in enumerate(cpu["statements"]):
        pgms = f"{r['postgres_ms']:.2f}" if r["postgres_ms"] is not None else "-"
        out.append(f"| {i} | {r['python_ms']:.2f} | {r['driver_ms']:.2f} | {pgms} | `{r['sql'][:60]}…` |")
    out += ["", f"Statement by statement, the worker per order: {cpu['python_outside_driver_ms']} ms outside the "
            f"driver (the ORM building statements and reading rows, the code between, the gateway call), "
            f"{cpu['python_in_driver_ms']} ms inside it."]  # fmt: skip
    if cpu.get("layers_pct"):
        out += ["", "The worker's CPU by layer (py-spy, the whole-task half): "
                + "; ".join(f"{label} {pct} %" for label, pct in cpu["layers_pct"].items()) + "."]  # fmt: skip
    return out


def render(results: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace, elapsed: float) -> str:
    today = dt.date.today().isoformat()
    lines = [f"# Benchmarks — {today}{' (quick mode)' if args.quick else ''}", ""]
    lines += [
        f"Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['ram_gib']} GiB RAM, "
        f"Python {machine['python']}, Linux {machine['kernel']}.  ",
        f"Load average at start: {machine['load']} (`uptime`: {machine['uptime']}).  ",
        f"Load average at end: {results.get('_load_end', '?')}. Total time {elapsed / 60:.1f} min.",
        "",
        *(
            [
                f"Carried over from the previous run of this day (`--keep`, not re-measured): "
                f"{', '.join(results['_carried_over'])}.",
                "",
            ]
            if results.get("_carried_over")
            else []
        ),
        "Stack (bench/stack.py): PostgreSQL `of_bench` (fresh per benchmark), Redis db 12, DEBUG off, "
        "LOG_LEVEL=WARNING, `gunicorn orderflow.asgi:application -k uvicorn.workers.UvicornWorker -w "
        f"{results.get('ingest', {}).get('web_workers', 2)}`, daphne for websockets, Celery prefork workers on "
        "every queue, beat, the outbox dispatcher publishing every event, mock gateway at 0 ms, autopilot with 0 s steps, carrier simulator off, throttle "
        "off (API_THROTTLE_RATE=100000000/min), web processes with DB_CONN_MAX_AGE=0 (see README). "
        "Load generators in their own processes on 127.0.0.1 (wrk 4 for ingest).",
        "",
    ]
    ing = results.get("ingest")
    if isinstance(ing, dict) and "concurrency" in ing:
        lines += ["## Ingest: `POST /api/v1/orders` vs the empty endpoint `GET /api/v1/store`", ""]
        lines += [f"{ing['seconds']:g} s per run, median of {ing['runs']} run(s), after a warm-up; Celery "
                  "workers stopped during the runs (messages queue in Redis).", ""]  # fmt: skip
        lines += ["| concurrency | orders/s | p50 ms | p95 ms | p99 ms | errors | empty req/s | empty p50 / p95 / p99 ms "
                  "| empty errors | **ratio** |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for c, r in ing["concurrency"].items():
            i, e = r["ingest"], r["empty"]
            lines.append(
                f"| {c} | {i['rps']:.1f} | {i['p50_ms']:.1f} | {i['p95_ms']:.1f} | {i['p99_ms']:.1f} | {i['errors']} "
                f"| {e['rps']:.1f} | {e['p50_ms']:.1f} / {e['p95_ms']:.1f} / {e['p99_ms']:.1f} | {e['errors']} "
                f"| **{r['ratio']:.2f}** |"
            )
        lines.append("")
        if "web_workers_compare" in ing:
            w = ing["web_workers_compare"]
            lines.append(
                "gunicorn workers (ingest / empty at c=32): "
                + ", ".join(
                    f"-w {k}: {v['ingest_rps']} / {v['empty_rps']} req/s" for k, v in w.items() if k != "best"
                )
                + f"; kept -w {w['best']}."
            )
            lines.append("")
        q = ing.get("queries", {})
        if q:
            lines += [f"SQL statements: {q.get('order_1_lines')} per 1-line order, {q.get('order_3_lines')} per "
                      f"3-line order, {q.get('empty')} per empty request.", "", "Statements of a 3-line order:", ""]  # fmt: skip
            lines += [f"{n + 1}. `{s}`" for n, s in enumerate(q.get("order_statements", []))]
            lines.append("")
        prof = ing.get("profile")
        if prof:
            lines += [
                f"py-spy on the web workers under ingest load ({prof['samples']} samples; inclusive share):",
                "",
            ]
            lines += [f"- {pct}% {label.strip()}" for label, pct in prof["shares_pct"].items()]
            lines.append("")
    elif ing:
        lines += ["## Ingest", "", f"failed: {ing}", ""]
    pl = results.get("pipeline")
    if isinstance(pl, dict) and "by_procs" in pl:
        lines += ["## Pipeline: N orders end to end vs chains of no-op tasks", ""]
        lines += ["| worker -c | orders | all paid | all ready_to_ship | all shipped | orders/s (shipped) | tasks/order | "
                  "no-op chains/s | no-op tasks/s | **ratio** |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for procs, r in pl["by_procs"].items():
            p, n = r["pipeline"], r["noop"]
            lines.append(
                f"| {procs} | {p['orders']} | {fmt(p['to_paid_s'])} s ({p['rate_paid']:.1f}/s) | "
                f"{fmt(p['to_ready_to_ship_s'])} s ({p['rate_rts']:.1f}/s) | "
                f"{fmt(p['to_shipped_s'])} s | {p['rate_shipped']:.1f} | {p['tasks_per_order']} | {n['rate']:.1f} | "
                f"{n['tasks_per_s']:.0f} | **{r['ratio']:.2f}** |"
            )
        pc = pace(results)
        if pc:
            lines += ["", f"**Pace** (pipeline orders/s to paid, worker -c {pc['procs']} ÷ ingest orders/s, this run): "
                      f"{pc['paid_rps']:.1f} ÷ {pc['ingest_rps']:.1f} = **{pc['pace']:.2f}** (goal ≥ 0.5)."]  # fmt: skip
        fcl = flow_cost_line(results)
        if fcl:
            lines += ["", f"Accepted to paid, per order (bench/flow_cost.py): {fcl}."]
        lines += statement_cpu_lines(results)
        first = next(iter(pl["by_procs"].values()))["pipeline"]
        lines += ["", f"Tasks per order by name: {first['tasks_by_name_per_order']}.  ",
                  f"Registry: {first['registry']['events_per_order']} events per order, "
                  f"{first['registry']['handler_messages_per_order']} handler messages per order:", ""]  # fmt: skip
        for t, v in first["registry"]["topics"].items():
            skipped = v.get("filtered_out") or []
            note = f" (filtered out at publish: {', '.join(skipped)})" if skipped else ""
            lines.append(f"- `{t}` ×{v['events_per_order']}: {', '.join(v['handlers']) or '—'}{note}")
        lines.append("")
        prof = next(
            (r["pipeline"].get("profile") for r in pl["by_procs"].values() if r["pipeline"].get("profile")),
            None,
        )
        if prof:
            lines += [
                f"py-spy on the worker (-c 1) during the pipeline ({prof['samples']} samples; inclusive share):",
                "",
            ]
            lines += [f"- {pct}% {label.strip()}" for label, pct in prof["shares_pct"].items()]
            lines.append("")
    elif pl:
        lines += ["## Pipeline", "", f"failed: {pl}", ""]
    cl = results.get("cluster")
    if isinstance(cl, dict) and "by_hosts" in cl:
        lines += ["## Cluster: pipeline to paid with 1, 2, 4 worker hosts (bench/cluster.py)", "",
                  f"{cl['orders']} orders per run; each worker host a network namespace running deploy/Procfile's "
                  f"`worker-payments` (-c {cl['concurrency_per_host']}); web, control (dispatcher, beat) and the other "
                  "queues' workers on hosts of their own. The hosts share this machine's cores: the figure is the "
                  "scaling shape and the cost per host, not a speed-up.", "",
                  "| worker hosts | orders/s to paid | vs 1 host | seconds | orders accepted in | RSS per worker host "
                  "| load average at start |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for n, r in cl["by_hosts"].items():
            lines.append(f"| {n} | {r['rate_paid']:.1f} | {fmt(r['vs_one_host'], 2)} | {r['seconds']} | {r['accept_s']} s "
                         f"| {r['rss_mb_per_worker_host']} MB | {r['load_at_start']} |")  # fmt: skip
        lines.append("")
    elif cl:
        lines += ["## Cluster", "", f"failed: {cl}", ""]
    for key, title in (("live_push", "Live push (settings as committed)"),
                       ("live_push_pubsub", "Live push with the pub/sub channel layer (proposed)")):  # fmt: skip
        lp = results.get(key)
        if isinstance(lp, dict) and "p95_ms" in lp:
            lines += [f"## {title}", ""]
            lines.append(
                f"{lp['clients']} websocket clients ({lp['connected']} connected), {lp['orders']} orders at "
                f"{lp['rate']:g}/s: {lp['events_committed']} events committed ({lp['event_rate']}/s), "
                f"{lp['messages_received']} of {lp['messages_expected']} pushes received. Commit → receipt "
                f"p50 {lp['p50_ms']} ms, **p95 {lp['p95_ms']} ms**, p99 {lp['p99_ms']} ms, max {lp['max_ms']} ms; "
                f"**missed {lp['missed']}**."
            )
            lines.append("")
        elif lp:
            lines += [f"## {title}", "", f"failed: {lp}", ""]
    sk = results.get("soak")
    if isinstance(sk, dict) and "rss_start" in sk:
        lines += ["## Soak", ""]
        lines.append(
            f"{sk['accepted']} orders (submitted at {sk['submit']['rate']}/s) settled in {sk['elapsed_s']} s "
            f"({sk['rate']} orders/s end to end, 2 worker processes); statuses {sk['statuses']}; "
            f"**not settled: {sk['unsettled']}**."
        )
        lines += ["", "| processes | RSS start MB | RSS end MB | growth MB | peak MB | largest process start → end MB |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for g in ("web", "worker", "beat"):
            a, b = sk["rss_start"][g], sk["rss_end"][g]
            lines.append(
                f"| {g} ({b['processes']}) | {a['total_mb']} | {b['total_mb']} | {sk['rss_growth_mb'][g]:+} | "
                f"{sk['rss_peak_total_mb'][g]} | {a['max_process_mb']} → {b['max_process_mb']} |"
            )
        lines.append("")
    elif sk:
        lines += ["## Soak", "", f"failed: {sk}", ""]
    st = results.get("stats")
    if isinstance(st, dict) and "output" in st:
        lines += [
            "## Dashboard stats over many orders (bench/stats_100k.py)",
            "",
            "```",
            st["output"],
            "```",
            "",
        ]
    lines += ["## Commands", "", "```", "make bench                      # full", "make bench BENCH_ARGS=--quick",
              ".venv/bin/python bench/ingest.py --profile   # one benchmark", "```", ""]  # fmt: skip
    return "\n".join(lines)


def readme_table(results: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace) -> str:
    today = dt.date.today().isoformat()
    rows = ["| figure | value | goal |", "|---|---|---|"]
    ing = results.get("ingest")
    if isinstance(ing, dict) and "concurrency" in ing:
        for c, r in ing["concurrency"].items():
            i = r["ingest"]
            rows.append(
                f"| ingest, {c} connections | {i['rps']:.0f} orders/s (p50 {i['p50_ms']:.0f} / p95 {i['p95_ms']:.0f} / "
                f"p99 {i['p99_ms']:.0f} ms, {i['errors']} errors); empty endpoint {r['empty']['rps']:.0f}/s; "
                f"**ratio {r['ratio']:.2f}** | ratio ≥ 0.5 |"
            )
        q = ing.get("queries") or {}
        if q:
            rows.append(
                f"| SQL statements per order | {q.get('order_1_lines')} (1 line), {q.get('order_3_lines')} (3 lines) | |"
            )
    pl = results.get("pipeline")
    if isinstance(pl, dict) and "by_procs" in pl:
        for procs, r in pl["by_procs"].items():
            p = r["pipeline"]
            rows.append(
                f"| pipeline, {procs} worker process{'es' if int(procs) > 1 else ''} | {p['rate_shipped']:.1f} orders/s "
                f"({p['orders']} orders, {p['tasks_per_order']} tasks each); no-op chains {r['noop']['rate']:.1f}/s; "
                f"**ratio {r['ratio']:.2f}** | ratio ≥ 0.5 |"
            )
    cl = results.get("cluster")
    if isinstance(cl, dict) and "by_hosts" in cl:
        rows.append(
            "| pipeline to paid, 1 / 2 / 4 worker hosts (namespaces sharing 2 cores) | "
            + " / ".join(f"{r['rate_paid']:.1f}" for r in cl["by_hosts"].values())
            + f" orders/s ({cl['orders']} orders each) | the shape; no speed-up on shared cores |"
        )
    pc = pace(results)
    if pc:
        rows.append(f"| pace: orders/s paid (worker -c {pc['procs']}) ÷ orders/s accepted | {pc['paid_rps']:.1f} ÷ "
                    f"{pc['ingest_rps']:.1f} = **{pc['pace']:.2f}** | ≥ 0.5 |")  # fmt: skip
    fcl = flow_cost_line(results)
    if fcl:
        rows.append(f"| accepted to paid, per order | {fcl} | ≤ 3 messages, ≤ 40 statements |")
    for key, label in (("live_push", "live push"), ("live_push_pubsub", "live push, pub/sub layer")):
        lp = results.get(key)
        if isinstance(lp, dict) and "p95_ms" in lp:
            rows.append(
                f"| {label}, {lp['clients']} sockets, {lp['rate']:g} orders/s | p95 {lp['p95_ms']:.0f} ms, "
                f"missed {lp['missed']} | p95 ≤ 1 s, 0 missed |"
            )
    sk = results.get("soak")
    if isinstance(sk, dict) and "rss_start" in sk:
        g = sk["rss_growth_mb"]
        rows.append(
            f"| soak, {sk['accepted']} orders | {sk['rate']} orders/s; RSS growth web {g['web']:+} MB, worker "
            f"{g['worker']:+} MB; not settled {sk['unsettled']} | a few MB; 0 |"
        )
    head = (
        f"Latest run: {today}{' (quick mode: small N, short runs)' if args.quick else ''}, on "
        f"{machine['nproc']} cores ({machine['cpu']}), {machine['ram_gib']} GiB RAM, load average at start "
        f"{machine['load']}. Details: `bench/results/{today}.md`."
    )
    return "\n".join([START, head, "", *rows, END])


def update_readme(table: str) -> None:
    text = README.read_text()
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _m: table, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Performance\n\n" + table + "\n"
    README.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small N and short runs: checks that it all works"
    )
    parser.add_argument("--only", nargs="*", choices=ALL, default=None)
    parser.add_argument("--skip", nargs="*", choices=ALL, default=[])
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the web workers during ingest and the worker during the pipeline",
    )
    parser.add_argument("--compare-web-workers", action="store_true", help="measure gunicorn -w 2 vs 3 once")
    parser.add_argument("--orders", type=int, default=None, help="pipeline N (default 2000)")
    parser.add_argument("--soak-orders", type=int, default=None, help="soak N (default 20000)")
    parser.add_argument("--live-rate", type=float, default=2.0, help="orders/s during the live push run")
    parser.add_argument(
        "--no-pubsub", action="store_true", help="skip the live push run on the pub/sub layer"
    )
    parser.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="start from bench/results/last.json: the benchmarks not run now keep their last figures "
        "(the report says which were carried over)",
    )
    args = parser.parse_args()

    todo = [b for b in (args.only or ALL) if b not in args.skip]
    machine = common.machine()
    say(
        f"machine: {machine['nproc']} cores, {machine['ram_gib']} GiB, {machine['cpu']}; load {machine['load']}"
    )
    common.django_setup()
    results: dict[str, Any] = {}
    if args.keep and (RESULTS / "last.json").exists():
        previous = json.loads((RESULTS / "last.json").read_text()).get("results", {})
        carried = {k: v for k, v in previous.items() if k in ALL + ["live_push_pubsub"] and k not in todo}
        if "live_push" in todo:
            carried.pop("live_push_pubsub", None)
        results.update(carried)
        results["_carried_over"] = sorted(carried)
        say(f"carried over from the last run: {', '.join(sorted(carried)) or 'nothing'}")
    started = time.time()
    from bench import cluster, flow_cost, ingest, live_push, pipeline, soak

    for name in todo:
        say(f"=== {name}")
        try:
            if name == "ingest":
                ns = argparse.Namespace(quick=args.quick, seconds=None, runs=None, concurrency=None, web_workers=None,
                                        compare_web_workers=args.compare_web_workers, profile=args.profile)  # fmt: skip
                results[name] = ingest.run(ns)
                best = results[name].get("web_workers_compare", {}).get("best")
                if best:  # every later stack runs the gunicorn worker count that did best
                    __import__("os").environ["BENCH_WEB_WORKERS"] = str(best)
            elif name == "pipeline":
                results[name] = pipeline.run(
                    argparse.Namespace(
                        quick=args.quick, orders=args.orders, procs=pipeline.PROCS, profile=args.profile
                    )
                )
            elif name == "cluster":
                results[name] = cluster.run(
                    argparse.Namespace(quick=args.quick, orders=None, hosts=[1, 2, 4])
                )
            elif name == "flow_cost":
                results[name] = flow_cost.run(argparse.Namespace(lines=[1, 5, 20], cpu=200))
            elif name == "live_push":
                ns = argparse.Namespace(quick=args.quick, clients=200, rate=args.live_rate, seconds=None)
                results[name] = live_push.run(ns)
                if not args.no_pubsub:
                    say("=== live_push with the pub/sub channel layer (bench/settings_pubsub.py)")
                    results["live_push_pubsub"] = live_push.run(ns, settings="bench.settings_pubsub")
            elif name == "soak":
                results[name] = soak.run(argparse.Namespace(quick=args.quick, orders=args.soak_orders))
            elif name == "stats":
                results[name] = run_stats(args)
        except Exception as exc:  # a benchmark that breaks is a finding, not a failure
            traceback.print_exc()
            results[name] = f"{type(exc).__name__}: {exc}"
        common.save_json("last", {"machine": machine, "results": results})
    elapsed = time.time() - started
    results["_load_end"] = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{dt.date.today().isoformat()}.md"
    path.write_text(render(results, machine, args, elapsed))
    common.save_json("last", {"machine": machine, "results": results})
    say(f"results: {path.relative_to(ROOT)}")
    if not args.no_readme:
        update_readme(readme_table(results, machine, args))
        say("README performance table updated")
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, default=str) if any(
        not isinstance(v, dict) for v in results.values()) else "", end="")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
