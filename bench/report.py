#!/usr/bin/env python3
"""Turns the JSON written by `bench/run --json FILE` into the Markdown tables of
bench/RESULTS.md (Meridian against each peer, with the ratio, and each issue-4
target with met / not met).

usage: bench/report.py FILE.json > tables.md
"""
import json
import sys


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = round(v, 2) if abs(v) < 100 else round(v)
    return "%s%s" % ("{:,}".format(v) if isinstance(v, int) else v, unit)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return "%.2fx" % (a / b)


def main():
    d = json.load(open(sys.argv[1]))
    run = d.get("_run", {})
    m = run.get("machine", {})
    det = d.get("_detail", {})
    out = []
    w = out.append
    w("Run: `%s` on %s (%s); %s cores (%s), %s MB memory, Linux %s; %.0f s in all."
      % (run.get("command"), run.get("date"), "quick" if run.get("quick") else "full", m.get("cores"),
         m.get("cpu"), m.get("memory_mb"), m.get("kernel"), run.get("seconds", 0)))
    w("")
    w("### Regional API (1 KB items, 64 connections, SigV4 on every request)")
    w("")
    w("| system | PutItem ops/s | Put p50 / p99 ms | GetItem ops/s | Get p50 / p99 ms | Meridian's Put ratio | Meridian's Get ratio |")
    w("|---|---|---|---|---|---|---|")
    mer = det.get("meridian", {})

    def row(name, key, put_ops, get_ops, durable=""):
        e = det.get(key, {})
        p, g = e.get("put", {}), e.get("get", {})
        w("| %s%s | %s | %s / %s | %s | %s / %s | %s | %s |" % (
            name, durable, fmt(put_ops), fmt(p.get("p50_ms")), fmt(p.get("p99_ms")), fmt(get_ops),
            fmt(g.get("p50_ms")), fmt(g.get("p99_ms")),
            "-" if key == "meridian" else ratio(d.get("meridian_put_ops"), put_ops),
            "-" if key == "meridian" else ratio(d.get("meridian_get_ops"), get_ops)))
    row("Meridian (fsync per group commit)", "meridian", d.get("meridian_put_ops"), d.get("meridian_get_ops"))
    row("dynalite 4 (LevelDB, no fsync)", "dynalite", d.get("dynalite_put_ops"), d.get("dynalite_get_ops"))
    row("moto server", "moto", d.get("moto_put_ops"), d.get("moto_get_ops"))
    for fs, label in (("always", "appendfsync always"), ("everysec", "appendfsync everysec")):
        r = det.get("redis_" + fs, {})
        s, g = r.get("SET", {}), r.get("GET", {})
        w("| redis-server 7 SET/GET, %s | %s | %s / %s | %s | %s / %s | %s | %s |" % (
            label, fmt(s.get("ops_per_s")), fmt(s.get("p50_ms")), fmt(s.get("p99_ms")), fmt(g.get("ops_per_s")),
            fmt(g.get("p50_ms")), fmt(g.get("p99_ms")), ratio(d.get("meridian_put_ops"), s.get("ops_per_s")),
            ratio(d.get("meridian_get_ops"), g.get("ops_per_s"))))
    w("")
    w("### Replication (fixed write rate into one region, loopback)")
    w("")
    rep = det.get("replication_3", {})
    rr = det.get("redis_replication", {})
    w("| | p50 ms | p99 ms | max ms | samples |")
    w("|---|---|---|---|---|")
    w("| Meridian, 3 regions, probe (write, then poll the others) | %s | %s | %s | %s |"
      % (fmt(rep.get("p50_ms")), fmt(rep.get("p99_ms")), fmt(rep.get("max_ms")), fmt(rep.get("samples"))))
    for dst, h in sorted(rep.get("histogram", {}).items()):
        w("| Meridian, commit-to-apply histogram, to %s (%s writes) | %s | %s | | |"
          % (dst, fmt(h.get("count")), fmt(h.get("p50_ms")), fmt(h.get("p99_ms"))))
    w("| Redis primary -> replica, same probe | %s | %s | %s | %s |"
      % (fmt(rr.get("p50_ms")), fmt(rr.get("p99_ms")), fmt(rr.get("max_ms")), fmt(rr.get("samples"))))
    for n in (2, 3, 5):
        s = det.get("scaling_%d" % n)
        if s:
            w("| Meridian, %d regions, probe (scaling run) | %s | %s | %s | %s |"
              % (n, fmt(s.get("p50_ms")), fmt(s.get("p99_ms")), fmt(s.get("max_ms")), fmt(s.get("samples"))))
    w("")
    c = det.get("catchup", {})
    b = det.get("backfill", {})
    w("### Catch-up, back-fill, footprint")
    w("")
    w("| figure | value |")
    w("|---|---|")
    w("| catch-up: region away for | %s s |" % fmt(c.get("outage_s")))
    w("| catch-up: entries behind on return | %s |" % fmt(c.get("backlog_entries")))
    w("| catch-up: time to catch up | %s s |" % fmt(c.get("catchup_s")))
    w("| catch-up rate | %s x the write rate (%s/s) |" % (fmt(c.get("multiple")), fmt(c.get("rate"))))
    w("| back-fill: items, table bytes | %s, %s MB |" % (fmt(b.get("items")), fmt((b.get("table_bytes") or 0) / 1e6)))
    w("| back-fill: time to ACTIVE | %s s (%s MB/s) |" % (fmt(b.get("seconds")), fmt(b.get("mb_per_s"))))
    w("| RSS per million items (whole process) | %s MB |" % fmt(b.get("rss_mb_per_million_items")))
    w("| RSS growth per million items | %s MB |" % fmt(b.get("rss_growth_mb_per_million_items")))
    w("| disk per million items | %s MB |" % fmt(b.get("disk_mb_per_million_items")))
    w("")
    w("### Targets (../shared/SPEC.md section 3, issue 4)")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")

    def target(name, value, ok):
        w("| %s | %s | %s |" % (name, value, "n/a" if ok is None else ("met" if ok else "not met")))

    def ge(a, b, k):
        return None if a is None or b is None else a >= k * b
    mp, mg = d.get("meridian_put_ops"), d.get("meridian_get_ops")
    target(">= 20x dynalite PutItem", ratio(mp, d.get("dynalite_put_ops")), ge(mp, d.get("dynalite_put_ops"), 20))
    target(">= 20x dynalite GetItem", ratio(mg, d.get("dynalite_get_ops")), ge(mg, d.get("dynalite_get_ops"), 20))
    target(">= 20x moto PutItem", ratio(mp, d.get("moto_put_ops")), ge(mp, d.get("moto_put_ops"), 20))
    target(">= 0.5x redis SET (appendfsync always)", ratio(mp, d.get("redis_set_ops")), ge(mp, d.get("redis_set_ops"), 0.5))
    target(">= 0.5x redis GET", ratio(mg, d.get("redis_get_ops")), ge(mg, d.get("redis_get_ops"), 0.5))
    pp, gp = d.get("meridian_put_p99_ms"), d.get("meridian_get_p99_ms")
    target("PutItem p99 < 5 ms at 64 connections", fmt(pp, " ms"), None if pp is None else pp < 5)
    target("GetItem p99 < 5 ms at 64 connections", fmt(gp, " ms"), None if gp is None else gp < 5)
    lp, rp = d.get("repl_lag_p99_ms"), d.get("redis_repl_lag_p99_ms")
    target("replication p99 within 2x Redis primary->replica", "%s vs %s" % (fmt(lp, " ms"), fmt(rp, " ms")),
           None if lp is None or rp is None else lp <= 2 * rp)
    cm = d.get("catchup_rate_multiple")
    target("catch-up >= 5x the write rate", fmt(cm, "x"), None if cm is None else cm >= 5)
    bm = d.get("backfill_mb_per_s")
    target("back-fill >= 100 MB/s", fmt(bm, " MB/s"), None if bm is None else bm >= 100)
    print("\n".join(out))


if __name__ == "__main__":
    main()
