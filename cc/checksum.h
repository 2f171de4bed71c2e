// Internet checksum helpers. Incremental updates follow RFC 1624 (eqn. 3):
// HC' = ~(~HC + ~m + m'). All words are in network byte order as stored.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vsw::net {

inline uint32_t csum_add(uint32_t sum, uint16_t w) { return sum + w; }

inline uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Update a stored checksum when one 16-bit word changes from old_w to new_w.
inline uint16_t csum_replace16(uint16_t csum, uint16_t old_w, uint16_t new_w) {
  uint32_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~old_w);
  sum += new_w;
  return static_cast<uint16_t>(~csum_fold(sum));
}

// Same for a 32-bit field (two words).
inline uint16_t csum_replace32(uint16_t csum, uint32_t old_v, uint32_t new_v) {
  csum = csum_replace16(csum, static_cast<uint16_t>(old_v >> 16), static_cast<uint16_t>(new_v >> 16));
  return csum_replace16(csum, static_cast<uint16_t>(old_v), static_cast<uint16_t>(new_v));
}

// One's-complement sum of a buffer (not folded, not inverted).
inline uint32_t csum_partial(const void* data, size_t len, uint32_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len >= 2) {
    uint16_t w;
    __builtin_memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
    if (sum & 0x80000000u) sum = (sum & 0xffff) + (sum >> 16);
  }
  if (len) {
    uint16_t w = 0;
    __builtin_memcpy(&w, p, 1);
    sum += w;
  }
  return sum;
}

}  // namespace vsw::net
