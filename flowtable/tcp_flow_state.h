// Per-connection TCP state kept by the flow table: the hot entry every TCP
// stage reads (128 bytes, two cache lines, counters included), its compact
// key, and the value types of the table's API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cc/flow_key.h"
#include "cc/tcp_seq.h"

namespace vsw {

enum class TcpState : uint8_t {
  kFree = 0,
  kSynSent,      // initiator's SYN seen
  kSynRecv,      // SYN-ACK seen, final ACK not yet
  kMidOneWay,    // created mid-stream, only one direction seen so far
  kEstablished,
  kFinWait,      // one side sent FIN
  kClosed,       // both sides sent FIN: lingering before removal
  kReset,        // RST seen: lingering before removal
};
const char* tcp_state_name(TcpState s);

// Embryonic entries (nothing proves a live two-way connection yet) live in a
// separate LRU with their own budget and are the first to be evicted: this is
// what a SYN flood or an ACK scan with random tuples can create.
constexpr bool tcp_state_embryonic(TcpState s) {
  return s == TcpState::kSynSent || s == TcpState::kSynRecv || s == TcpState::kMidOneWay;
}
constexpr bool tcp_state_closing(TcpState s) {
  return s == TcpState::kFinWait || s == TcpState::kClosed || s == TcpState::kReset;
}

namespace dirflag {
inline constexpr uint16_t kSeen = 1u << 0;
inline constexpr uint16_t kSynSeen = 1u << 1;
inline constexpr uint16_t kFinSeen = 1u << 2;
inline constexpr uint16_t kRstSent = 1u << 3;
inline constexpr uint16_t kIsnKnown = 1u << 4;   // isn is the real ISN (else: first seq seen)
inline constexpr uint16_t kSeqValid = 1u << 5;
inline constexpr uint16_t kAckValid = 1u << 6;
inline constexpr uint16_t kWinValid = 1u << 7;
inline constexpr uint16_t kMssKnown = 1u << 8;   // from the SYN (else: largest segment seen)
inline constexpr uint16_t kWsOffered = 1u << 9;  // its SYN carried a window-scale option
inline constexpr uint16_t kWsKnown = 1u << 10;   // wscale is exact (else: a lower bound)
inline constexpr uint16_t kSackOffered = 1u << 11;
inline constexpr uint16_t kSackOk = 1u << 12;    // negotiated, or SACK blocks seen
inline constexpr uint16_t kTsOffered = 1u << 13;
inline constexpr uint16_t kTsOk = 1u << 14;      // negotiated, or timestamps seen
}  // namespace dirflag

// What one endpoint has sent and advertised, as seen by the switch.
struct TcpDirState {
  uint32_t isn;
  uint32_t next_seq;  // highest seq + len (+SYN/FIN) sent: next expected sequence
  uint32_t ack;       // highest ACK sent
  uint32_t win;       // last advertised receive window, bytes (scaled as best known)
  uint32_t ts_val;    // last TSval sent
  uint32_t ts_ecr;    // last TSecr sent
  uint16_t mss;       // from its SYN, else the largest segment seen from it
  uint16_t win_raw;   // last raw window field
  uint8_t wscale;     // shift it applies to its windows
  uint8_t pad;
  uint16_t flags;     // dirflag

  bool has(uint16_t f) const { return flags & f; }
  net::Seq next() const { return net::Seq(next_seq); }
  net::Seq acked() const { return net::Seq(ack); }
};
static_assert(sizeof(TcpDirState) == 32);

namespace connflag {
inline constexpr uint8_t kMidstream = 1u << 0;         // first packet seen was not a SYN / SYN-ACK
inline constexpr uint8_t kInitiator1 = 1u << 1;        // endpoint 1 opened the connection
inline constexpr uint8_t kInitiatorGuessed = 1u << 2;  // mid-stream: guessed from the ports
inline constexpr uint8_t kSynAckFirst = 1u << 3;       // created on a SYN-ACK (SYN missed)
}  // namespace connflag

// Per-connection counters, in the entry's first line (the lookup fetches
// that line anyway: no separate array, no extra cache miss per packet).
struct TcpConnStats {
  uint64_t pkts[2];   // by sending endpoint
  uint64_t bytes[2];  // payload bytes by sending endpoint
};
static_assert(sizeof(TcpConnStats) == 32);

// The key as the entry stores it (16 bytes): all of an IPv4 key; for IPv6
// the ports, VLAN, family and protocol, the addresses being in the table's
// IPv6 key array (TcpFlowTable::key(slot) gives the full FlowKey either way).
// Bytes 8..15 are FlowKey's last word; a4 the first four bytes of each address.
struct alignas(8) ConnKey {
  uint32_t a4[2];   // IPv4: addr[0][0..3], addr[1][0..3] (network order); IPv6: 0
  uint16_t port[2]; // host byte order
  uint16_t vlan;
  uint8_t family;   // 4 or 6
  uint8_t proto;

