#!/usr/bin/env python3
"""RTT sampling checked against a capture of the sender.

Input: the sender's capture and the paired samples of one validation run
(tests/integration/monitor_validation.sh with MON_PCAP=DIR MON_RESULTS=DIR:
DIR/sender.pcap, DIR/samples.jsonl). For every sample (a moment where the
monitor's and Linux's srtt were read) it prints how often, within 10 % or
100 us of Linux's srtt, these estimators agree:

  linux-style  an RTT sample per ACK from the capture, as Linux takes it:
               the first newly acknowledged segment never resent, else the
               oldest newly SACKed one; RFC 6298 gains. If this agrees with
               tcp_info, the stacks' own delays are not what separates the
               monitor from Linux: its sampling is.
  qN/k         the monitor's sampling rules replayed on the capture: a head
               and up to N queued timed segments, each at least 1/k of the
               flight after the one before; a sample when an ACK covers the
               head (or SACK blocks cover a timed segment), weighted by the
               ACKs since the last one; Karn: a resend drops the timed
               segments it covers and an ACK over resent data gives none.
  monitor      what the monitor itself reported.

The replay is a model of the rules, not the stage's code: it keeps explicit
ends and times (no 16-byte / 4 us units, no spacing cap, no 1 MB / 262 ms
limits, no rule for segments under 16 bytes) and one resent span from the
first resend's start; for flights of several MB it drifts from the stage.

docs/monitor.md ("Short transfers read low") quotes its output.
  bench/monitor/capture_rtt.py DIR [--sender 10.213.0.1] [--policies 3/4,8/6]
"""
import argparse
import bisect
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from pcap_tcp import packets, seq_lt as lt  # noqa: E402

MSS = 1448


class Srtt:
    """RFC 6298 smoothing; one sample may stand for n (the monitor's gain)."""

    def __init__(self):
        self.srtt = None

    def add(self, us, n=1):
        if self.srtt is None:
            self.srtt = us
        else:
            self.srtt += (1 - (7 / 8) ** min(n, 64)) * (us - self.srtt)


def linux_style(path, sender):
    """Per connection: [(time, srtt)] after each ACK that gave a sample."""
    conns = {}
    for t, src, sp, dst, dp, seq, ack, fl, plen, sacks in packets(path):
        if src == sender:
            c = conns.setdefault(f"{src}:{sp}>{dst}:{dp}",
                                 dict(segs={}, resent=set(), sacked=set(), una=None, est=Srtt(), hist=[]))
            length = plen + (1 if fl & 3 else 0)
            if length == 0:
                continue
            if seq in c["segs"]:
                c["resent"].add(seq)
            else:
                c["segs"][seq] = ((seq + length) & 0xffffffff, t)
            continue
        c = conns.get(f"{dst}:{dp}>{src}:{sp}")
        if not c or not fl & 16:
            continue
        una, first, resent, sample = c["una"], None, False, None
        if una is None or lt(una, ack):
            for s0, (end, ts) in c["segs"].items():
                if (una is None or not lt(s0, una)) and not lt(ack, end):
                    if s0 in c["resent"]:
                        resent = True
                    elif first is None or ts < first:
                        first = ts
            if first is not None and not resent:
                sample = t - first
            c["una"] = ack
        if sample is None and sacks:
            oldest = None
            for s0, (end, ts) in c["segs"].items():
                if s0 in c["resent"] or s0 in c["sacked"]:
                    continue
                if any(not lt(s0, left) and not lt(right, end) for left, right in sacks):
                    c["sacked"].add(s0)
                    oldest = ts if oldest is None else min(oldest, ts)
            if oldest is not None:
                sample = t - oldest
        if sample is not None:
            c["est"].add(sample * 1e6)
            c["hist"].append((t, c["est"].srtt))
    return {k: c["hist"] for k, c in conns.items()}


