#!/usr/bin/env python3
"""Monitor-stage validation helper: traffic, paired sampling, comparison.

Used by tests/integration/monitor_validation.sh (CI) and
bench/monitor/validate.sh (longer runs that write docs/monitor.md).

  recv    --port P [--rcvbuf B] [--timeout S]          sink: accept, read, discard
  send    --host H --port P [--seconds S | --bytes N] [--conns K] [--rate-mbit R] [--sndbuf B] [--cc NAME]
  sample  --ns NS --ctl 'VSWITCHCTL -s SOCK' --local IP --remote IP --seconds S --label L --out FILE
          pairs the monitor's tcp-flows (control socket, as `vswitchctl --json tcp-flows`)
          with the sender namespace's tcp_info (netlink, as `ss -tin`) read nearest the
          moment the monitor copied each connection (read over and over during the request),
          every --interval seconds, for every connection local -> remote
  compare --samples FILE [--counts FILE] --out-json FILE [--out-md FILE] [--cmd TEXT]
          agreement per scenario (label prefix before ':' is the kind)

Reference verdict per interval, from Linux tcp_info deltas (ss: busy, rwnd_limited,
sndbuf_limited, app_limited): receiver_window if rwnd-limited more than half of the
interval; else sender if the socket was idle (not busy) more than half of it or the
stack flagged app_limited at both ends of it; else network (cwnd-limited). The monitor
verdict for the same interval is the state with the largest increase of limited_ms.
"""
import argparse
import json
import select
import socket
import statistics
import sys
import threading
import time

from tcp_diag import TcpDiag

# ---------------------------------------------------------------- traffic

def cmd_recv(a):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.rcvbuf:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)  # inherited by accepted sockets
    srv.bind(("0.0.0.0", a.port))
    srv.listen(64)
    srv.settimeout(a.timeout)
    end = time.time() + a.timeout

    def drain(c):
        with c:
            while c.recv(1 << 16):
                pass

    while time.time() < end:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            break
        threading.Thread(target=drain, args=(c,), daemon=True).start()


def cmd_send(a):
    buf = b"\0" * 16384
    for _ in range(a.conns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if a.sndbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
        if a.cc:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, a.cc.encode())
        s.connect((a.host, a.port))
        sent, t0 = 0, time.time()
        while True:
            if a.bytes and sent >= a.bytes:
                break
            if a.seconds and time.time() - t0 >= a.seconds:
                break
            n = len(buf) if not a.bytes else min(len(buf), a.bytes - sent)
            s.sendall(buf[:n])
            sent += n
            if a.rate_mbit:
                ahead = sent * 8 / (a.rate_mbit * 1e6) - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()


# ---------------------------------------------------------------- sampling

def ctl_socket_of(ctl):
    """'VSWITCHCTL -s SOCK' -> SOCK"""
    w = ctl.split()
    return w[w.index("-s") + 1]


class Ctl:
    """vswitchd's control socket, one connection for all requests
    (newline-delimited JSON, as vswitchctl). request(..., poll=f) calls f()
    every POLL_S until the reply is there (sleeping in between: with a busy loop
    reading tcp_info, even at nice 10, the monitor read the bulk flight 20-30 %
    below tcp_info in those samples on this 2-core host)."""

    POLL_S = 0.0002

    def __init__(self, path, timeout=10):
        self.path, self.timeout, self.c = path, timeout, None

    def request(self, cmd, args, poll=None):
        try:
            return self._request(cmd, args, poll)
        except (OSError, ValueError):
            self.close()
            raise

    def _request(self, cmd, args, poll):
        if self.c is None:
            self.c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.c.settimeout(self.timeout)
            self.c.connect(self.path)
        c = self.c
        c.settimeout(self.timeout)
        c.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())
        buf, end = b"", time.time() + self.timeout
        while b"\n" not in buf:
            if time.time() > end:
                raise OSError("control socket: no reply in %d s" % self.timeout)
            if poll and not select.select([c], [], [], self.POLL_S)[0]:
                try:
                    poll()
                except OSError:
                    pass  # a failed reference read: fewer reads to pair with, not a control-socket error
                continue
            chunk = c.recv(1 << 20)
            if not chunk:
                raise OSError("control socket closed")
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