  bool is_v4() const { return family == 4; }
};
static_assert(sizeof(ConnKey) == 16);

// The two words of the ConnKey of k (w1: FlowKey's last word, w0: both IPv4
// addresses; 0 for IPv6, whose addresses are compared in full separately).
inline void conn_key_words(const FlowKey& k, uint64_t& w0, uint64_t& w1) {
  uint64_t a, b;
  std::memcpy(&a, &k, 8);
  std::memcpy(&b, reinterpret_cast<const char*>(&k) + 16, 8);
  std::memcpy(&w1, reinterpret_cast<const char*>(&k) + 32, 8);
  w0 = k.is_v4() ? (a | (b << 32)) : 0;  // an IPv4 key's address tails are zero
}

// The hot entry, two cache lines: what a lookup compares and the counters
// every packet updates in the first, the per-direction state in the second.
// d[] is indexed by key endpoint, so d[seg.dir] is the sender of a segment
// and d[seg.dir ^ 1] its receiver. (Aging-list links live in a parallel
// array of the table: only list operations touch them.)
struct alignas(64) TcpConn {
  ConnKey key;
  uint32_t created;    // table time (ms)
  uint32_t last_seen;  // table time (ms)
  uint32_t gen;        // bumped each time the slot is freed: (slot, gen) names one connection
  TcpState state;
  uint8_t flags;       // connflag
  uint16_t pad;
  TcpConnStats stats;
  TcpDirState d[2];

  uint8_t initiator() const { return (flags & connflag::kInitiator1) ? 1 : 0; }
  TcpDirState& sender(uint8_t dir) { return d[dir & 1]; }
  TcpDirState& receiver(uint8_t dir) { return d[(dir & 1) ^ 1]; }
  const TcpDirState& sender(uint8_t dir) const { return d[dir & 1]; }
  const TcpDirState& receiver(uint8_t dir) const { return d[(dir & 1) ^ 1]; }
};
static_assert(sizeof(TcpConn) == 128, "hot state must stay within two cache lines");
static_assert(offsetof(TcpConn, d) == 64, "lookup fields and counters in the first line, d[] in the second");

enum class RemoveReason : uint8_t {
  kIdle = 0,          // established / half-closed connection timed out
  kEmbryonicTimeout,  // handshake or one-way mid-stream entry timed out
  kEvicted,           // embryonic entry evicted to make room
  kClosed,            // both FINs seen, linger over
  kReset,             // RST seen, linger over
  kRecycled,          // a new SYN reused the tuple of a closing connection
  kFlushed,           // control plane
  kCount
};
const char* remove_reason_name(RemoveReason r);

// Per-packet outcome of TcpFlowTable::track.
enum TrackEvent : uint16_t {
  kEvCreated = 1u << 0,
  kEvMidstream = 1u << 1,     // created from a packet that was not SYN / SYN-ACK
  kEvStateChange = 1u << 2,
  kEvRefused = 1u << 3,       // new connection refused: table full (pass the packet untouched)
  kEvUntracked = 1u << 4,     // no entry and this packet does not create one (RST, FIN, or mid-stream off)
  kEvSeqOld = 1u << 5,        // all of the segment's sequence space was seen before (retransmission / reordering)
  kEvSeqGap = 1u << 6,        // segment starts beyond next_seq (hole: loss upstream or reordering)
  kEvDupAck = 1u << 7,        // pure ACK repeating the highest ACK with data outstanding
  kEvAckUnseen = 1u << 8,     // ACKs sequence space the switch never saw
  kEvRstIgnored = 1u << 9,    // RST far outside the window: not acted on
  kEvWsInferred = 1u << 10,   // a window-scale lower bound was raised
  kEvRecycled = 1u << 11,     // an old closing entry was replaced by this SYN
};

struct TrackResult {
  uint32_t slot;    // TcpFlowTable::kNoSlot when not tracked
  uint8_t dir;      // the segment's sender (key endpoint index)
  uint8_t pad;
  uint16_t events;  // TrackEvent
  bool tracked() const { return slot != ~0u; }
};

// Control-plane copy of one connection.
struct TcpConnView {
  uint32_t slot;
  uint32_t gen;
  uint32_t age_ms;
  uint32_t idle_ms;
  FlowKey key;         // the full key (conn.key holds only the IPv4 addresses)
  TcpConn conn;        // counters included (conn.stats)
};

}  // namespace vsw
