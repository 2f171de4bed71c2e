// The one owner of the window advertised toward each side of a connection.
//
// While a packet passes the stages, each stage that wants to limit the
// window it carries proposes a bound in bytes (WindowProposal::propose). Then
// one place, WindowOwner::apply, writes min(bounds) into the TCP header using
// the connection's window scale (rounding down), keeps the advertised right
// edge (ack + window) from moving left (RFC 7323 2.4, RFC 9293 3.8.6
// "shrinking the window"), and fixes the TCP checksum incrementally (RFC 1624).
// Rules and their order: README.md.
#pragma once
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>

#include "cc/net_headers.h"
#include "cc/tcp_options.h"

namespace vsw::services {

inline constexpr uint32_t kNoWindowBound = UINT32_MAX;

// The bounds the stages propose for one packet's window; min wins.
class WindowProposal {
 public:
  void propose(uint32_t bytes) { bound_ = std::min(bound_, bytes); }
  bool any() const { return bound_ != kNoWindowBound; }
  uint32_t bound() const { return bound_; }
  void clear() { bound_ = kNoWindowBound; }

 private:
  uint32_t bound_ = kNoWindowBound;
};

// What has been advertised toward one endpoint (the window field of packets
// travelling to it). 8 bytes: two per flow slot, one per direction.
struct WindowSide {
  static constexpr uint8_t kEdgeKnown = 1;
  uint32_t right_edge = 0;  // furthest ack + (window << shift) advertised so far (sequence space)
  uint8_t shift = 0;        // scale of the field: the shift the *sending* endpoint announced in
                            // its SYN, 0 unless both SYNs carried the option (RFC 7323 2.2)
  uint8_t flags = 0;
  uint16_t reserved = 0;

  void set_shift(uint8_t s) { shift = std::min(s, net::tcpopt::kMaxWscale); }
  bool edge_known() const { return flags & kEdgeKnown; }
};
static_assert(sizeof(WindowSide) == 8);

// Which rule decided a packet's window (each has a counter).
enum class WindowRule : uint8_t {
  kUntouched,     // no bound proposed (or RST): packet unchanged
  kNotBinding,    // the bounds are at or above the packet's own window: unchanged
  kBounded,       // window lowered to min(bounds), rounded down to the scale
  kKeptRightEdge, // the bound would have moved the right edge left: lowered only to the edge (or not at all)
  kNotWritable,   // mbuf shared or not a parsed TCP packet: unchanged (copy it first)
};

struct WindowOwnerStats {
  uint64_t untouched = 0, not_binding = 0, bounded = 0, kept_right_edge = 0, not_writable = 0;
};

// The decision for one packet, without touching it: the raw window to write.
struct WindowDecision {
  uint16_t raw;
  WindowRule rule;
};

// Pure function behind apply(). ack/raw/flags: the packet's fields (host order).
WindowDecision decide_window(const WindowSide& side, uint32_t ack, uint16_t raw, uint8_t flags, uint32_t bound);

// One per PMD (single thread); the per-connection state is the caller's WindowSide.
class WindowOwner {
 public:
  // th: the TCP header of a packet travelling toward the endpoint `side`
  // describes. mode: kOffloaded when the checksum field holds only the
  // pseudo-header sum (then no checksum update is needed).
  WindowRule apply(WindowSide& side, net::TcpHdr* th, const WindowProposal& p, net::L4Csum mode);
  // Same for a parsed mbuf (PktMeta offsets; checksum mode from ol_flags).
  // A shared mbuf (refcnt > 1, indirect) is not written: kNotWritable.
  WindowRule apply(WindowSide& side, rte_mbuf* m, const WindowProposal& p);

  const WindowOwnerStats& stats() const { return stats_; }

 private:
  void count(WindowRule r);
  WindowOwnerStats stats_;
};

}  // namespace vsw::services
