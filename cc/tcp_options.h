// TCP options: strict parsing and in-place rewriting.
//
// Parsing never reads past the option area it is given. A known option with a
// wrong length is skipped and flagged (the length byte still frames the next
// option); a length byte that cannot frame anything (missing, < 2, or running
// past the area) stops parsing, because nothing after it can be trusted.
//
// Rewrites keep the TCP checksum valid with RFC 1624 incremental updates,
// including fields that start at an odd offset (options need not be aligned).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cc/net_headers.h"

namespace vsw::net {

namespace tcpopt {
inline constexpr uint8_t kEol = 0, kNop = 1, kMss = 2, kWscale = 3, kSackPerm = 4, kSack = 5, kTs = 8;
inline constexpr uint8_t kLenMss = 4, kLenWscale = 3, kLenSackPerm = 2, kLenTs = 10;
inline constexpr uint8_t kMaxSackBlocks = 4;  // 2 + 8*4 = 34 <= 40 option bytes
inline constexpr uint8_t kMaxWscale = 14;     // RFC 7323 2.3
inline constexpr size_t kMaxOptLen = 40;
}  // namespace tcpopt

enum OptBit : uint16_t {
  kOptMss = 1u << 0,
  kOptWscale = 1u << 1,
  kOptSackPerm = 1u << 2,
  kOptSack = 1u << 3,
  kOptTs = 1u << 4,
  kOptUnknown = 1u << 5,        // an option kind we do not interpret (skipped)
  kOptBadLen = 1u << 6,         // known kind with the wrong length (skipped)
  kOptTruncated = 1u << 7,      // framing broken: parsing stopped there
  kOptDuplicate = 1u << 8,      // a kind seen twice (first one kept)
  kOptWscaleClamped = 1u << 9,  // shift > 14 was sent; 14 is used
  kOptAfterEol = 1u << 10,      // non-zero bytes after EOL (legal padding is zeros)
};

// Host-order SACK block [left, right).
struct SackBlock {
  uint32_t left;
  uint32_t right;
};

struct TcpOptions {
  uint16_t present = 0;  // OptBit
  uint16_t mss = 0;
  uint8_t wscale = 0;    // already clamped to 14
  uint8_t n_sack = 0;
  // Offset of each option's kind byte from the start of the TCP header (0 = absent).
  // Rewrites use these so they never re-parse.
  uint8_t off_mss = 0, off_wscale = 0, off_ts = 0, off_sack = 0;
  uint32_t ts_val = 0, ts_ecr = 0;
  SackBlock sack[tcpopt::kMaxSackBlocks] = {};

  bool has(uint16_t bit) const { return present & bit; }
  bool malformed() const { return present & (kOptBadLen | kOptTruncated); }
};

// opts: first option byte (TCP header + 20); len: option bytes (hdr_len - 20).
// len is clamped to 40. out is reset first.
void parse_tcp_options(const uint8_t* opts, size_t len, TcpOptions& out);

// Same result as parse_tcp_options, inline for the layouts nearly every
// packet of an established connection carries: none, and Linux's
// NOP NOP TS(10) (12 bytes); anything else goes to the full parser.
inline void parse_tcp_options_fast(const uint8_t* p, size_t len, TcpOptions& out) {
  if (len == 12) {
    uint32_t w0, w1, w2;  // separate loads: a copy through the stack stalls on store forwarding
    __builtin_memcpy(&w0, p, 4);
    if (w0 == 0x0a080101u) {  // 01 01 08 0a (x86: little endian)
      __builtin_memcpy(&w1, p + 4, 4);
      __builtin_memcpy(&w2, p + 8, 4);
      out = TcpOptions{};
      out.present = kOptTs;
      out.off_ts = static_cast<uint8_t>(sizeof(TcpHdr) + 2);
      out.ts_val = __builtin_bswap32(w1);
      out.ts_ecr = __builtin_bswap32(w2);
      return;
    }
  } else if (len == 0) {
    out = TcpOptions{};
    return;
  }
  parse_tcp_options(p, len, out);
}

// Parses the options of th; avail = bytes readable from th (the parser's
// contiguous length minus l4_off). Never reads beyond min(hdr_len, avail).
void parse_tcp_options(const TcpHdr* th, size_t avail, TcpOptions& out);

// How the TCP checksum field of a packet is to be treated by a rewrite.
enum class L4Csum : uint8_t {
  kComplete,   // the field holds the full checksum: update it incrementally
  kOffloaded,  // the field holds only the pseudo-header sum and the device
               // (or the peer's virtio) completes it: header edits need no update
};

// Overwrites n bytes of the TCP header at byte offset off (from the header
// start) and updates the checksum. Fails (returns false, writes nothing) if the
// range is outside hdr_len or overlaps the checksum field.
bool tcp_rewrite(TcpHdr* th, size_t off, const void* src, size_t n, L4Csum mode);

// Lowers the MSS option to max_mss if it is larger. True if the packet changed.
bool tcp_clamp_mss(TcpHdr* th, const TcpOptions& o, uint16_t max_mss, L4Csum mode);
// Replaces TSval/TSecr of an existing timestamp option. False if there is none.
bool tcp_set_timestamps(TcpHdr* th, const TcpOptions& o, uint32_t ts_val, uint32_t ts_ecr, L4Csum mode);
// Replaces the raw (unscaled) window field.
void tcp_set_window(TcpHdr* th, uint16_t raw_window, L4Csum mode);
// Replaces the flag byte (e.g. clearing ECE|CWR on a SYN).
void tcp_set_flags(TcpHdr* th, uint8_t flags, L4Csum mode);

// Builds an option area for packets a stage constructs (ACKs, SYN rewrites).
// Options are laid out as Linux does (NOPs align 32-bit fields). finish() pads
// to a multiple of 4; ok() turns false if anything did not fit in 40 bytes.
class OptionWriter {
 public:
  OptionWriter& mss(uint16_t v);
  OptionWriter& wscale(uint8_t shift);
  OptionWriter& sack_perm();
  OptionWriter& timestamps(uint32_t ts_val, uint32_t ts_ecr);
  OptionWriter& sack(const SackBlock* blocks, unsigned n);
  // Pads with EOL to a 4-byte multiple and returns the length (0 if !ok()).
  size_t finish();
  bool ok() const { return ok_; }
  const uint8_t* data() const { return buf_; }
  size_t size() const { return n_; }

 private:
  bool room(size_t k);
  void put8(uint8_t v) { buf_[n_++] = v; }
  void put16(uint16_t v);
  void put32(uint32_t v);
  uint8_t buf_[tcpopt::kMaxOptLen] = {};
  size_t n_ = 0;
  bool ok_ = true;
};

}  // namespace vsw::net
