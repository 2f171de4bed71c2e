"""Linux tcp_info of the TCP sockets of a network namespace, read over
NETLINK_SOCK_DIAG (what `ss -tin` prints, without starting a process).

The sampler of monitor_validate.py reads the reference and the monitor
back to back: a netlink dump takes well under a millisecond, while
`ip netns exec NS ss -tin` spends 10-30 ms starting up, long enough for a
bulk flow's srtt to move by several percent between the two snapshots.

  d = TcpDiag("nsname")          # the socket is created inside the namespace
  d.dump()  -> {(laddr, lport, raddr, rport): fields}   (the fields `ss -tin` prints, in the units the comparison uses)
  d.get(keys) -> the same for the named sockets only (exact lookups, much faster than a dump)
"""
import ctypes
import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2
INET_DIAG_INFO = 2
CLONE_NEWNET = 0x40000000
TCP_STATES_ALL = 0xFFFFFFFF & ~(1 << 10)  # all but LISTEN

# struct tcp_info (include/uapi/linux/tcp.h), the fields the validation uses:
# name -> (offset, struct format)
TCP_INFO = {
    "flags7": (7, "B"),  # bit 0 of byte 7: delivery_rate_app_limited
    "snd_mss": (16, "I"), "unacked": (24, "I"), "retrans": (36, "I"),
    "rtt": (68, "I"), "rttvar": (72, "I"), "snd_ssthresh": (76, "I"), "snd_cwnd": (80, "I"),
    "total_retrans": (100, "I"), "bytes_acked": (120, "Q"),
    "busy_time": (168, "Q"), "rwnd_limited": (176, "Q"), "sndbuf_limited": (184, "Q"),
    "bytes_sent": (200, "Q"), "bytes_retrans": (208, "Q"),
}
TCP_INFO_MIN_LEN = 216  # up to bytes_retrans (Linux >= 4.19)


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class TcpDiag:
    def __init__(self, netns=None):
        self.seq = 0
        self.buf = bytearray(1 << 20)  # reused: a fresh 1 MB bytes per recv cost ~0.1 ms
        if netns is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
            return
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open("/var/run/netns/" + netns, os.O_RDONLY)
        try:
            _setns(target)
            try:
                self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)

    def close(self):
        self.sock.close()

    def _req(self, flags, key=None):
        """One inet_diag_req_v2 message; key (laddr, lport, raddr, rport) names one socket."""
        self.seq += 1
        sockid = bytes(48)
        if key:
            la, lp, ra, rp = key
            sockid = (struct.pack("!HH", lp, rp) + socket.inet_aton(la) + bytes(12) + socket.inet_aton(ra) + bytes(12)
                      + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF))  # any interface, no cookie
        req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0,
                          TCP_STATES_ALL) + sockid
        return struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, flags, self.seq, 0) + req

    def dump(self):
        """{(laddr, lport, raddr, rport): fields} for every IPv4 TCP socket but listeners.
        The kernel walks its whole established hash (0.2 ms on this machine, empty or not)."""
        self.sock.send(self._req(NLM_F_REQUEST | NLM_F_DUMP))
        return self._replies(None)

    def get(self, keys):
        """{key: fields} of the named sockets (an exact lookup each: tens of us, not a walk);
        a socket that is gone is left out."""
        keys = list(keys)
        if not keys:
            return {}
        self.sock.send(b"".join(self._req(NLM_F_REQUEST, k) for k in keys))
        return self._replies(len(keys))

    def _replies(self, expect):
        """Reads a dump (expect None: until NLMSG_DONE) or `expect` single replies."""
        out = {}
        got = 0
        err = None  # single lookups: raised once all replies are read (none left for the next request)
        while True:
            n = self.sock.recv_into(self.buf)
            data = memoryview(self.buf)[:n]
            off = 0
            while off + 16 <= len(data):
                ln, typ, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
                if ln < 16:
                    return out
                if typ == NLMSG_DONE:
                    return out
                if typ == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, off + 16)
                    if expect is None:
                        raise OSError(-code, "sock_diag: " + os.strerror(-code))
                    if code != -2 and err is None:  # ENOENT: the socket is gone, no error
                        err = OSError(-code, "sock_diag: " + os.strerror(-code))
                    got += 1
                if typ == SOCK_DIAG_BY_FAMILY:
                    got += 1
                    key, info = self._msg(data, off + 16, off + ln)
                    if key and info is not None:
                        out[key] = info
                off += (ln + 3) & ~3
                if expect is not None and got >= expect:
                    if err:
                        raise err
                    return out

    @staticmethod
    def _msg(data, p, end):
        # struct inet_diag_msg: family, state, timer, retrans; sockid (sport, dport
        # big-endian, src[4], dst[4], if, cookie[2]); expires, rqueue, wqueue, uid, inode
        sport, dport = struct.unpack_from("!HH", data, p + 4)
        src = socket.inet_ntoa(bytes(data[p + 8:p + 12]))
        dst = socket.inet_ntoa(bytes(data[p + 24:p + 28]))
        a = p + 72
        info = None
        while a + 4 <= end:
            alen, atyp = struct.unpack_from("=HH", data, a)
            if alen < 4:
                break
            if atyp == INET_DIAG_INFO and alen - 4 >= TCP_INFO_MIN_LEN:
                info = fields(data[a + 4:a + alen])
            a += (alen + 3) & ~3
        return (src, sport, dst, dport), info


def fields(raw):
    """struct tcp_info bytes -> {rtt_us, cwnd, unacked, busy_ms, rwnd_limited_ms, app_limited, ...} (ss -tin's fields)."""
    v = {k: struct.unpack_from("=" + f, raw, o)[0] for k, (o, f) in TCP_INFO.items()}
    r = {"rtt_us": float(v["rtt"]), "rttvar_us": float(v["rttvar"]), "cwnd": v["snd_cwnd"], "mss": v["snd_mss"],
         "unacked": v["unacked"], "bytes_acked": v["bytes_acked"], "bytes_sent": v["bytes_sent"],
         "bytes_retrans": v["bytes_retrans"], "retrans_now": v["retrans"], "retrans_total": v["total_retrans"],
         "busy_ms": v["busy_time"] / 1000.0, "rwnd_limited_ms": v["rwnd_limited"] / 1000.0,
         "sndbuf_limited_ms": v["sndbuf_limited"] / 1000.0, "app_limited": bool(v["flags7"] & 1)}
    if v["snd_ssthresh"] < 0xFFFF:  # ss prints ssthresh only once set (below TCP_INFINITE_SSTHRESH)
        r["ssthresh"] = v["snd_ssthresh"]
    if not r["unacked"]:
        del r["unacked"]  # ss omits a zero unacked
    return r
