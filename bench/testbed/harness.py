#!/usr/bin/python3
"""TCP benchmark harness for a test bed made by bench/testbed/up.sh.

  harness.py run  --name NAME [--sizes 100K,1M] [--dir rx,tx] [--count N] ...
  harness.py ping --name NAME [--guests all] [--count 500] [--interval-ms 10]
  harness.py report RESULTS.csv [...] [--out DIR]

`run` starts one long-lived agent (tbperf.py) per namespace it needs and does
COUNT transfers per case over new TCP connections, case = (configuration,
direction, size, guest). rx = remote -> guest (the switch's RX path toward
the guest), tx = guest -> remote (TX path). Configurations (--config
NAME=STAGES) are switch stage sets applied with vswitchctl stage-enable /
stage-disable; they are interleaved block by block (--block transfers per
case, then the next configuration; order alternates A B, B A, ...), so
machine noise hits all of them alike. Output in --out: results.csv (one row
per transfer), summary.md (medians and ratios), PNG plots (CDFs, normalized
median bars as in vSnoop Fig. 5/6). See README.md "TCP benchmark harness".
"""
import argparse
import csv
import json
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TBPERF = os.path.join(HERE, "tbperf.py")
MONO = time.monotonic
PORT = 5599

COLS = ["run", "label", "config", "dir", "pattern", "size", "guest", "vpc", "load", "block", "flow", "seq",
        "round", "src_ns", "dst_ns", "t_s", "ok", "err", "tput_mbps", "fct_ms", "conn_ms", "sent_ms", "done_ms",
        "rx_first_ms", "retrans", "rto", "rto_recoveries", "dsack", "bytes_retrans", "srtt_ms", "min_rtt_ms",
        "rto_ms", "cwnd", "segs_out", "rwnd_limited_ms", "r_ooo", "r_rcv_rtt_ms", "t_mono"]


