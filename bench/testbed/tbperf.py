#!/usr/bin/python3
"""tbperf: the long-lived sender/receiver agent of bench/testbed/harness.py.

One agent runs per network namespace (`ip netns exec NS tbperf.py --ctl SOCK`)
and is driven over a unix socket (reachable across network namespaces), one
JSON object per line each way. It does many transfers over new TCP
connections without new processes.

Commands
  {"op": "listen", "port": P}          receive on TCP port P (all addresses)
  {"op": "run", "flows": [FLOW...]}     run flows concurrently, reply when all are done
      FLOW = {"dst": IP, "port": P, "size": BYTES, "count": N, "flow": K,
              "start_at": MONOTONIC_S or null, "gap_ms": 0, "gap_jitter_ms": 0, "seed": 0,
              "timeout_s": 60, "fct": "receiver" | "sender", "tag": ANY}
      reply {"ok": true, "rows": [ROW...]}, one ROW per transfer
  {"op": "ping"} / {"op": "quit"}

Transfer (one TCP connection): the sender takes t0 (CLOCK_MONOTONIC, shared by
all namespaces), connects, writes a 16-byte header (id, size) and the payload
(SIZE bytes in all, header included), shuts down its write side and reads the
receiver's report: a JSON object with the receiver's accept / first byte /
last byte times and its tcp_info, sent once the receiver read EOF. The
sender then takes its own TCP_INFO (retransmissions, RTOs, RTT) and closes.
"""
import argparse
import ctypes
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

HDR = struct.Struct("!QQ")
MONO = time.monotonic

# struct tcp_info offsets (include/uapi/linux/tcp.h, Linux 6.7+ for total_rto).
_TI = {
    "state": (0, "B"), "ca_state": (1, "B"), "backoff": (4, "B"),
    "rto_us": (8, "I"), "snd_mss": (16, "I"), "unacked": (24, "I"), "lost": (32, "I"),
    "rtt_us": (68, "I"), "rttvar_us": (72, "I"), "snd_ssthresh": (76, "I"), "snd_cwnd": (80, "I"),
    "rcv_rtt_us": (92, "I"), "total_retrans": (100, "I"), "segs_out": (136, "I"), "segs_in": (140, "I"),
    "min_rtt_us": (148, "I"), "data_segs_in": (152, "I"), "data_segs_out": (156, "I"),
    "rwnd_limited_us": (176, "Q"), "sndbuf_limited_us": (184, "Q"),
    "bytes_retrans": (208, "Q"), "dsack_dups": (216, "I"), "reord_seen": (220, "I"),
    "rcv_ooopack": (224, "I"), "snd_wnd": (228, "I"),
    "total_rto": (240, "H"), "total_rto_recoveries": (242, "H"), "total_rto_time_ms": (244, "I"),
}


def tcp_info(sock):
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return {}
    out = {}
    for k, (off, fmt) in _TI.items():
        n = struct.calcsize(fmt)
        if off + n <= len(raw):
            out[k] = struct.unpack_from("=" + fmt, raw, off)[0]
    return out


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            break
        buf += b
    return bytes(buf)


class Receiver:
    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", port))
        self.sock.listen(256)
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t_acc = MONO()
            threading.Thread(target=self.serve, args=(c, t_acc), daemon=True).start()

    @staticmethod
    def serve(c, t_acc):
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        n, t_first, t_last = 0, 0.0, 0.0
        try:
            c.settimeout(120)
            while True:
                k = c.recv_into(mv)
                if k == 0:
                    break
                t_last = MONO()
                if n == 0:
                    t_first = t_last
                n += k
            ti = tcp_info(c)
            rep = {"t_accept": t_acc, "t_first": t_first, "t_last": t_last, "bytes": n,
                   "r_ooo": ti.get("rcv_ooopack", 0), "r_rcv_rtt_us": ti.get("rcv_rtt_us", 0)}
            c.sendall(json.dumps(rep).encode())
        except OSError:
            pass
        finally:
            c.close()


_PAYLOAD = bytes(4 << 20)


