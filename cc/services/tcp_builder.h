// TCP packet builder shared by the stages: pure ACKs, window updates,
// duplicate ACKs (with SACK blocks) and retransmissions of held segments, as
// complete Ethernet [802.1Q] / IPv4 (or IPv6) / TCP frames in an mbuf from the
// caller's pool, with PktMeta filled as the parser would fill it.
//
// A stage builds one TcpTemplate per flow direction (MACs, addresses, ports,
// VLAN: what never changes) and per packet fills only TcpFields (seq, ack,
// window, flags, options). Checksums, buffer ownership: README.md.
#pragma once
#include <rte_mbuf.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "cc/net_headers.h"
#include "cc/pkt_meta.h"
#include "cc/tcp_options.h"
#include "cc/tcp_seq.h"

namespace vsw::services {

// One end of a connection as it appears on the wire.
struct TcpEndpoint {
  net::Mac mac{};
  std::array<uint8_t, 16> ip{};  // network order; IPv4 uses ip[0..3]
  uint16_t port = 0;             // host order

  static TcpEndpoint v4(net::Mac mac, uint32_t ip_host_order, uint16_t port);
};

// The addresses of one direction of a flow: src sends, dst receives.
struct TcpFlowAddrs {
  TcpEndpoint src, dst;
  uint8_t family = 4;          // 4 or 6
  bool tagged = false;         // carry an 802.1Q tag
  uint16_t vlan_tci = 0;       // host order (PCP, DEI, VID); written only if tagged
  uint16_t in_port = 0xffff;   // PktMeta::in_port of built packets (0xffff: kNoPort, built by a stage)
  uint8_t ttl = 64;            // IPv4 TTL / IPv6 hop limit

  // The other direction of the same flow (src and dst swapped).
  TcpFlowAddrs reversed() const {
    TcpFlowAddrs r = *this;
    r.src = dst;
    r.dst = src;
    return r;
  }
};

// Everything of a built packet that does not change per packet: the header
// bytes (length, checksum, seq/ack/flags/window fields zero), the checksum
// sums over the constant words, and the PktMeta the parser gives such a packet.
class TcpTemplate {
 public:
  static constexpr uint16_t kMaxBase = 18 + 40 + 20;  // Ethernet+802.1Q, IPv6, TCP without options

  // False (template stays invalid) for a family other than 4 or 6.
  bool init(const TcpFlowAddrs& a);
  bool valid() const { return base_len_ != 0; }
  bool is_v4() const { return l3_len_ == sizeof(net::Ipv4Hdr); }
  uint16_t l2_len() const { return l2_len_; }
  uint16_t l3_len() const { return l3_len_; }
  uint16_t base_len() const { return base_len_; }  // headers up to the TCP options
  const PktMeta& meta() const { return meta_; }