class RefReads:
    """tcp_info of the connections toward `remote`, read before and after each
    of the monitor's copies: the monitor stamps each copy with CLOCK_MONOTONIC
    (copied_mono_ns), and nearest() picks the read taken closest to it. The
    first read is a dump (which connections exist: 0.2 ms, the kernel walks
    its whole hash), the others exact lookups (~30 us)."""

    def __init__(self, diag, remote):
        self.diag, self.remote = diag, remote
        self.reads = []  # (t0_ns, t1_ns, {key: fields}), CLOCK_MONOTONIC
        self.keys = None

    def read(self):
        t0 = time.monotonic_ns()
        if self.keys is None:
            d = self.diag.dump()
            self.keys = [k for k in d if k[2] == self.remote]
        else:
            d = self.diag.get(self.keys)
        self.reads.append((t0, time.monotonic_ns(), d))

    def nearest(self, key, t_ns):
        """(fields, |read midpoint - t| us, read duration us) of the read of key nearest t_ns."""
        best = None
        for t0, t1, d in self.reads:
            if key in d:
                dist = abs((t0 + t1) / 2 - t_ns)
                if best is None or dist < best[1]:
                    best = (d[key], dist, t1 - t0)
        return None if best is None else (best[0], best[1] / 1000, best[2] / 1000)


def dir_key(d):
    """A monitor direction record's (src, sport, dst, dport)."""
    sa, sp = d["src"].rsplit(":", 1)
    da, dp = d["dst"].rsplit(":", 1)
    return sa, int(sp), da, int(dp)


def flow_dirs(flows, local):
    """{(src, sport, dst, dport): direction record} of the directions sent by local."""
    dirs = {}
    for f in flows:
        for d in f["dirs"]:
            key = dir_key(d)
            if key[0] == local:
                dirs[key] = dict(d, id="%s:%s" % (f["id"], f["gen"]), state=f["state"],
                                 copied_mono_ns=f.get("copied_mono_ns"))
    return dirs


def cmd_sample(a):
    # Each connection's monitor record is paired with the tcp_info read
    # nearest the moment the monitor copied it (RefReads). A connection the
    # sampler knows is asked for alone (`tcp-flow ID`: one copy on its PMD,
    # tcp_info read right before and after); a new one is found by a scan
    # (`tcp-flows`: 1-2 ms, 64 k table slots per PMD call), whose copies are
    # used too. The first and last read are kept for the diagnostics (how far
    # the reference moved meanwhile).
    diag = TcpDiag(a.ns)
    ctl = Ctl(ctl_socket_of(a.ctl))
    args = {"argv": [], "addr": a.local, "top": "64"}
    ids = {}  # 4-tuple -> monitor id PMD:SLOT:GEN
    end = time.time() + a.seconds
    with open(a.out, "a") as out:
        while time.time() < end:
            t = time.time()
            poll = RefReads(diag, a.remote)
            poll.read()
            dirs = {}
            if any(k not in ids for k in poll.keys):
                try:
                    mon = ctl.request("tcp-flows", args, poll.read).get("result", {"flows": []})
                except (OSError, ValueError):
                    mon = {"flows": []}
                dirs = flow_dirs(mon.get("flows", []), a.local)
                ids = {k: d["id"] for k, d in dirs.items()}
                poll.read()
            else:
                for k in poll.keys:
                    try:
                        r = ctl.request("tcp-flow", {"argv": [ids[k]]}, poll.read)
                    except (OSError, ValueError):
                        r = {}
                    if r.get("ok"):
                        dirs.update(flow_dirs([r["result"]], a.local))
                    else:
                        ids.pop(k, None)  # gone (or a new connection in its slot): found by the next scan
                    poll.read()
            t_ss2 = time.time()
            ss, ss2 = poll.reads[0][2], poll.reads[-1][2]
            for key, s in ss.items():
                if key[2] != a.remote or key not in dirs:
                    continue
                m = dirs[key]
                if m["bytes"] < 1 or not s.get("bytes_acked"):
                    continue
                rec = {"t": t, "label": a.label, "conn": "%s:%d>%s:%d" % key, "ss": s, "mon": m,
                       "t_ss2": t_ss2, "reads": len(poll.reads)}
                if key in ss2:
                    rec["ss_after"] = ss2[key]
                near = poll.nearest(key, m["copied_mono_ns"]) if m.get("copied_mono_ns") else None
                if near:
                    rec["ss_near"], rec["near_us"], rec["near_read_us"] = near
                out.write(json.dumps(rec) + "\n")
            out.flush()
            time.sleep(max(0.0, a.interval - (time.time() - t)))
    ctl.close()
    diag.close()