def one_transfer(dst, port, size, xid, timeout, sender_clock=False):
    row = {"ok": 0, "err": ""}
    t0 = MONO()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((dst, port))
        t_conn = MONO()
        size = max(size, HDR.size)
        s.sendall(HDR.pack(xid, size))
        left = size - HDR.size
        mv = memoryview(_PAYLOAD)
        while left > 0:
            k = min(left, len(_PAYLOAD))
            s.sendall(mv[:k])
            left -= k
        t_sent = MONO()
        s.shutdown(socket.SHUT_WR)
        rep = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            rep += b
        t_done = MONO()
        ti = tcp_info(s)
        r = json.loads(rep.decode()) if rep else {}
        if r.get("bytes") != size:
            row["err"] = "receiver got %s of %d bytes" % (r.get("bytes"), size)
        else:
            row["ok"] = 1
        row.update({
            "t0": t0, "conn_ms": (t_conn - t0) * 1e3, "sent_ms": (t_sent - t0) * 1e3,
            "done_ms": (t_done - t0) * 1e3,
            # receiver: its last byte (same CLOCK_MONOTONIC as ours: namespaces of one
            # kernel); sender: its report arrived (a real guest has its own clock).
            "fct_ms": ((t_done if sender_clock else r.get("t_last", t_done)) - t0) * 1e3,
            "rx_first_ms": (r.get("t_first", t_done) - t0) * 1e3,
            "retrans": ti.get("total_retrans", ""), "rto": ti.get("total_rto", ""),
            "rto_recoveries": ti.get("total_rto_recoveries", ""), "dsack": ti.get("dsack_dups", ""),
            "bytes_retrans": ti.get("bytes_retrans", ""), "srtt_ms": ti.get("rtt_us", 0) / 1e3,
            "min_rtt_ms": ti.get("min_rtt_us", 0) / 1e3, "rto_ms": ti.get("rto_us", 0) / 1e3,
            "cwnd": ti.get("snd_cwnd", ""), "segs_out": ti.get("data_segs_out", ""),
            "rwnd_limited_ms": ti.get("rwnd_limited_us", 0) / 1e3,
            "r_ooo": r.get("r_ooo", ""), "r_rcv_rtt_ms": r.get("r_rcv_rtt_us", 0) / 1e3,
        })
        if row["ok"]:
            row["tput_mbps"] = size * 8 / max(row["fct_ms"], 1e-3) / 1e3
    except (OSError, ValueError) as e:
        row["err"] = "%s: %s" % (type(e).__name__, e)
        row["t0"] = t0
        row["fct_ms"] = (MONO() - t0) * 1e3
    finally:
        s.close()
    return row


def run_flow(fl, rows, lock, xid_base):
    if fl.get("start_at"):
        d = fl["start_at"] - MONO()
        if d > 0:
            time.sleep(d)
    rnd = random.Random(fl.get("seed", 0))
    for i in range(int(fl.get("count", 1))):
        r = one_transfer(fl["dst"], int(fl["port"]), int(fl["size"]), xid_base + i, float(fl.get("timeout_s", 60)),
                         fl.get("fct") == "sender")
        r.update({"flow": fl.get("flow", 0), "seq": i, "tag": fl.get("tag")})
        with lock:
            rows.append(r)
        gap = fl.get("gap_ms", 0) + rnd.uniform(0, fl.get("gap_jitter_ms", 0))
        if gap > 0:
            time.sleep(gap / 1e3)


def handle(conn, state):
    f = conn.makefile("rwb", buffering=0)
    for line in f:
        try:
            m = json.loads(line)
            op = m.get("op")
            if op == "listen":
                p = int(m["port"])
                if p not in state["rx"]:
                    state["rx"][p] = Receiver(p)
                rep = {"ok": True}
            elif op == "run":
                rows, lock, ths = [], threading.Lock(), []
                for k, fl in enumerate(m["flows"]):
                    t = threading.Thread(target=run_flow, args=(fl, rows, lock, (k << 32) | (os.getpid() & 0xffff)))
                    t.start()
                    ths.append(t)
                for t in ths:
                    t.join()
                rep = {"ok": True, "rows": rows}
            elif op == "ping":
                rep = {"ok": True, "pid": os.getpid(), "mono": MONO()}
            elif op == "quit":
                f.write(b'{"ok": true}\n')
                os._exit(0)
            else:
                rep = {"ok": False, "error": "unknown op %r" % op}
        except Exception as e:  # report, keep serving
            rep = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        f.write((json.dumps(rep) + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ctl", required=True, help="unix control socket path to create")
    ap.add_argument("--listen", type=int, action="append", default=[], help="TCP port to receive on")
    a = ap.parse_args()
    try:  # die with the harness that started us
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    state = {"rx": {}}
    for p in a.listen:
        state["rx"][p] = Receiver(p)
    try:
        os.unlink(a.ctl)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.ctl)
    srv.listen(8)
    print("tbperf ready pid %d ctl %s" % (os.getpid(), a.ctl), flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c, state), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