 private:
  friend class TcpBuilder;
  bool fill_meta();
  alignas(16) uint8_t base_[80] = {};  // kMaxBase bytes used at most, the rest stays zero
  uint32_t ip_sum_ = 0;      // IPv4 header words, total length and checksum zero (unfolded)
  uint32_t pseudo_sum_ = 0;  // pseudo-header: addresses + protocol, without the TCP length
  PktMeta meta_{};
  uint8_t l2_len_ = 0, l3_len_ = 0, base_len_ = 0;
};
static_assert(sizeof(TcpTemplate) <= 128, "a template is two cache lines at most");

// The 16-bit window field. from_bytes rounds down: never more than asked.
struct TcpWindow {
  uint16_t raw = 0;
  static constexpr TcpWindow from_raw(uint16_t r) { return TcpWindow{r}; }
  static constexpr TcpWindow from_bytes(uint32_t bytes, uint8_t shift) {
    shift = std::min(shift, net::tcpopt::kMaxWscale);
    return TcpWindow{static_cast<uint16_t>(std::min<uint32_t>(bytes >> shift, 0xffff))};
  }
};

// The per-packet part. Options go out as Linux lays them out: NOP NOP TS,
// then NOP NOP SACK. SACK blocks beyond what fits in 40 option bytes (4
// without timestamps, 3 with) are left off and counted (sack_clipped).
struct TcpFields {
  net::Seq seq{};
  net::Seq ack{};
  TcpWindow window{};
  uint8_t flags = net::tcpflag::kAck;
  bool has_ts = false;
  uint32_t ts_val = 0, ts_ecr = 0;
  const net::SackBlock* sack = nullptr;  // host order; first block first (RFC 2018: the most recent)
  uint8_t n_sack = 0;
};

// The payload of a retransmission: bytes [off, off + len) of a held packet
// (typically off = meta(m).l4_off + meta(m).l4_len). The builder never writes
// into m and never frees it; kClone takes one reference per segment it uses.
struct HeldPayload {
  rte_mbuf* m = nullptr;
  uint32_t off = 0;
  uint32_t len = 0;
};

enum class PayloadMode : uint8_t {
  kCopy,   // bytes copied (into the header mbuf if they fit, else a copied chain)
  kClone,  // header mbuf + indirect mbufs attached to the held data (refcnt + 1 each)
};

enum class CsumMode : uint8_t {
  kSoftware,  // IPv4 and TCP checksums complete in the packet
  kOffload,   // IPv4 complete; TCP field = pseudo-header sum, ol_flags ask for
              // RTE_MBUF_F_TX_TCP_CKSUM (the egress fix-up completes it where the port cannot)
};

enum class BuildStatus : uint8_t {
  kOk,
  kNoMbuf,      // the pool is empty: nothing allocated is kept
  kNoRoom,      // the pool's data room cannot hold the headers, or the chain is too long
  kBadRequest,  // invalid template, payload range outside the held packet, or > 64 KB IP packet
};

// A built packet, owned by the caller (emit it or free it), or why not.
struct Built {
  rte_mbuf* m = nullptr;
  BuildStatus status = BuildStatus::kOk;
  explicit operator bool() const { return m != nullptr; }
};

struct TcpBuilderStats {
  uint64_t acks = 0, window_updates = 0, dup_acks = 0, retransmits = 0;
  uint64_t no_mbuf = 0, no_room = 0, bad_request = 0;
  uint64_t sack_clipped = 0;  // packets sent with fewer SACK blocks than asked
};

// One per stage and PMD (single thread). The pool must come from
// pkt_pool_create (PktMeta lives in the mbuf private area).
class TcpBuilder {
 public:
  explicit TcpBuilder(rte_mempool* pool, CsumMode csum = CsumMode::kSoftware) : pool_(pool), csum_(csum) {}

  // The three header-only packets are the same on the wire; what they mean
  // (and which counter they raise) is the caller's: an ACK advancing f.ack; a
  // window update (same ack, new window); a duplicate ACK (same ack and
  // window, usually with SACK blocks).
  Built ack(const TcpTemplate& t, const TcpFields& f) { return header_only(t, f, stats_.acks); }
  Built window_update(const TcpTemplate& t, const TcpFields& f) { return header_only(t, f, stats_.window_updates); }
  Built dup_ack(const TcpTemplate& t, const TcpFields& f) { return header_only(t, f, stats_.dup_acks); }
  // A held segment's bytes sent again with sequence number f.seq.
  Built retransmit(const TcpTemplate& t, const TcpFields& f, const HeldPayload& h, PayloadMode mode);

  const TcpBuilderStats& stats() const { return stats_; }
  rte_mempool* pool() const { return pool_; }
  CsumMode csum_mode() const { return csum_; }

 private:
  Built header_only(const TcpTemplate& t, const TcpFields& f, uint64_t& counter);
  Built fail(BuildStatus s);
  rte_mbuf* start(const TcpTemplate& t, const TcpFields& f, uint32_t payload_len, uint16_t& tcp_hl, BuildStatus& st);
  BuildStatus attach_payload(rte_mbuf* m, const HeldPayload& h, PayloadMode mode);
  BuildStatus clone_range(rte_mbuf* m, const HeldPayload& h);
  void finish(rte_mbuf* m, const TcpTemplate& t, uint16_t tcp_hl, uint32_t payload_len);

  rte_mempool* pool_;
  CsumMode csum_;
  TcpBuilderStats stats_;
};

}  // namespace vsw::services