def replay(path, sender, queued, spacing):
    """The monitor's timed-segment rules on the capture: per connection [(time, srtt)]."""
    conns = {}
    for t, src, sp, dst, dp, seq, ack, fl, plen, sacks in packets(path):
        if src == sender:
            c = conns.setdefault(f"{src}:{sp}>{dst}:{dp}", dict(nxt=None, una=None, head=None, q=[], est=Srtt(),
                                                                  hist=[], acks=0, rtx=None, flmax=0))
            length = plen + (1 if fl & 3 else 0)
            if length == 0:
                continue
            end = (seq + length) & 0xffffffff
            if c["nxt"] is None:
                c["nxt"], c["una"], c["head"] = end, seq, (end, t)
            elif lt(seq, c["nxt"]):  # resent: its timed segments are ambiguous
                c["rtx"] = (seq, end) if c["rtx"] is None else (c["rtx"][0], end)
                hit = lambda e: lt(seq, e) and not lt(end, e)
                c["q"] = [x for x in c["q"] if not hit(x[0])]
                if c["head"] and hit(c["head"][0]):
                    c["head"] = c["q"].pop(0) if c["q"] else None
                if lt(c["nxt"], end):
                    c["nxt"] = end
            else:
                c["nxt"] = end
                flight = (c["nxt"] - c["una"]) & 0xffffffff
                if c["head"] is None:
                    c["head"] = (end, t)
                elif len(c["q"]) < queued:
                    last = c["q"][-1][0] if c["q"] else c["head"][0]
                    if not lt(end, (last + max(MSS, max(flight, c["flmax"]) // spacing)) & 0xffffffff):
                        c["q"].append((end, t))
            continue
        c = conns.get(f"{dst}:{dp}>{src}:{sp}")
        if not c or not fl & 16 or c["una"] is None:
            continue
        ts = None
        if lt(c["una"], ack):
            una_old, c["una"] = c["una"], ack
            c["acks"] += 1
            c["flmax"] = max(c["flmax"], (c["nxt"] - una_old) & 0xffffffff)
            valid = True
            if c["rtx"]:
                lo, hi = c["rtx"]
                valid = not (lt(lo, ack) and lt(una_old, hi))
                if not lt(ack, hi):
                    c["rtx"] = None
            h = c["head"]
            if h and not lt(ack, h[0]):
                if valid:
                    ts = h[1]
                while c["q"] and not lt(ack, c["q"][0][0]):
                    c["q"].pop(0)
                c["head"] = c["q"].pop(0) if c["q"] else None
        elif ack == c["una"] and sacks and c["head"]:
            c["acks"] += 1
            covered = lambda e: lt(c["una"], e) and any(lt(l, e) and not lt(r, e) and lt(ack, r) for l, r in sacks)
            for x in [y for y in c["q"] if covered(y[0])]:
                ts = ts or x[1]
                c["q"].remove(x)
            if covered(c["head"][0]):
                ts = c["head"][1]
                c["head"] = c["q"].pop(0) if c["q"] else None
        if ts is not None:
            c["est"].add((t - ts) * 1e6, max(1, c["acks"]))
            c["acks"] = 0
            c["hist"].append((t, c["est"].srtt))
    return {k: c["hist"] for k, c in conns.items()}


def agreement(rows, hist):
    ok = n = 0
    errs = []
    for r in rows:
        h = hist.get(r["conn"])
        if not h:
            continue
        i = bisect.bisect_right([x[0] for x in h], r["t"]) - 1
        if i < 0:
            continue
        ref, est = r["ss_near"]["rtt_us"], h[i][1]
        errs.append(est / ref - 1)
        n += 1
        ok += abs(est / ref - 1) <= 0.1 or abs(est - ref) <= 100
    errs.sort()
    return ok, n, (errs[len(errs) // 2] if errs else float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="MON_PCAP / MON_RESULTS directory of one run")
    ap.add_argument("--sender", default="10.213.0.1")
    ap.add_argument("--label", default="short", help="scenario label prefix of the samples")
    ap.add_argument("--policies", default="3/4,6/6,8/6,11/8", help="queued/spacing pairs to replay")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(f"{a.dir}/samples.jsonl")]
    rows = [r for r in rows if r["label"].startswith(a.label)]
    pcap = f"{a.dir}/sender.pcap"
    show = lambda name, res: print(f"{name:12s} within 10 %: {res[0]}/{res[1]}  median error {res[2]:+.3f}")
    show("linux-style", agreement(rows, linux_style(pcap, a.sender)))
    for p in a.policies.split(","):
        q, k = map(int, p.split("/"))
        show(f"q{q}/{k}", agreement(rows, replay(pcap, a.sender, q, k)))
    mon = [(r["mon"]["rtt_us"], r["ss_near"]["rtt_us"]) for r in rows]
    print(f"{'monitor':12s} within 10 %: {sum(abs(m / s - 1) <= .1 or abs(m - s) <= 100 for m, s in mon)}/{len(mon)}")


if __name__ == "__main__":
    main()