# ---------------------------------------------------------------- comparison

def ref_verdict(s0, s1, dt_ms):
    d_rwnd = s1["rwnd_limited_ms"] - s0["rwnd_limited_ms"]
    d_busy = s1["busy_ms"] - s0["busy_ms"]
    if d_rwnd > 0.5 * dt_ms:
        return "receiver_window"
    if d_busy < 0.5 * dt_ms or (s0["app_limited"] and s1["app_limited"]):
        return "sender"
    return "network"


def mon_verdict(m0, m1):
    lm0, lm1 = m0["limited_ms"], m1["limited_ms"]
    deltas = {k: lm1[k] - lm0.get(k, 0) for k in lm1}
    return max(deltas, key=deltas.get)


def within_range(m, lo, hi, rel, abs_):
    """m in [lo, hi], widened by rel (relative) or abs_, whichever is larger, at each end."""
    return lo - max(rel * abs(lo), abs_) <= m <= hi + max(rel * abs(hi), abs_)


def ref_of(r):
    """A sample's reference: the tcp_info read nearest the monitor's copy."""
    return r.get("ss_near", r["ss"])


def within(m, ref, rel, abs_):
    return within_range(m, ref, ref, rel, abs_)


def cmd_compare(a):
    recs = [json.loads(l) for l in open(a.samples)]
    counts = [json.loads(l) for l in open(a.counts)] if a.counts else []
    scen = {}
    for r in recs:
        scen.setdefault(r["label"], []).append(r)
    rows, result = [], {"scenarios": {}}
    # Every scenario with samples or counts: short transfers may all end before
    # the first sample, and their retransmission counts are checked all the same.
    labels = list(scen) + [c["label"] for c in counts if c["label"] not in scen]
    for label in labels:
        rs = scen.get(label, [])
        kind = label.split(":")[0]
        by_conn = {}
        for r in rs:
            by_conn.setdefault(r["conn"], []).append(r)
        rtt_ok = rtt_n = fl_ok = fl_n = 0
        br_rtt_ok = br_rtt_n = br_fl_ok = br_fl_n = 0
        fr_rtt_ok = fr_fl_ok = 0
        motion, gap_ms, near_us = [], [], []
        rtt_err, fl_ratio, cw_ratio = [], [], []
        v_ok = v_n = 0
        verdicts = {}
        for conn, seq in list(by_conn.items()):
            seq.sort(key=lambda r: r["t"])
            if max(r["ss"].get("bytes_acked", 0) for r in seq) < a.min_bytes:
                del by_conn[conn]  # e.g. iperf3's control connection
                continue
            for r in seq:
                # The reference: the tcp_info read nearest the moment the monitor
                # copied the connection (older samples: the read before the request).
                s, m = ref_of(r), r["mon"]
                s1, s2 = r["ss"], r.get("ss_after")
                if "near_us" in r:
                    near_us.append(r["near_us"])
                if "rtt_us" in s and m["rtt_us"] > 0:
                    rtt_n += 1
                    rtt_ok += within(m["rtt_us"], s["rtt_us"], 0.10, 100)
                    rtt_err.append(abs(m["rtt_us"] - s["rtt_us"]) / max(s["rtt_us"], 1))
                    fr_rtt_ok += "rtt_us" in s1 and within(m["rtt_us"], s1["rtt_us"], 0.10, 100)
                    if s2 and "rtt_us" in s2 and "rtt_us" in s1:
                        # Diagnostic only: the reference at both ends of the monitor's read.
                        lo, hi = sorted((s1["rtt_us"], s2["rtt_us"]))
                        br_rtt_n += 1
                        br_rtt_ok += within_range(m["rtt_us"], lo, hi, 0.10, 100)
                        motion.append((hi - lo) / max(lo, 1))
                        gap_ms.append((r["t_ss2"] - r["t"]) * 1000)
                if kind in ("bulk", "lossy") and s.get("unacked") and s.get("mss"):
                    ref = s["unacked"] * s["mss"]
                    fl_n += 1
                    fl = m.get("flight_sender_est", m["flight"])
                    fl_ok += within(fl, ref, 0.10, 0)
                    fl_ratio.append(fl / ref)
                    if s1.get("unacked") and s1.get("mss"):
                        ref1 = s1["unacked"] * s1["mss"]
                        fr_fl_ok += within(fl, ref1, 0.10, 0)
                        if s2 and s2.get("unacked") and s2.get("mss"):
                            lo, hi = sorted((ref1, s2["unacked"] * s2["mss"]))
                            br_fl_n += 1
                            br_fl_ok += within_range(fl, lo, hi, 0.10, 0)
                    if s.get("cwnd"):
                        cw_ratio.append(m["cwnd_lb"] / (s["cwnd"] * s["mss"]))
            for r0, r1 in zip(seq, seq[1:]):
                dt = (r1["t"] - r0["t"]) * 1000
                if dt <= 0:
                    continue
                rv, mv = ref_verdict(ref_of(r0), ref_of(r1), dt), mon_verdict(r0["mon"], r1["mon"])
                v_n += 1
                v_ok += rv == mv
                verdicts[(rv, mv)] = verdicts.get((rv, mv), 0) + 1
        med = lambda v: statistics.median(v) if v else float("nan")
        sc = {
            "kind": kind, "connections": len(by_conn), "samples": sum(len(v) for v in by_conn.values()),
            "rtt_within": rtt_ok / rtt_n if rtt_n else None, "rtt_median_rel_err": med(rtt_err),
            "flight_within": fl_ok / fl_n if fl_n else None, "flight_ratio_median": med(fl_ratio),
            "cwnd_lb_ratio_median": med(cw_ratio),
            "verdict_agree": v_ok / v_n if v_n else None, "intervals": v_n,
            "verdicts": {"%s/%s" % k: n for k, n in verdicts.items()},
            "rtt_within_first_read": fr_rtt_ok / rtt_n if rtt_n else None,
            "flight_within_first_read": fr_fl_ok / fl_n if fl_n else None,
            "near_us_median": med(near_us),
            "rtt_within_bracket": br_rtt_ok / br_rtt_n if br_rtt_n else None,
            "flight_within_bracket": br_fl_ok / br_fl_n if br_fl_n else None,
            "ref_rtt_motion_median": med(motion), "bracket_ms_median": med(gap_ms),
        }
        for c in counts:
            if c["label"] == label:
                sc["retrans_linux"] = c["linux_retrans"]
                sc["retrans_monitor"] = c["monitor_retrans"]
                sc.update({k: v for k, v in c.items() if k not in ("label",)})
        result["scenarios"][label] = sc
    json.dump(result, open(a.out_json, "w"), indent=2)
    if a.out_md:
        pct = lambda v: "—" if v is None else "%.0f %%" % (100 * v)
        num = lambda v: "—" if v is None or v != v else "%.2f" % v
        lines = [
            "| scenario | conns | samples | RTT within 10 %/100 µs | median RTT error | flight within 10 % "
            "| median flight ratio | median cwnd_lb/cwnd | limited-by agreement (intervals) | retrans Linux / monitor |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label, sc in result["scenarios"].items():
            rt = "%s / %s" % (sc.get("retrans_linux", "—"), sc.get("retrans_monitor", "—"))
            lines.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s (%d) | %s |" % (
                label, sc["connections"], sc["samples"], pct(sc["rtt_within"]),
                "—" if sc["rtt_median_rel_err"] != sc["rtt_median_rel_err"] else "%.1f %%" % (100 * sc["rtt_median_rel_err"]),
                pct(sc["flight_within"]), num(sc["flight_ratio_median"]), num(sc["cwnd_lb_ratio_median"]),
                pct(sc["verdict_agree"]), sc["intervals"], rt))
        lines.append("")
        lines.append("Verdict pairs (Linux reference / monitor): " + "; ".join(
            "%s: %s" % (l, ", ".join("%s %d" % kv for kv in sc["verdicts"].items()))
            for l, sc in result["scenarios"].items()))
        lines.append("")
        lines.append("The reference of each sample is the tcp_info read nearest the moment the monitor copied the "
                     "connection (tcp_info is read over and over during the monitor's request). Diagnostic: "
                     "against the read right before the request (the earlier reference), and within 10 % of "
                     "the range between the reads before the request and after its reply: " + "; ".join(
            "%s: nearest read %s from the copy (median), first and last read %s ms apart, Linux srtt moved %s; "
            "against the first read RTT %s%s; within the range RTT %s%s" % (
                l, "—" if sc["near_us_median"] != sc["near_us_median"] else "%.0f µs" % sc["near_us_median"],
                "—" if sc["bracket_ms_median"] != sc["bracket_ms_median"] else "%.0f" % sc["bracket_ms_median"],
                "—" if sc["ref_rtt_motion_median"] != sc["ref_rtt_motion_median"] else "%.1f %%" % (100 * sc["ref_rtt_motion_median"]),
                pct(sc["rtt_within_first_read"]),
                "" if sc["flight_within_first_read"] is None else ", flight %s" % pct(sc["flight_within_first_read"]),
                pct(sc["rtt_within_bracket"]),
                "" if sc["flight_within_bracket"] is None else ", flight %s" % pct(sc["flight_within_bracket"]))
            for l, sc in result["scenarios"].items() if sc["kind"] != "short"))
        if a.produced_by:
            lines.append("")
            lines.append("Produced by `%s`." % a.produced_by)
        open(a.out_md, "w").write("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


def cmd_counts(a):
    """Sums the monitor's closed-connection records (export file) of one scenario
    (connections local -> *:dport) against the Linux counters of the sender namespace."""
    mon = {"monitor_retrans": 0, "monitor_spurious": 0, "monitor_timeouts": 0, "monitor_fast_retx": 0, "records": 0}
    for line in open(a.export):
        r = json.loads(line)
        for d in r["dirs"]:
            sa, _, _, dp = dir_key(d)
            if sa == a.local and dp == a.dport:
                mon["records"] += 1
                mon["monitor_retrans"] += d["retrans"]
                mon["monitor_spurious"] += d["spurious_retrans"]
                mon["monitor_timeouts"] += d["timeouts"]
                mon["monitor_fast_retx"] += d["fast_retx"]
    rec = dict(label=a.label, linux_retrans=a.linux_retrans, linux_timeouts=a.linux_timeouts, **mon)
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="sub", required=True)
    r = sp.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--rcvbuf", type=int, default=0)
    r.add_argument("--timeout", type=float, default=60)
    s = sp.add_parser("send")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--seconds", type=float, default=0)
    s.add_argument("--bytes", type=int, default=0)
    s.add_argument("--conns", type=int, default=1)
    s.add_argument("--rate-mbit", type=float, default=0)
    s.add_argument("--sndbuf", type=int, default=0)
    s.add_argument("--cc", default="", help="congestion control of the sending sockets (TCP_CONGESTION)")
    m = sp.add_parser("sample")
    m.add_argument("--ns", required=True)
    m.add_argument("--ctl", required=True)
    m.add_argument("--local", required=True)
    m.add_argument("--remote", required=True)
    m.add_argument("--seconds", type=float, required=True)
    m.add_argument("--interval", type=float, default=0.5)
    m.add_argument("--label", required=True)
    m.add_argument("--out", required=True)
    c = sp.add_parser("compare")
    c.add_argument("--samples", required=True)
    c.add_argument("--counts")
    c.add_argument("--out-json", required=True)
    c.add_argument("--out-md")
    c.add_argument("--cmd", dest="produced_by")
    c.add_argument("--min-bytes", type=int, default=65536)
    k = sp.add_parser("counts")
    k.add_argument("--export", required=True)
    k.add_argument("--local", required=True)
    k.add_argument("--dport", type=int, required=True)
    k.add_argument("--label", required=True)
    k.add_argument("--linux-retrans", type=int, required=True)
    k.add_argument("--linux-timeouts", type=int, default=0)
    k.add_argument("--out", required=True)
    a = p.parse_args()
    {"recv": cmd_recv, "send": cmd_send, "sample": cmd_sample, "compare": cmd_compare, "counts": cmd_counts}[a.sub](a)


if __name__ == "__main__":
    sys.exit(main())
