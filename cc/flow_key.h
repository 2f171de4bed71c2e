// Canonical bidirectional connection key (IPv4 and IPv6).
//
// Both directions of a connection produce the same key: the two endpoints
// (address, port) are stored in a fixed order, the "lower" one first, and the
// packet's direction is returned separately (dir 0 = sent by endpoint 0).
// One fixed 40-byte layout serves both families so one table holds both and
// equality is five 64-bit compares; IPv4 leaves the address tails zero and
// hashes only its 16 meaningful bytes.
//
// The VLAN is part of the key: tenants on different VLANs may reuse the same
// addresses. The key hash is deliberately different from PktMeta::flow_hash
// (which picks the owner PMD): if both used one hash, each PMD's table would
// only ever fill the buckets whose low bits select that PMD.
#pragma once
#include <nmmintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cc/net_headers.h"
#include "cc/parse.h"

namespace vsw {

struct alignas(8) FlowKey {
  uint8_t addr[2][16];  // endpoint 0 (lower), endpoint 1; network byte order
  uint16_t port[2];     // host byte order
  uint16_t vlan;        // 12-bit VLAN id, 0 = untagged
  uint8_t family;       // 4 or 6
  uint8_t proto;        // net::kProtoTcp / kProtoUdp

  bool is_v4() const { return family == 4; }

  friend bool operator==(const FlowKey& a, const FlowKey& b) {
    uint64_t x[5], y[5];
    std::memcpy(x, &a, sizeof(x));
    std::memcpy(y, &b, sizeof(y));
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
  }
};
static_assert(sizeof(FlowKey) == 40);
// flow_key_build writes the key as five little-endian words (x86 only, as the CRC).
static_assert(offsetof(FlowKey, port) == 32 && offsetof(FlowKey, vlan) == 36 && offsetof(FlowKey, family) == 38 &&
              offsetof(FlowKey, proto) == 39);

// CRC's low bits are weak on keys differing in one field; fold the halves.
inline uint32_t flow_key_hash_fold(uint64_t h) {
  uint32_t x = static_cast<uint32_t>(h);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  return x;
}

// flow_key_hash of an IPv4 key from its words w[0], w[2] and w[4] (w[1] and
// w[3] are zero): what flow_key_build computes from registers.
inline uint32_t flow_key_hash_v4(uint64_t w0, uint64_t w2, uint64_t w4) {
  uint64_t h = _mm_crc32_u64(0x6a09e667u, w0 | (w2 << 32));
  h = _mm_crc32_u64(h, w4);
  return flow_key_hash_fold(h);
}

inline uint32_t flow_key_hash(const FlowKey& k) {
  uint64_t w[5];
  std::memcpy(w, &k, sizeof(w));
  // addr[0][0..3] sits in w[0], addr[1][0..3] in w[2]; ports/vlan/family/proto in w[4].
  if (k.is_v4()) return flow_key_hash_v4(w[0], w[2], w[4]);
  uint64_t h = _mm_crc32_u64(0x6a09e667u, w[0]);
  h = _mm_crc32_u64(h, w[1]);
  h = _mm_crc32_u64(h, w[2]);
  h = _mm_crc32_u64(h, w[3]);
  h = _mm_crc32_u64(h, w[4]);
  return flow_key_hash_fold(h);
}

// Builds the key of the TCP/UDP packet at frame. l3_off/l4_off/pkt_flags/vlan
// must come from parse_frame over this same frame (offsets are trusted, they
// are ours, not the guest's). Returns false for anything that is not an
// unfragmented, well-formed TCP/UDP packet. dir: 0 if the source is endpoint 0.
// hash (optional): flow_key_hash(k), computed on the way (for IPv4 from
// registers: hashing the stored key would read back wide words just written
// narrow, a store-forwarding stall).
inline bool flow_key_build(const uint8_t* frame, uint16_t l3_off, uint16_t l4_off, uint16_t pkt_flags, uint16_t vlan,
                           FlowKey& k, uint8_t& dir, uint32_t* hash = nullptr) {
  using namespace net;
  // The IPv4 key's last word without the ports, built first and kept whole:
  // built from the 16-bit vlan at its use, GCC spilled the vlan as 16 bits
  // and reloaded 64 (a store-forwarding stall on every packet of the PMD's
  // track_flows, ~20 % of its cycles in perf).
  uint64_t tail = (uint64_t(vlan & 0xfff) << 32) | (uint64_t(4) << 48);
  asm volatile("" : "+r"(tail));  // computed now, as one 64-bit value (codegen-dependent: recheck with perf)
  if ((pkt_flags & (kFlagMalformed | kFlagFragment)) || !(pkt_flags & (kFlagTcp | kFlagUdp)) || l4_off == 0)
    return false;
  if (!(pkt_flags & (kFlagIPv4 | kFlagIPv6))) return false;
  const uint8_t* l4 = frame + l4_off;
  const uint16_t sp = static_cast<uint16_t>((l4[0] << 8) | l4[1]);
  const uint16_t dp = static_cast<uint16_t>((l4[2] << 8) | l4[3]);
  const uint8_t proto = (pkt_flags & kFlagTcp) ? kProtoTcp : kProtoUdp;
  if (pkt_flags & kFlagIPv4) {  // fast path: compare the addresses as host-order integers
    uint32_t sa, da;
    std::memcpy(&sa, frame + l3_off + 12, 4);
    std::memcpy(&da, frame + l3_off + 16, 4);
    const uint64_t se = (uint64_t(__builtin_bswap32(sa)) << 16) | sp;
    const uint64_t de = (uint64_t(__builtin_bswap32(da)) << 16) | dp;
    dir = se > de ? 1 : 0;
    // The key's five words, built in registers and stored whole.
    const uint64_t w0 = dir ? da : sa, w2 = dir ? sa : da;
    const uint64_t p0 = dir ? dp : sp, p1 = dir ? sp : dp;
    const uint64_t w4 = p0 | (p1 << 16) | tail | (uint64_t(proto) << 56);
    // One 64-bit store per word (not via an array on the stack: a wide copy
    // of it would wait for its narrow stores).
    char* kp = reinterpret_cast<char*>(&k);
    const uint64_t zero = 0;
    std::memcpy(kp, &w0, 8);
    std::memcpy(kp + 8, &zero, 8);
    std::memcpy(kp + 16, &w2, 8);
    std::memcpy(kp + 24, &zero, 8);
    std::memcpy(kp + 32, &w4, 8);
    if (hash) *hash = flow_key_hash_v4(w0, w2, w4);
    return true;
  }
  std::memset(&k, 0, sizeof(k));
  const uint8_t* sa = frame + l3_off + 8;
  const uint8_t* da = frame + l3_off + 24;
  const int c = std::memcmp(sa, da, 16);
  dir = (c > 0 || (c == 0 && sp > dp)) ? 1 : 0;
  std::memcpy(k.addr[dir], sa, 16);
  std::memcpy(k.addr[dir ^ 1], da, 16);
  k.family = 6;
  k.port[dir] = sp;
  k.port[dir ^ 1] = dp;
  k.vlan = vlan & 0xfff;
  k.proto = proto;
  if (hash) *hash = flow_key_hash(k);
  return true;
}

// Same, from anything shaped like PktMeta (l3_off, l4_off, flags, vlan).
template <typename Meta>
inline bool flow_key_from_meta(const uint8_t* frame, const Meta& m, FlowKey& k, uint8_t& dir) {
  return flow_key_build(frame, m.l3_off, m.l4_off, m.flags, m.vlan, k, dir);
}

}  // namespace vsw
