#!/usr/bin/python3
"""Comparison table and plot of bench/testbed/uml_baseline.sh: UML guests
frozen by the consolidation schedule vs vmsim guests, per VMs/core.

Reads OUT/summary.json (harness.py report), OUT/ping-uml/ping.json,
OUT/ping-vmsim/ping.json and OUT/schedules.txt; writes OUT/compare.md and
OUT/uml-vs-vmsim.png; with --doc, replaces the text between the
"BEGIN uml baseline" / "END uml baseline" markers of that file and copies the
plot to --img.
"""
import argparse
import json
import os
import re
import shutil
import sys

BEGIN = "<!-- BEGIN uml baseline (bench/testbed/uml_baseline.sh rewrites this part) -->"
END = "<!-- END uml baseline -->"


def load(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def applied_share(text):
    """{(bed, guest): on_fraction} from the tools' 'schedule applied' lines."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"(uml|vmsim) g(\d+): vmsim schedule applied: .*on_fraction=([0-9.]+)", line)
        if m:
            out[(m.group(1), int(m.group(2)))] = float(m.group(3))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cmd", default="bench/testbed/uml_baseline.sh")
    ap.add_argument("--doc")
    ap.add_argument("--img")
    a = ap.parse_args()
    summ = load(os.path.join(a.out, "summary.json"), [])
    ping = {b: {int(x["guest"]): x for x in load(os.path.join(a.out, "ping-%s" % b, "ping.json"), [])}
            for b in ("uml", "vmsim")}
    try:
        share = applied_share(open(os.path.join(a.out, "schedules.txt")).read())
    except OSError:
        share = {}
    rows = {}
    for x in summ:
        rows.setdefault(int(x["vpc"]), {})[x["config"]] = x
    if not rows:
        sys.exit("uml_compare: no transfers in %s/summary.json" % a.out)
    vpcs = sorted(rows)
    base = {b: rows[vpcs[0]].get(b, {}).get("median_mbps") for b in ("uml", "vmsim")}
    lines = ["| VMs/core | guest share model (applied UML / vmsim) | UML median Mbit/s | ÷ 1 VM/core | vmsim median Mbit/s "
             "| ÷ 1 VM/core | UML p90 FCT ms | vmsim p90 FCT ms | UML retrans/xfer | vmsim retrans/xfer "
             "| UML ping p50 / p90 / p99 ms | vmsim ping p50 / p90 / p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    load_pct = 0.6
    plot = {"uml": [], "vmsim": []}
    for v in vpcs:
        u, s = rows[v].get("uml", {}), rows[v].get("vmsim", {})
        g = int((u or s)["guest"])

        def pp(b):
            p = ping[b].get(g)
            return "%.2f / %.1f / %.1f" % (p["p50"], p["p90"], p["p99"]) if p else "–"

        def nrm(b, x):
            return x.get("median_mbps", float("nan")) / base[b] if base[b] else float("nan")

        model = 1 / (1 + (v - 1) * load_pct)
        lines.append("| %d | %.2f (%s / %s) | %.1f (n=%d) | %.2f | %.1f (n=%d) | %.2f | %.1f | %.1f | %.2f | %.2f | %s | %s |" % (
            v, model, "%.2f" % share[("uml", g)] if ("uml", g) in share else "–",
            "%.2f" % share[("vmsim", g)] if ("vmsim", g) in share else "–",
            u.get("median_mbps", float("nan")), u.get("n", 0), nrm("uml", u), s.get("median_mbps", float("nan")),
            s.get("n", 0), nrm("vmsim", s), u.get("p90_fct_ms", float("nan")), s.get("p90_fct_ms", float("nan")),
            u.get("retrans_per_xfer", float("nan")), s.get("retrans_per_xfer", float("nan")), pp("uml"), pp("vmsim")))
        for b, x in (("uml", u), ("vmsim", s)):
            p = ping[b].get(g, {})
            plot[b].append((v, nrm(b, x), p.get("p90", float("nan")), p.get("p99", float("nan"))))
    md = ("Run `%s` (`%s`): per guest and bed %s transfers of 100 KB remote→guest, random start, beds alternating "
          "block by block; throughput by the sender's clock (connect → the receiver's report) for both beds.\n\n"
          % (os.path.basename(a.out), a.cmd, "/".join(sorted({str(x["n"]) for x in summ}))) + "\n".join(lines) + "\n")
    with open(os.path.join(a.out, "compare.md"), "w") as f:
        f.write(md)
    print(md)
    png = os.path.join(a.out, "uml-vs-vmsim.png")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for b, st in (("uml", "o-"), ("vmsim", "s--")):
            xs = [p[0] for p in plot[b]]
            ax1.plot(xs, [p[1] for p in plot[b]], st, label="%s guest" % ("UML (frozen)" if b == "uml" else "vmsim"))
            ax2.plot(xs, [p[2] for p in plot[b]], st, label="%s p90" % b)
            ax2.plot(xs, [p[3] for p in plot[b]], st, alpha=0.5, label="%s p99" % b)
        ax1.plot(vpcs, [1 / (1 + (v - 1) * load_pct) for v in vpcs], ":", color="gray", label="guest CPU share")
        ax1.set_xlabel("VMs per core (60 % load)")
        ax1.set_ylabel("median throughput ÷ 1 VM/core")
        ax1.set_title("100 KB remote→guest")
        ax2.set_xlabel("VMs per core (60 % load)")
        ax2.set_ylabel("ping RTT remote→guest (ms)")
        ax2.set_title("ping RTT")
        for ax in (ax1, ax2):
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
            ax.set_xticks(vpcs)
        fig.tight_layout()
        fig.savefig(png, dpi=110)
        plt.close(fig)
    except ImportError as e:
        print("uml_compare: no plot (%s)" % e, file=sys.stderr)
        png = None
    if a.doc:
        doc = open(a.doc).read()
        if BEGIN not in doc or END not in doc:
            sys.exit("uml_compare: markers missing in %s" % a.doc)
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        img = ""
        if png and a.img:
            shutil.copy(png, a.img)
            img = "\n![UML vs vmsim](%s)\n" % os.path.relpath(a.img, os.path.dirname(a.doc))
        with open(a.doc, "w") as f:
            f.write(head + BEGIN + "\n\n" + md + img + "\n" + END + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
