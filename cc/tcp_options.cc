#include "cc/tcp_options.h"

#include <algorithm>
#include <cstring>

#include "cc/checksum.h"

namespace vsw::net {

namespace {

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

// Records the first occurrence of a kind; later copies only raise kOptDuplicate.
inline bool first(TcpOptions& o, uint16_t bit) {
  if (o.present & bit) {
    o.present |= kOptDuplicate;
    return false;
  }
  o.present |= bit;
  return true;
}

inline uint8_t hdr_off(size_t i) { return static_cast<uint8_t>(sizeof(TcpHdr) + i); }

}  // namespace

void parse_tcp_options(const uint8_t* p, size_t len, TcpOptions& o) {
  o = TcpOptions{};
  len = std::min(len, tcpopt::kMaxOptLen);
  size_t i = 0;
  while (i < len) {
    const uint8_t kind = p[i];
    if (kind == tcpopt::kEol) {
      for (size_t j = i + 1; j < len; ++j)
        if (p[j]) {
          o.present |= kOptAfterEol;
          break;
        }
      return;
    }
    if (kind == tcpopt::kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= len) {  // no room for the length byte
      o.present |= kOptTruncated;
      return;
    }
    const uint8_t ol = p[i + 1];
    if (ol < 2 || ol > len - i) {
      o.present |= kOptTruncated;
      return;
    }
    const uint8_t* v = p + i + 2;  // ol - 2 value bytes, all inside [0, len)
    switch (kind) {
      case tcpopt::kMss:
        if (ol != tcpopt::kLenMss) {
          o.present |= kOptBadLen;
        } else if (first(o, kOptMss)) {
          o.mss = rd16(v);
          o.off_mss = hdr_off(i);
        }
        break;
      case tcpopt::kWscale:
        if (ol != tcpopt::kLenWscale) {
          o.present |= kOptBadLen;
        } else if (first(o, kOptWscale)) {
          o.wscale = v[0];
          if (o.wscale > tcpopt::kMaxWscale) {
            o.wscale = tcpopt::kMaxWscale;
            o.present |= kOptWscaleClamped;
          }
          o.off_wscale = hdr_off(i);
        }
        break;
      case tcpopt::kSackPerm:
        if (ol != tcpopt::kLenSackPerm) o.present |= kOptBadLen;
        else first(o, kOptSackPerm);
        break;
      case tcpopt::kSack: {
        const unsigned body = ol - 2u;
        if (body == 0 || body % 8 != 0 || body / 8 > tcpopt::kMaxSackBlocks) {
          o.present |= kOptBadLen;
        } else if (first(o, kOptSack)) {
          o.n_sack = static_cast<uint8_t>(body / 8);
          for (unsigned b = 0; b < o.n_sack; ++b) o.sack[b] = {rd32(v + 8 * b), rd32(v + 8 * b + 4)};
          o.off_sack = hdr_off(i);
        }
        break;
      }
      case tcpopt::kTs:
        if (ol != tcpopt::kLenTs) {
          o.present |= kOptBadLen;
        } else if (first(o, kOptTs)) {
          o.ts_val = rd32(v);
          o.ts_ecr = rd32(v + 4);
          o.off_ts = hdr_off(i);
        }
        break;
      default:
        o.present |= kOptUnknown;
        break;
    }
    i += ol;
  }
}

void parse_tcp_options(const TcpHdr* th, size_t avail, TcpOptions& out) {
  size_t hl = std::min<size_t>(th->hdr_len(), avail);
  if (hl <= sizeof(TcpHdr)) {
    out = TcpOptions{};
    return;
  }
  parse_tcp_options(reinterpret_cast<const uint8_t*>(th) + sizeof(TcpHdr), hl - sizeof(TcpHdr), out);
}

bool tcp_rewrite(TcpHdr* th, size_t off, const void* src, size_t n, L4Csum mode) {
  constexpr size_t kCsumOff = 16;
  const size_t hl = th->hdr_len();
  if (n == 0 || off > hl || n > hl - off) return false;
  if (off < kCsumOff + 2 && off + n > kCsumOff) return false;
  auto* base = reinterpret_cast<uint8_t*>(th);
  if (mode == L4Csum::kOffloaded) {
    std::memcpy(base + off, src, n);
    return true;
  }
  // Sum the 16-bit words (aligned to the header start, as the checksum sees
  // them) that cover the change, before and after. hdr_len is a multiple of
  // 4, so rounding the end up to a word never leaves the header.
  const size_t a = off & ~size_t{1};
  const size_t b = (off + n + 1) & ~size_t{1};
  const uint16_t before = csum_fold(csum_partial(base + a, b - a));
  std::memcpy(base + off, src, n);
  const uint16_t after = csum_fold(csum_partial(base + a, b - a));
  uint32_t sum = static_cast<uint16_t>(~th->csum);
  sum += static_cast<uint16_t>(~before);
  sum += after;
  th->csum = static_cast<uint16_t>(~csum_fold(sum));
  return true;
}

bool tcp_clamp_mss(TcpHdr* th, const TcpOptions& o, uint16_t max_mss, L4Csum mode) {
  if (!o.has(kOptMss) || o.mss <= max_mss) return false;
  const uint8_t v[2] = {static_cast<uint8_t>(max_mss >> 8), static_cast<uint8_t>(max_mss)};
  return tcp_rewrite(th, o.off_mss + 2u, v, 2, mode);
}

bool tcp_set_timestamps(TcpHdr* th, const TcpOptions& o, uint32_t ts_val, uint32_t ts_ecr, L4Csum mode) {
  if (!o.has(kOptTs)) return false;
  const uint32_t v[2] = {bswap(ts_val), bswap(ts_ecr)};
  return tcp_rewrite(th, o.off_ts + 2u, v, 8, mode);
}

void tcp_set_window(TcpHdr* th, uint16_t raw_window, L4Csum mode) {
  const be16 w = be16::from(raw_window);
  tcp_rewrite(th, 14, &w, 2, mode);
}

void tcp_set_flags(TcpHdr* th, uint8_t flags, L4Csum mode) { tcp_rewrite(th, 13, &flags, 1, mode); }

bool OptionWriter::room(size_t k) {
  if (!ok_ || n_ + k > sizeof(buf_)) ok_ = false;
  return ok_;
}
void OptionWriter::put16(uint16_t v) {
  put8(static_cast<uint8_t>(v >> 8));
  put8(static_cast<uint8_t>(v));
}
void OptionWriter::put32(uint32_t v) {
  put16(static_cast<uint16_t>(v >> 16));
  put16(static_cast<uint16_t>(v));
}

OptionWriter& OptionWriter::mss(uint16_t v) {
  if (room(4)) {
    put8(tcpopt::kMss);
    put8(tcpopt::kLenMss);
    put16(v);
  }
  return *this;
}

OptionWriter& OptionWriter::wscale(uint8_t shift) {
  if (room(4)) {
    put8(tcpopt::kNop);
    put8(tcpopt::kWscale);
    put8(tcpopt::kLenWscale);
    put8(std::min(shift, tcpopt::kMaxWscale));
  }
  return *this;
}

OptionWriter& OptionWriter::sack_perm() {
  if (room(4)) {
    put8(tcpopt::kNop);
    put8(tcpopt::kNop);
    put8(tcpopt::kSackPerm);
    put8(tcpopt::kLenSackPerm);
  }
  return *this;
}

OptionWriter& OptionWriter::timestamps(uint32_t ts_val, uint32_t ts_ecr) {
  if (room(12)) {
    put8(tcpopt::kNop);
    put8(tcpopt::kNop);
    put8(tcpopt::kTs);
    put8(tcpopt::kLenTs);
    put32(ts_val);
    put32(ts_ecr);
  }
  return *this;
}

OptionWriter& OptionWriter::sack(const SackBlock* blocks, unsigned n) {
  if (n == 0 || n > tcpopt::kMaxSackBlocks) {
    ok_ = false;
    return *this;
  }
  if (room(4 + 8 * n)) {
    put8(tcpopt::kNop);
    put8(tcpopt::kNop);
    put8(tcpopt::kSack);
    put8(static_cast<uint8_t>(2 + 8 * n));
    for (unsigned i = 0; i < n; ++i) {
      put32(blocks[i].left);
      put32(blocks[i].right);
    }
  }
  return *this;
}

size_t OptionWriter::finish() {
  if (!ok_) return 0;
  while (n_ % 4) put8(tcpopt::kEol);
  return n_;
}

}  // namespace vsw::net
