#!/usr/bin/python3
"""md5-checked TCP transfers for the snoop end-to-end test (remote -> guest).

  md5xfer.py serve --port P                      (in the guest namespace)
  md5xfer.py send  --dst IP --port P --count N --sizes 10000,100000,... [--seed S] [--timeout-s 60]

The sender writes an 8-byte length and SIZE pseudo-random bytes (seeded per
transfer), shuts down its write side and reads the receiver's md5 of what it
got. Prints one JSON line per transfer and a summary; exit 0 only if every
transfer completed with a matching digest (corrupt = digest mismatch or short,
stuck = no answer within --timeout-s).
"""
import argparse
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time


def serve(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(64)
    print("listening", flush=True)

    def one(c):
        try:
            c.settimeout(120)
            hdr = b""
            while len(hdr) < 8:
                b = c.recv(8 - len(hdr))
                if not b:
                    return
                hdr += b
            (size,) = struct.unpack("!Q", hdr)
            h, n = hashlib.md5(), 0
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                h.update(b)
                n += len(b)
            c.sendall(json.dumps({"bytes": n, "md5": h.hexdigest()}).encode())
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def send(a):
    sizes = [int(x) for x in a.sizes.split(",")]
    ok = corrupt = stuck = 0
    t_all = time.monotonic()
    for i in range(a.count):
        size = sizes[i % len(sizes)]
        rnd = random.Random(a.seed * 100003 + i)
        data = rnd.randbytes(size)
        want = hashlib.md5(data).hexdigest()
        t0 = time.monotonic()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(a.timeout_s)
        res = {"i": i, "size": size}
        try:
            s.connect((a.dst, a.port))
            s.sendall(struct.pack("!Q", size) + data)
            s.shutdown(socket.SHUT_WR)
            rep = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                rep += b
            r = json.loads(rep.decode()) if rep else {}
            good = r.get("md5") == want and r.get("bytes") == size
            res.update({"ok": good, "ms": round((time.monotonic() - t0) * 1e3, 1), "got": r.get("bytes")})
            if good:
                ok += 1
            else:
                corrupt += 1
        except (socket.timeout, TimeoutError) as e:
            stuck += 1
            res.update({"ok": False, "stuck": True, "err": str(e)})
        except (OSError, ValueError) as e:
            corrupt += 1
            res.update({"ok": False, "err": "%s: %s" % (type(e).__name__, e)})
        finally:
            s.close()
        print(json.dumps(res), flush=True)
    summ = {"transfers": a.count, "ok": ok, "corrupt": corrupt, "stuck": stuck,
            "seconds": round(time.monotonic() - t_all, 1)}
    print("SUMMARY " + json.dumps(summ), flush=True)
    return 0 if ok == a.count else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=5601)
    c = sub.add_parser("send")
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, default=5601)
    c.add_argument("--count", type=int, default=20)
    c.add_argument("--sizes", default="10000,100000,1000000")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--timeout-s", type=float, default=60)
    a = p.parse_args()
    if a.cmd == "serve":
        serve(a.port)
        return 0
    return send(a)


if __name__ == "__main__":
    sys.exit(main())