def log(*a):
    print("[harness %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def parse_size(s):
    s = s.strip().upper().rstrip("B")
    mult = {"K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "KI": 1024, "MI": 1024 ** 2}
    for suf in ("KI", "MI", "K", "M", "G"):
        if s.endswith(suf):
            return int(float(s[:-len(suf)]) * mult[suf])
    return int(s)


def size_label(n):
    for d, suf in ((1000 ** 3, "GB"), (1000 ** 2, "MB"), (1000, "KB")):
        if n >= d and n % d == 0:
            return "%d%s" % (n // d, suf)
    return "%dB" % n


def load_env(args):
    path = args.env or os.path.join(os.environ.get("TB_RUN_DIR", "/tmp"), "tb-%s" % args.name, "env")
    if not os.path.exists(path):
        sys.exit("harness: no test bed env %s (bench/testbed/up.sh --name %s)" % (path, args.name))
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = " ".join(shlex.split(v))
    env["_path"] = path
    return env


class Bed:
    """The bed's namespaces, agents and switch control."""

    def __init__(self, env):
        self.env = env
        self.gns = env["TB_GUEST_NS"].split()
        self.gip = env["TB_GUEST_IP"].split()
        self.vpc = env["TB_GUEST_VPC"].split()
        self.load = env["TB_GUEST_LOAD"].split()
        self.rns = env["TB_REMOTE_NS"].split()
        self.rip = env["TB_REMOTE_IP"].split()
        # Real guests (e.g. bench/testbed/uml_baseline.sh) run their own
        # receiver agent on PORT; the harness cannot start one inside them.
        self.external = env.get("TB_GUEST_EXTERNAL", "0") == "1"
        self.agents = {}
        self.lock = threading.Lock()
        self.nice = 0

    def ip_of(self, ns):
        if ns in self.gns:
            return self.gip[self.gns.index(ns)]
        return self.rip[self.rns.index(ns)]

    def agent(self, ns):
        if ns in self.agents:
            return self.agents[ns]
        if self.external and ns in self.gns:
            return None
        ctl = os.path.join(self.env["TB_DIR"], "agent-%s.sock" % ns)
        logf = open(os.path.join(self.env["TB_DIR"], "agent-%s.log" % ns), "ab")
        p = subprocess.Popen(["nice", "-n", str(self.nice), "ip", "netns", "exec", ns, "/usr/bin/python3", TBPERF, "--ctl", ctl,
                              "--listen", str(PORT)], stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(ctl) and p.poll() is None:
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(ctl)
                    break
                except OSError:
                    s.close()
            if p.poll() is not None:
                sys.exit("harness: agent in %s exited (see %s)" % (ns, logf.name))
            time.sleep(0.05)
        else:
            p.kill()
            sys.exit("harness: agent in %s did not come up" % ns)
        a = {"proc": p, "sock": s, "file": s.makefile("rwb", buffering=0), "ctl": ctl}
        self.agents[ns] = a
        self.rpc(ns, {"op": "ping"})
        return a

    def rpc(self, ns, msg):
        a = self.agents[ns]
        a["file"].write((json.dumps(msg) + "\n").encode())
        line = a["file"].readline()
        if not line:
            raise RuntimeError("agent in %s closed its control socket" % ns)
        rep = json.loads(line)
        if not rep.get("ok"):
            raise RuntimeError("agent in %s: %s" % (ns, rep.get("error")))
        return rep

    def close(self):
        for ns, a in self.agents.items():
            try:
                a["file"].write(b'{"op": "quit"}\n')
            except OSError:
                pass
            try:
                a["proc"].wait(timeout=2)
            except subprocess.TimeoutExpired:
                a["proc"].kill()
                a["proc"].wait()
            try:
                os.unlink(a["ctl"])
            except OSError:
                pass
        self.agents = {}

    def ctl(self, *args):
        r = subprocess.run([self.env["TB_VSWITCHCTL"], "-s", self.env["TB_CTL"], "--json", *args],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("vswitchctl %s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
        return json.loads(r.stdout) if r.stdout.strip() else None

    def apply(self, stages):
        """stages: None = leave the switch alone; else the set to enable (all others disabled)."""
        if stages is None:
            return
        have = {s["name"]: s["enabled"] for s in self.ctl("stage-list")}
        unknown = set(stages) - set(have)
        if unknown:
            raise RuntimeError("stages %s are not in the switch pipeline (up.sh --stages); have %s"
                               % (sorted(unknown), sorted(have)))
        for name, en in have.items():
            want = name in stages
            if want != en:
                self.ctl("stage-enable" if want else "stage-disable", name)
        now = {s["name"]: s["enabled"] for s in self.ctl("stage-list")}
        bad = [n for n in now if now[n] != (n in stages)]
        if bad:
            raise RuntimeError("stage state did not take: %s" % bad)


def parse_configs(specs):
    """--config NAME=a,b | NAME= (all off) | NAME (leave alone). Default: one 'asis'."""
    out = []
    for s in specs or ["asis"]:
        if "=" in s:
            name, st = s.split("=", 1)
            out.append((name, [x for x in st.replace("+", ",").split(",") if x]))
        else:
            out.append((s, None))
    return out


def pick_guests(bed, spec):
    if spec == "all":
        return list(range(1, len(bed.gns) + 1))
    g = [int(x) for x in spec.split(",")]
    for i in g:
        if not 1 <= i <= len(bed.gns):
            sys.exit("harness: guest %d not in 1..%d" % (i, len(bed.gns)))
    return g


def cmd_run(args):
    env = load_env(args)
    bed = Bed(env)
    bed.nice = args.nice
    configs = parse_configs(args.config)
    sizes = [parse_size(x) for x in args.sizes.split(",")]
    dirs = args.dir.split(",")
    for d in dirs:
        if d not in ("rx", "tx"):
            sys.exit("harness: --dir takes rx and/or tx")
    guests = pick_guests(bed, args.guests)
    pattern = "incast" if args.incast else ("flows" if args.flows > 1 else "seq")
    if bed.external and dirs != ["rx"]:
        sys.exit("harness: this bed's guests are real VMs with their own receiver: --dir rx only")
    fct = "sender" if bed.external else args.fct
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "results.csv")
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
    rnd = random.Random(args.seed)

    # Senders/receivers per case.
    def endpoints(d, g, k):
        """k-th sender of a case: (sender_ns, receiver_ns)."""
        gns = bed.gns[g - 1]
        if d == "rx":
            return bed.rns[k % len(bed.rns)], gns
        if pattern == "incast":  # many guests -> one remote host
            return bed.gns[(g - 1 + k) % len(bed.gns)], bed.rns[0]
        return gns, bed.rns[k % len(bed.rns)]

    cases = [(d, s, g) for d in dirs for s in sizes for g in guests]
    nsend = args.incast or args.flows
    for d, s, g in cases:
        for k in range(nsend):
            for ns in endpoints(d, g, k):
                bed.agent(ns)
    per_case = args.count
    blocks = max(1, -(-per_case // args.block))
    log("bed %s: %d cases x %d configs, %d %s per case in %d blocks; out %s" % (
        env["TB_NAME"], len(cases), len(configs), per_case, "rounds" if pattern == "incast" else "transfers",
        blocks, args.out))
    new = not os.path.exists(csv_path) or args.overwrite
    fcsv = open(csv_path, "w" if new else "a", newline="")
    w = csv.DictWriter(fcsv, fieldnames=COLS, extrasaction="ignore")
    if new:
        w.writeheader()
    t_begin = MONO()
    done = {}
    nerr = 0
    try:
        for b in range(blocks):
            order = configs if b % 2 == 0 else configs[::-1]
            for cname, stages in order:
                bed.apply(stages)
                if stages is not None and args.settle_s > 0:
                    time.sleep(args.settle_s)
                cs = cases[:]
                rnd.shuffle(cs)
                for d, s, g in cs:
                    key = (cname, d, s, g)
                    n = min(args.block, per_case - done.get(key, 0))
                    if n <= 0:
                        continue
                    rows = run_case(bed, args, pattern, d, s, g, n, endpoints, fct)
                    done[key] = done.get(key, 0) + n
                    for r in rows:
                        r.update({"run": run_id, "label": args.label, "config": cname, "dir": d, "pattern": pattern,
                                  "size": s, "guest": g, "vpc": bed.vpc[g - 1], "load": bed.load[g - 1], "block": b,
                                  "t_s": "%.3f" % (r.get("t0", t_begin) - t_begin),
                                  "t_mono": "%.4f" % r.get("t0", t_begin)})  # CLOCK_MONOTONIC, host-wide
                        for k in ("tput_mbps", "fct_ms", "conn_ms", "sent_ms", "done_ms", "rx_first_ms", "srtt_ms",
                                  "min_rtt_ms", "rto_ms", "rwnd_limited_ms", "r_rcv_rtt_ms"):
                            if isinstance(r.get(k), float):
                                r[k] = "%.4g" % r[k]
                        w.writerow(r)
                        nerr += 0 if r.get("ok") else 1
                    fcsv.flush()
            log("block %d/%d done (%.0f s, %d failed transfers)" % (b + 1, blocks, MONO() - t_begin, nerr))
    finally:
        fcsv.close()
        bed.close()
    if not args.no_report:
        rows = read_csv([csv_path], run_id)
        report(rows, args.out, args.norm, args.title)
    if nerr:
        log("%d transfers failed (err column)" % nerr)
    return 0 if nerr <= args.max_failures else 1


def run_case(bed, args, pattern, d, s, g, n, endpoints, fct="receiver"):
    """n transfers (seq, flows) or n rounds (incast) of one case; returns rows."""
    rows = []
    if pattern == "incast":
        for rnd_i in range(n):
            start_at = MONO() + 0.05
            by_ns = {}
            for k in range(args.incast):
                sns, rns = endpoints(d, g, k)
                by_ns.setdefault(sns, []).append({"dst": bed.ip_of(rns), "port": PORT, "size": s, "count": 1,
                                                  "flow": k, "start_at": start_at, "timeout_s": args.timeout_s,
                                                  "fct": fct, "tag": rns})
            rows += fan_out(bed, by_ns, extra={"round": rnd_i})
        return rows
    nfl = args.flows
    by_ns = {}
    for k in range(nfl):
        cnt = n // nfl + (1 if k < n % nfl else 0)
        if cnt == 0:
            continue
        sns, rns = endpoints(d, g, k)
        by_ns.setdefault(sns, []).append({"dst": bed.ip_of(rns), "port": PORT, "size": s, "count": cnt, "flow": k,
                                          "gap_ms": args.gap_ms, "gap_jitter_ms": args.gap_jitter_ms,
                                          "seed": args.seed * 1000 + k, "timeout_s": args.timeout_s, "fct": fct,
                                          "tag": rns})
    return fan_out(bed, by_ns)


def fan_out(bed, by_ns, extra=None):
    """Runs each namespace's flows through its agent, all agents at once."""
    out, lock, errs = [], threading.Lock(), []

    def go(ns, flows):
        try:
            rep = bed.rpc(ns, {"op": "run", "flows": flows})
            with lock:
                for r in rep["rows"]:
                    r["src_ns"], r["dst_ns"] = ns, r.pop("tag", "")
                    if extra:
                        r.update(extra)
                    out.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append("%s: %s" % (ns, e))

    ths = [threading.Thread(target=go, args=(ns, fl)) for ns, fl in by_ns.items()]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errs:
        raise RuntimeError("; ".join(errs))
    out.sort(key=lambda r: r.get("t0", 0))
    return out


# ---------------------------------------------------------------- report

def read_csv(paths, run_id=None):
    rows = []
    for p in paths:
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                if run_id and r["run"] != run_id:
                    continue
                rows.append(r)
    return rows


def pct(v, q):
    v = sorted(v)
    if not v:
        return float("nan")
    i = (len(v) - 1) * q
    lo = int(i)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)


def median_ci(v, z=1.96):
    """Distribution-free ~95 % confidence interval of the median (order statistics)."""
    v = sorted(v)
    n = len(v)
    if n < 6:
        return float("nan"), float("nan")
    h = z * (n ** 0.5) / 2
    lo, hi = max(0, int(n / 2 - h)), min(n - 1, int(n / 2 + h + 1))
    return v[lo], v[hi]


def fnum(r, k):
    try:
        return float(r[k])
    except (ValueError, KeyError, TypeError):
        return 0.0


def group(rows):
    """(dir, size, guest) -> config -> rows, keeping first-seen orders."""
    g, corder = {}, []
    for r in rows:
        c = r["config"]
        if c not in corder:
            corder.append(c)
        g.setdefault((r["dir"], int(r["size"]), int(r["guest"]), r["vpc"]), {}).setdefault(c, []).append(r)
    return g, corder


def report(rows, out, norm=None, title=None):
    if not rows:
        log("no rows to report")
        return
    os.makedirs(out, exist_ok=True)
    g, corder = group(rows)
    ref = norm if norm in corder else corder[-1]
    lines = ["| dir | size | guest (VMs/core) | config | n | failed | median Mbit/s | 95 %% CI | p10 | p90 | "
             "median FCT ms | mean FCT ms | p99 FCT ms | retrans/xfer | RTO/xfer | xfers with RTO | ratio to %s |" % ref,
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = []
    for key in sorted(g):
        d, s, gi, vpc = key
        med_ref = None
        ok_ref = [fnum(r, "tput_mbps") for r in g[key].get(ref, []) if r["ok"] == "1"]
        if ok_ref:
            med_ref = statistics.median(ok_ref)
        for c in corder:
            rs = g[key].get(c, [])
            if not rs:
                continue
            ok = [r for r in rs if r["ok"] == "1"]
            tp = [fnum(r, "tput_mbps") for r in ok]
            fct = [fnum(r, "fct_ms") for r in ok]
            rt = [fnum(r, "retrans") for r in ok]
            rto = [fnum(r, "rto") for r in ok]
            med = statistics.median(tp) if tp else float("nan")
            ratio = med / med_ref if med_ref else float("nan")
            ci = median_ci(tp)
            summary.append({"dir": d, "size": s, "guest": gi, "vpc": vpc, "config": c, "n": len(rs),
                            "failed": len(rs) - len(ok), "median_mbps": med, "median_ci_lo": ci[0], "median_ci_hi": ci[1],
                            "mean_fct_ms": statistics.mean(fct) if fct else float("nan"), "p10_mbps": pct(tp, 0.1),
                            "p90_mbps": pct(tp, 0.9), "median_fct_ms": pct(fct, 0.5), "p90_fct_ms": pct(fct, 0.9), "p99_fct_ms": pct(fct, 0.99),
                            "retrans_per_xfer": statistics.mean(rt) if rt else float("nan"),
                            "rto_per_xfer": statistics.mean(rto) if rto else float("nan"),
                            "frac_with_rto": (sum(1 for x in rto if x > 0) / len(rto)) if rto else float("nan"),
                            "ratio": ratio})
            x = summary[-1]
            lines.append("| %s | %s | %d (%s) | %s | %d | %d | %.2f | %.1f–%.1f | %.2f | %.2f | %.1f | %.1f | %.1f | %.2f | %.3f | %.1f %% | %.3f |" % (
                d, size_label(s), gi, vpc, c, x["n"], x["failed"], med, ci[0], ci[1], x["p10_mbps"], x["p90_mbps"],
                x["median_fct_ms"], x["mean_fct_ms"], x["p99_fct_ms"], x["retrans_per_xfer"], x["rto_per_xfer"],
                100 * x["frac_with_rto"], ratio))
    md = "\n".join(lines) + "\n"
    hdr = ("# %s\n\nThroughput = size / (receiver's last byte - sender's connect start), one clock "
           "(runs with --fct sender: until the sender has the receiver's report).\n\n" % (title or "TCP transfers"))
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(hdr + md)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(md)
    plots(g, corder, ref, summary, out, title)


def plots(g, corder, ref, summary, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []
    # CDFs of throughput: one figure per (dir, size), a line per config x guest.
    by_ds = {}
    for (d, s, gi, vpc), cfgs in g.items():
        by_ds.setdefault((d, s), []).append((gi, vpc, cfgs))
    for (d, s), lst in sorted(by_ds.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for gi, vpc, cfgs in sorted(lst):
            for c in corder:
                tp = sorted(fnum(r, "tput_mbps") for r in cfgs.get(c, []) if r["ok"] == "1")
                if not tp:
                    continue
                lab = c if len(lst) == 1 else "%s, guest %d (%s VMs/core)" % (c, gi, vpc)
                if len(corder) == 1 and len(lst) > 1:
                    lab = "guest %d (%s VMs/core)" % (gi, vpc)
                ax.plot([tp[0]] + tp, [0] + [(i + 1) / len(tp) for i in range(len(tp))], drawstyle="steps-post",
                        label=lab)
        ax.set_xscale("log")
        ax.set_xlabel("throughput per transfer (Mbit/s, log)")
        ax.set_ylabel("CDF")
        ax.set_title("%s%s, %s transfers" % ((title + ": ") if title else "",
                                             "remote→guest (rx)" if d == "rx" else "guest→remote (tx)", size_label(s)))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fn = os.path.join(out, "cdf-%s-%s.png" % (d, size_label(s)))
        fig.savefig(fn, dpi=110)
        plt.close(fig)
        files.append(fn)
    # Normalized median bars (vSnoop Fig. 6): x = size, a bar per config, per (dir, guest).
    if len(corder) > 1:
        by_dg = {}
        for x in summary:
            by_dg.setdefault((x["dir"], x["guest"], x["vpc"]), []).append(x)
        for (d, gi, vpc), xs in sorted(by_dg.items()):
            szs = sorted({x["size"] for x in xs})
            fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(szs) * max(1, len(corder)) / 2, 4))
            wdt = 0.8 / len(corder)
            for ci, c in enumerate(corder):
                vals = []
                for s in szs:
                    m = [x["ratio"] for x in xs if x["size"] == s and x["config"] == c]
                    vals.append(m[0] if m else 0)
                ax.bar([i + ci * wdt for i in range(len(szs))], vals, wdt, label=c)
            ax.set_xticks([i + wdt * (len(corder) - 1) / 2 for i in range(len(szs))])
            ax.set_xticklabels([size_label(s) for s in szs])
            ax.set_ylabel("median throughput / median of '%s'" % ref)
            ax.set_title("%s, guest %d (%s VMs/core)" % ("rx" if d == "rx" else "tx", gi, vpc), fontsize=9)
            ax.legend(fontsize=7)
            ax.grid(True, axis="y", alpha=0.3)
            fig.tight_layout()
            fn = os.path.join(out, "bars-%s-g%d.png" % (d, gi))
            fig.savefig(fn, dpi=110)
            plt.close(fig)
            files.append(fn)
    # Median throughput vs VMs/core when the guests differ in consolidation.
    vpcs = {x["vpc"] for x in summary}
    if len(vpcs) > 1:
        by_d = {}
        for x in summary:
            by_d.setdefault((x["dir"], x["size"]), []).append(x)
        for (d, s), xs in sorted(by_d.items()):
            fig, ax = plt.subplots(figsize=(5.5, 4))
            for c in corder:
                pts = sorted((int(x["vpc"]), x["median_mbps"], x["p10_mbps"], x["p90_mbps"]) for x in xs
                             if x["config"] == c)
                if not pts:
                    continue
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                            yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]],
                            marker="o", capsize=3, label="%s (median, p10-p90)" % c)
            ax.set_yscale("log")
            ax.set_xlabel("VMs per core (guest included)")
            ax.set_ylabel("throughput per transfer (Mbit/s, log)")
            ax.set_title("%s %s transfers" % ("remote→guest" if d == "rx" else "guest→remote", size_label(s)))
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            fn = os.path.join(out, "vpc-%s-%s.png" % (d, size_label(s)))
            fig.savefig(fn, dpi=110)
            plt.close(fig)
            files.append(fn)
    for f in files:
        log("wrote", f)


def cmd_report(args):
    rows = read_csv(args.csv, args.run_id)
    report(rows, args.out, args.norm, args.title)
    return 0


# ---------------------------------------------------------------- ping

def cmd_ping(args):
    """ping from a remote host to guests (all at once): RTT percentiles, CSV, CDF."""
    env = load_env(args)
    bed = Bed(env)
    guests = pick_guests(bed, args.guests)
    src = bed.rns[args.src - 1]
    os.makedirs(args.out, exist_ok=True)
    procs = {}
    for g in guests:
        procs[g] = subprocess.Popen(
            ["ip", "netns", "exec", src, "ping", "-n", "-D", "-i", "%.3f" % (args.interval_ms / 1000),
             "-c", str(args.count), "-W", "2", "-s", str(args.psize), bed.gip[g - 1]],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    res, rows = {}, []
    for g, p in procs.items():
        outp, _ = p.communicate(timeout=args.count * args.interval_ms / 1000 * 3 + 30)
        rtts = []
        for line in outp.splitlines():
            if "time=" in line and "icmp_seq=" in line:
                seq = int(line.split("icmp_seq=")[1].split()[0])
                t = float(line.split("time=")[1].split()[0])
                rtts.append(t)
                rows.append({"label": args.label, "guest": g, "vpc": bed.vpc[g - 1], "load": bed.load[g - 1],
                             "seq": seq, "rtt_ms": t})
        res[g] = rtts
    with open(os.path.join(args.out, "ping.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["label", "guest", "vpc", "load", "seq", "rtt_ms"])
        w.writeheader()
        w.writerows(rows)
    lines = ["| guest | VMs/core | load % | sent | received | p50 ms | p90 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    summ = []
    for g in guests:
        v = res[g]
        x = {"guest": g, "vpc": bed.vpc[g - 1], "load": bed.load[g - 1], "sent": args.count, "received": len(v),
             "p50": pct(v, .5), "p90": pct(v, .9), "p99": pct(v, .99), "max": max(v) if v else float("nan")}
        summ.append(x)
        lines.append("| %d | %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f |" % (
            g, x["vpc"], x["load"], x["sent"], x["received"], x["p50"], x["p90"], x["p99"], x["max"]))
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "ping.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "ping.json"), "w") as f:
        json.dump(summ, f, indent=1)
    print(md)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for g in guests:
        v = sorted(res[g])
        if v:
            ax.plot([v[0]] + v, [0] + [(i + 1) / len(v) for i in range(len(v))], drawstyle="steps-post",
                    label="%s VMs/core, load %s %%" % (bed.vpc[g - 1], bed.load[g - 1]))
    ax.set_xlabel("ping RTT remote→guest (ms)")
    ax.set_ylabel("CDF")
    ax.set_title(args.title or "ping RTT to a consolidated guest")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fn = os.path.join(args.out, "ping-cdf.png")
    fig.savefig(fn, dpi=110)
    plt.close(fig)
    log("wrote", fn)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def bed_args(p):
        p.add_argument("--name", default="0", help="bed name given to up.sh (env in /tmp/tb-NAME/env)")
        p.add_argument("--env", help="env file path instead of --name")
        p.add_argument("--out", default="bench/results/tb-%s" % time.strftime("%Y%m%d-%H%M%S"),
                       help="output directory")
        p.add_argument("--label", default="", help="free text copied into every row")
        p.add_argument("--title", default="", help="plot / summary title")
        p.add_argument("--guests", default="1", help="guest indexes (1-based, comma list) or 'all'")

    r = sub.add_parser("run", help="TCP transfers")
    bed_args(r)
    r.add_argument("--sizes", default="100K", help="transfer sizes, comma list: 50K,100K,1M,10M,100M (K=1000)")
    r.add_argument("--dir", default="rx", help="rx (remote->guest), tx (guest->remote) or rx,tx")
    r.add_argument("--count", type=int, default=100,
                   help="transfers (incast: rounds) per configuration x direction x size x guest")
    r.add_argument("--block", type=int, default=20, help="transfers per case before the next configuration")
    r.add_argument("--flows", type=int, default=1, help="concurrent flows per case, each sequential transfers; "
                   "senders spread over remote hosts (rx) / remote receivers (tx)")
    r.add_argument("--incast", type=int, default=0, metavar="M",
                   help="incast: M senders start together each round, one receiver (rx: remote hosts -> the "
                        "guest; tx: guests -> remote host 1); --count = rounds")
    r.add_argument("--config", action="append",
                   help="NAME=stage1,stage2 (enable exactly these), NAME= (all stages off), NAME (do not touch); "
                        "repeat to compare, e.g. --config off= --config snoop=snoop")
    r.add_argument("--norm", help="configuration the ratios / bars are normalized to (default: the last)")
    r.add_argument("--settle-s", type=float, default=0.5, help="pause after changing the configuration")
    r.add_argument("--gap-ms", type=float, default=0, help="pause between transfers of a flow")
    r.add_argument("--gap-jitter-ms", type=float, default=0,
                   help="plus a uniform random pause in [0, X] ms: transfers then start at random phases of the "
                        "guest's schedule instead of right after the previous one")
    r.add_argument("--nice", type=int, default=-10, help="nice level of the agents")
    r.add_argument("--timeout-s", type=float, default=60, help="socket timeout per transfer")
    r.add_argument("--seed", type=int, default=1, help="case order shuffle seed")
    r.add_argument("--run-id", help="value of the run column (default: start time)")
    r.add_argument("--overwrite", action="store_true", help="replace results.csv instead of appending")
    r.add_argument("--max-failures", type=int, default=0, help="exit 1 if more transfers failed")
    r.add_argument("--fct", choices=("receiver", "sender"), default="receiver",
                   help="end of a transfer: the receiver's last byte (default) or the sender getting the "
                        "receiver's report (one clock; forced for real-VM beds, TB_GUEST_EXTERNAL=1)")
    r.add_argument("--no-report", action="store_true", help="append to results.csv only (report later)")

    p = sub.add_parser("ping", help="ping RTT from a remote host to guests")
    bed_args(p)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--interval-ms", type=float, default=10)
    p.add_argument("--psize", type=int, default=56)
    p.add_argument("--src", type=int, default=1, help="remote host index that pings")

    rp = sub.add_parser("report", help="summary and plots from results.csv files")
    rp.add_argument("csv", nargs="+")
    rp.add_argument("--out", required=True)
    rp.add_argument("--norm")
    rp.add_argument("--title", default="")
    rp.add_argument("--run-id")

    args = ap.parse_args()
    return {"run": cmd_run, "ping": cmd_ping, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
