// One ops interface for TCP congestion control, in the shape of Linux
// tcp_congestion_ops and VPP tcp_cc_algorithm_t: a per-flow state slot plus a
// small table of functions per algorithm. Windows are in bytes, times in µs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>

namespace vsw::congestion {

// Sequence numbers wrap modulo 2^32: a is after b when the signed distance is positive.
constexpr bool seq_after(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

inline constexpr uint32_t kNoRttSample = std::numeric_limits<uint32_t>::max();
inline constexpr uint32_t kInfiniteSsthresh = std::numeric_limits<uint32_t>::max();
inline constexpr uint32_t kMaxCwnd = 1u << 30;  // keeps byte arithmetic far from overflow

struct CcConfig {
  uint32_t mss = 1460;                            // SMSS, bytes
  uint32_t initial_window = 0;                    // bytes; 0 = RFC 6928: min(10*MSS, max(2*MSS, 14600))
  uint32_t initial_ssthresh = kInfiniteSsthresh;  // RFC 5681: "arbitrarily high"
  uint32_t snd_una = 0;        // first unacknowledged sequence when control starts (ISS+1, or mid-stream)
  uint32_t abc_limit_segments = 2;  // RFC 3465 L per ACK in slow start (1 = RFC 5681 standards track)
  double dctcp_initial_alpha = 1.0;    // RFC 8257 sec 3.3: DCTCP.Alpha starts at 1
  bool cubic_fast_convergence = true;  // RFC 9438 sec 4.7 (SHOULD; off for a lone flow)
};

// What one arriving ACK tells the sender.
struct AckSample {
  uint64_t now_us = 0;
  uint32_t ack_seq = 0;       // cumulative acknowledgment carried by the ACK
  uint32_t snd_nxt = 0;       // next sequence the sender will send
  uint32_t bytes_acked = 0;   // newly acknowledged by ack_seq; 0 on a duplicate ACK
  uint32_t bytes_marked = 0;  // of bytes_acked, bytes the receiver reported CE-marked
                              // (per-ACK ECE echo: ece ? bytes_acked : 0; AccECN: CE byte delta)
  uint32_t flight_bytes = 0;  // still outstanding after this ACK
  uint32_t rtt_us = kNoRttSample;  // a valid sample (Karn), else kNoRttSample; for delay-based
                                   // algorithms and HyStart++, unused by the four here
  uint32_t srtt_us = 0;            // the flow's RttEstimator::srtt_us(); CUBIC's RTT
  bool dup_ack = false;       // RFC 5681 duplicate ACK
  bool ece = false;           // ECN-Echo: the ACK reports congestion
};

enum class CongestionKind : uint8_t {
  kLoss,     // 3 duplicate ACKs or SACK-detected loss: enter fast retransmit / recovery
  kEcnEcho,  // ECN-Echo: reduce without retransmitting (RFC 3168 sec 6.1.2)
};

struct CongestionEvent {
  CongestionKind kind = CongestionKind::kLoss;
  uint64_t now_us = 0;
  uint32_t ack_seq = 0;       // current cumulative ACK (snd_una)
  uint32_t snd_nxt = 0;       // next sequence the sender will send
  uint32_t flight_bytes = 0;  // RFC 5681 FlightSize
};

struct TimeoutEvent {
  uint64_t now_us = 0;
  uint32_t snd_nxt = 0;
  uint32_t flight_bytes = 0;  // FlightSize when the retransmission timer fired
};

// What the caller must do after an ACK, beyond sending what cwnd allows.
enum class AckOutcome : uint8_t {
  kNone,
  kPartialAck,    // NewReno partial ACK: still in recovery, retransmit the next hole
  kRecoveryExit,  // this ACK ended fast recovery
};

struct CcState;

// One table per algorithm; a flow's CcState points at it. An indirect call per
// event, as in Linux: no virtual base, so the state stays a plain copyable slot.
struct CcOps {
  const char* name;
  void (*init)(CcState&, const CcConfig&);
  AckOutcome (*on_ack)(CcState&, const AckSample&);
  // Returns true when the event was acted on: for kLoss, fast-retransmit now.
  bool (*on_congestion_event)(CcState&, const CongestionEvent&);
  void (*on_timeout)(CcState&, const TimeoutEvent&);
};

inline constexpr std::size_t kCcPrivateBytes = 88;

// A flow's congestion state: the common RFC 5681 variables, then a private
// area each algorithm lays its own trivially copyable struct over.
struct CcState {
  // Flag bits (common part).
  static constexpr uint8_t kInRecovery = 1;     // fast recovery (RFC 5681 / 6582)
  static constexpr uint8_t kInCwr = 2;          // cut for ECN; ignore ECE until cwr_end is acked
  static constexpr uint8_t kSlowStartAfterRto = 4;  // RFC 3465 sec 2.3: L = 1 SMSS
  static constexpr uint8_t kRtoBackedOff = 8;   // a repeat RTO holds ssthresh (RFC 5681 sec 3.1)

  void init(const CcOps& algorithm, const CcConfig& cfg) { algorithm.init(*this, cfg); ops = &algorithm; }
  AckOutcome on_ack(const AckSample& a) { return ops->on_ack(*this, a); }
  bool on_congestion_event(const CongestionEvent& e) { return ops->on_congestion_event(*this, e); }
  void on_timeout(const TimeoutEvent& e) { ops->on_timeout(*this, e); }

  uint32_t cwnd() const { return cwnd_bytes; }
  uint32_t ssthresh() const { return ssthresh_bytes; }
  uint32_t mss() const { return mss_bytes; }
  bool in_recovery() const { return flags & kInRecovery; }
  bool in_slow_start() const { return cwnd_bytes < ssthresh_bytes; }
  const char* name() const { return ops ? ops->name : ""; }

  template <class T>
  T& priv() {
    static_assert(sizeof(T) <= kCcPrivateBytes && alignof(T) <= 8 && std::is_trivially_copyable_v<T>);
    return *std::launder(reinterpret_cast<T*>(priv_bytes));
  }
  template <class T>
  const T& priv() const { return const_cast<CcState*>(this)->priv<T>(); }

  // Written only by the algorithms (window_core.cc and the algorithm files).
  const CcOps* ops = nullptr;
  uint32_t cwnd_bytes = 0;
  uint32_t ssthresh_bytes = 0;
  uint32_t mss_bytes = 0;
  uint32_t ca_bytes_acked = 0;  // RFC 3465 byte counter in congestion avoidance
  uint32_t recover = 0;         // RFC 6582: highest sequence sent when recovery or an RTO began
  uint32_t cwr_end = 0;         // RFC 3168: highest sequence sent when cwnd was cut for ECN
  uint8_t abc_limit_segments = 2;
  uint8_t flags = 0;
  alignas(8) std::byte priv_bytes[kCcPrivateBytes] = {};
};

static_assert(sizeof(CcState) <= 128, "a flow's congestion state must fit two cache lines");
static_assert(std::is_trivially_copyable_v<CcState>);

}  // namespace vsw::congestion
