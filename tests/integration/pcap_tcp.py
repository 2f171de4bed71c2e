"""Minimal reader of TCP/IPv4 packets in a classic pcap file (tcpdump -w),
for the monitor's reference analyses: no dependency beyond the standard
library (scapy / dpkt are not Debian-packaged for every python here).

packets(path) yields per packet:
  (time s, src ip, sport, dst ip, dport, seq, ack, tcp flags, payload bytes, [(sack left, right)])
seq_lt(a, b): a before b in sequence space.
old_duplicates(path, receiver, cport): for the data the peer at client port
cport sent to `receiver`, every segment that arrived entirely below what the
receiver had already acknowledged (a duplicate: Linux answers it with a DSACK,
TCPDSACKOldSent) and how long before its arrival the receiver's first ACK
covering it had left, ms.
"""
import bisect
import struct


def seq_lt(a, b):
    return ((a - b) & 0xffffffff) > 0x80000000


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        nano = struct.unpack("<I", head[:4])[0] == 0xA1B23C4D
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, caplen, _ = struct.unpack("<IIII", h)
            d = f.read(caplen)
            if d[12:14] != b"\x08\x00":
                continue
            ip = d[14:]
            ihl = (ip[0] & 15) * 4
            if ip[9] != 6:
                continue
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ihl:]
            sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
            off = (tcp[12] >> 4) * 4
            sacks, opts, i = [], tcp[20:off], 0
            while i < len(opts) and opts[i] != 0:
                if opts[i] == 1:
                    i += 1
                    continue
                if i + 1 >= len(opts) or opts[i + 1] < 2:
                    break
                if opts[i] == 5:
                    sacks += [struct.unpack(">II", opts[j:j + 8]) for j in range(i + 2, i + opts[i + 1] - 7, 8)]
                i += opts[i + 1]
            yield (sec + frac / (1e9 if nano else 1e6), ".".join(map(str, ip[12:16])), sport,
                   ".".join(map(str, ip[16:20])), dport, seq, ack, tcp[13], total - ihl - off, sacks)


def old_duplicates(path, receiver, cport):
    # Sequence numbers unwrapped to offsets from the first data byte (64-bit:
    # each value moves the last by its signed 32-bit difference).
    offs, times, gaps = [], [], []  # each new highest ACK the receiver sent: offset, time
    last = {}

    def unwrap(key, x):
        if key not in last:
            last[key] = (x, 0)
            return 0
        prev, off = last[key]
        d = (x - prev) & 0xffffffff
        off += d - (1 << 32) if d >= 1 << 31 else d
        last[key] = (x, off)
        return off

    base = None
    for t, src, sp, dst, dp, seq, ack, fl, plen, _ in packets(path):
        if src == receiver and dp == cport:
            if base is not None and fl & 16:
                a = unwrap("ack", ack) + base
                if not offs or a > offs[-1]:
                    offs.append(a)
                    times.append(t)
        elif dst == receiver and sp == cport and plen > 0:
            if base is None:
                base = 0
                last["ack"] = (seq, 0)  # ACK offsets count from the first data byte too
            end = unwrap("seq", seq) + plen
            if offs and end <= offs[-1]:
                gaps.append((t - times[bisect.bisect_left(offs, end)]) * 1e3)
    return gaps
