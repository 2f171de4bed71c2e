// snoop: vSnoop (shared/papers/vsnoop.txt) — early acknowledgement on the
// receive path (network -> guest behind a vhost-user port).
//
// Safety rule, stronger than the paper's "ring not full" pre-check: a byte is
// acknowledged early only after the PMD reported (transmit notification,
// Stage::on_tx, sent = true) that the segment carrying it was enqueued into
// the guest's receive ring, contiguously with everything acknowledged before,
// and inside the receive window the guest itself last advertised. A burst the
// ring takes only partly acknowledges only the prefix that went in.
//
// Per connection (parallel to the PMD's TcpFlowTable slots):
//   enq       NEXT_SEQ: all bytes below it are in the guest ring or acked by the guest
//   hi        highest byte end enqueued into the ring (out-of-order data included)
//   ack_sent  highest ACK number the sender has been sent (early or guest): monotonic
//   g_ack, g_right  VM_SEQ and the guest's right edge (ack + scaled window)
//   rcv_win   RCV_WIN: guest window, grown by 2*MSS per early ACK up to the port bound
//   mode      active / offline-out-of-order / offline-no-buffer / sync (mid-stream,
//             waiting for the guest to catch up) / closed / off
// See docs/snoop.md for the full rule set (FIN, timestamps, SACK, migration).
#pragma once
#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cc/flow_key.h"
#include "pmd/stage.h"

namespace vsw {

class Port;

namespace snoop {

enum class Mode : uint8_t {
  kNone = 0,      // no guest side known yet
  kActive,        // early ACKs on
  kOfflineOoo,    // out-of-order data reached the guest: guest acknowledges
  kOfflineNoBuf,  // the guest ring refused a segment
  kSync,          // mid-stream start: wait until the guest has acknowledged all data seen
  kClosed,        // FIN from the sender or RST: no more early ACKs
  kOff,           // disabled (port / connection / guest gone): guest ACKs only drained
};
const char* mode_name(Mode m);

namespace cflag {
inline constexpr uint8_t kTs = 1u << 0;       // timestamps negotiated
inline constexpr uint8_t kWsExact = 1u << 1;  // guest window shift known from the handshake
inline constexpr uint8_t kTagged = 1u << 2;   // sender frames carry an 802.1Q tag
inline constexpr uint8_t kGuestTs = 1u << 3;  // g_tsval valid
inline constexpr uint8_t kSenderSeen = 1u << 4;
inline constexpr uint8_t kConnOff = 1u << 5;  // disabled for this connection (control)
inline constexpr uint8_t kHaveAck = 1u << 6;  // g_ack / g_right valid
inline constexpr uint8_t kAckPending = 1u << 7;  // an early ACK is due at the end of the notifications
}  // namespace cflag

struct Conn {
  uint32_t gen1;      // TcpConn::gen + 1 of the connection this state belongs to (0: unused)
  uint32_t epoch;     // guest port epoch at initialisation
  uint32_t enq, hi, ack_sent, right_sent;
  uint32_t g_ack, g_right, rcv_win, g_tsval, g_snd_nxt;
  uint16_t gport, sport;  // guest port, sender's port (early ACKs go there)
  uint16_t mss, g_raw;    // sender MSS (window growth); guest's last raw window
  uint8_t gdir;           // key endpoint of the guest
  Mode mode;
  uint8_t flags;          // cflag
  uint8_t ws;             // guest window shift (exact, or a lower bound)
  uint8_t mac_g[6], mac_s[6];
  uint32_t n_early, n_dropped;
  uint16_t n_offline, n_resume;
  uint32_t promised;   // descriptors this connection adds to its port's promise: ⌈(right_sent - enq) / desc_bytes⌉
  uint32_t acct_epoch; // port epoch under which `promised` was added (0: not counted)
  uint32_t pend_tsecr; // TSval to echo in the pending early ACK
  uint8_t pend_ts, starved;  // starved: on the port's list for a window update
  uint16_t acct_slot;        // 64 ms period in which it was last accounted (the port keeps two)
  // Sync mode (mid-stream start): the highest byte the switch had seen when
  // it began tracking. What lies below may or may not be in the guest ring;
  // from here on `enq` runs over the segments the ring confirmed. Once the
  // guest acknowledges sync_at, everything below enq is accounted for.
  uint32_t sync_at;
  uint8_t sync_pending;  // the guest has not acknowledged sync_at yet: no resume by retransmission
};
static_assert(sizeof(Conn) == 104);

// Counters: enum id, name (vswitchctl stage-list), what it counts.
#define SNOOP_COUNTERS(X) \
  X(kSeen, "seen") /* TCP packets of tracked connections looked at */ \
  X(kInitHandshake, "init_handshake") /* connection state from the guest's SYN / SYN-ACK */ \
  X(kInitMidstream, "init_midstream") /* mid-stream initialisation (sync mode) */ \
  X(kDataMarked, "data_marked") /* sender data segments marked for the transmit notification */ \
  X(kTxConfirmed, "tx_confirmed") /* ... the guest ring took it */ \
  X(kTxRefused, "tx_refused") /* ... the guest ring refused it */ \
  X(kEarlyAck, "early_ack") /* early ACKs sent */ \
  X(kEarlyAckBytes, "early_ack_bytes") /* bytes they acknowledged */ \
  X(kReack, "reack_duplicate") /* duplicate segment re-acknowledged (sender missed our ACK) */ \
  X(kOfflineOoo, "offline_out_of_order") /* -> offline: hole before an enqueued segment */ \
  X(kOfflineNoBuf, "offline_no_buffer") /* -> offline: guest ring full */ \
  X(kOfflineCe, "offline_ce") /* -> offline: CE-marked segment (guest echoes ECN) */ \
  X(kOfflineWindow, "offline_window") /* segment beyond the guest's advertised window */ \
  X(kResumeGuestAck, "resume_guest_ack") /* back online: guest acknowledged everything enqueued */ \
  X(kResumeRetrans, "resume_retransmission") /* back online: retransmission from NEXT_SEQ enqueued */ \
  X(kSyncDone, "sync_done") /* mid-stream sync completed */ \
  X(kSyncRestart, "sync_restart") /* sync point moved up: a hole or refusal after it (the guest must ack the new one) */ \
  X(kNoAckFlags, "no_ack_flags") /* not acked: SYN/RST/URG or FIN without payload */ \
  X(kNoAckTs, "no_ack_ts") /* not acked: timestamps negotiated but missing */ \
  X(kNoAckOff, "no_ack_off") /* not acked: port/connection disabled or guest gone */ \
  X(kGuestAck, "guest_ack") /* guest packets with ACK looked at */ \
  X(kGuestAckDropCovered, "guest_ack_drop_covered") /* pure guest ACK below our early ACK: dropped */ \
  X(kGuestAckDropDup, "guest_ack_drop_dup") /* pure guest ACK equal to our early ACK, nothing new: dropped */ \
  X(kGuestAckPass, "guest_ack_pass") /* guest ACK passed */ \
  X(kGuestAckRaised, "guest_ack_raised") /* ACK number raised to the early-ACK point (data / ECE / SACK) */ \
  X(kGuestWinCapped, "guest_win_capped") /* window lowered to the port bound / guest right edge */ \
  X(kGuestSackTrimmed, "guest_sack_trimmed") /* SACK blocks below the raised ACK removed */ \
  X(kClosed, "closed") /* FIN / RST: snooping ended */ \
  X(kPortDisabled, "port_disabled") /* connection switched off (port disabled, relinked, guest gone) */ \
  X(kAckAllocFail, "ack_alloc_fail") /* no mbuf for an early ACK */ \
  X(kStaleNote, "stale_note") /* transmit note for a connection that is gone */ \
  X(kRoleSwap, "role_swap") /* guest side re-learned: the endpoint it took for the guest sent data first */ \
  X(kWinRingBound, "win_ring_bound") /* window toward the sender lowered to the port's unpromised ring room */ \
  X(kWinUpdate, "win_update") /* window update sent to a sender the ring bound had starved */

enum Ctr : size_t { SNOOP_COUNTERS(VSW_COUNTER_ID) kNCtr };
const std::vector<const char*>& snoop_counter_names();

struct PortCfg {
  bool enabled = true;
  uint32_t buf_bytes = 0;  // 0: stage default
};

struct Config {
  bool vhost_only = true;        // snoop only toward vhost-user ports (tests: false)
  uint32_t buf_bytes = 256 * 1024;  // per-port receive window bound (paper: buf_size)
  uint32_t desc_bytes = 1448;    // bytes per free guest descriptor for the ring bound (0: off)
  uint32_t growth_mss = 2;       // RCV_WIN growth per early ACK, in MSS
  bool default_on = true;        // ports not named in `ports` are snooped
  std::map<std::string, PortCfg> ports;  // by port name
};
Config config_from_json(const nlohmann::json& j);

// One entry per marked data segment, waiting for its transmit notification.
struct Note {
  uint32_t id;  // == cookie[0]
  uint32_t slot, gen;
  uint32_t start, end;  // payload bytes [start, end)
  uint32_t tsval;
  uint8_t flags;        // tcp flags of the segment
  uint8_t has_ts, ce, pad;
};

}  // namespace snoop

class SnoopStage final : public Stage {
 public:
  // pmd: the PMD this instance runs on (which guest queue its port writes).
  SnoopStage(const snoop::Config& cfg, uint8_t self, unsigned pmd = 0);
  ~SnoopStage() override;
  void process(Batch& b, PmdContext& ctx) override;
  void on_tx(PmdContext& ctx, uint16_t port, const uint32_t cookie[2], uint32_t pkt_len, bool sent) override;
  void tick(PmdContext& ctx, uint64_t now_tsc) override;
  nlohmann::json details() const override;

  // ---- control (run on the owning PMD through Pmd::call) ----
  void set_port(PmdContext& ctx, const std::string& name, bool on, uint32_t buf_bytes);
  bool set_conn(const FlowKey& k, bool on, PmdContext& ctx);  // false: no such connection
  void set_default_on(bool on);
  nlohmann::json dump(PmdContext& ctx, size_t max) const;
  const snoop::Config& config() const { return cfg_; }
  // Tests.
  const snoop::Conn* conn(uint32_t slot) const { return conns_ && slot < cap_ ? &conns_[slot] : nullptr; }
  // The port's promise aggregate as of now_ms (descriptors).
  uint64_t port_promised(uint16_t port, uint32_t now_ms) const {
    if (port >= kMaxPorts) return 0;
    const PortState& ps = ports_[port];
    const uint16_t slot = static_cast<uint16_t>(now_ms >> 6);
    return ps.slot == slot ? ps.promised() : uint16_t(ps.slot + 1) == slot ? ps.prom_cur : 0;
  }

 private:
  struct PortState {
    const Port* ptr = nullptr;
    uint32_t epoch = 1;
    uint32_t buf = 0;
    bool enabled = false;
    bool resolved = false;
    bool up = false;
    // Sum over this port's live snooped connections of ⌈(right edge advertised
    // to the sender - NEXT_SEQ) / desc_bytes⌉: descriptors the senders may still
    // fill in the guest ring. Updated incrementally (account()); reset with the
    // epoch. Kept per 64 ms period: a connection without a packet for 64-128 ms
    // drops out (an idle sender's open window would otherwise block the others).
    uint64_t prom_cur = 0, prom_prev = 0;
    uint32_t n_cur = 0, n_prev = 0;  // connections accounted in the current / previous period
    uint16_t slot = 0;               // current period (now_ms / 64)
    int f_cache = 0;                 // rx_ring_free, read at most once per process() call
    uint32_t f_stamp = 0;
    uint64_t promised() const { return prom_cur + prom_prev; }
    // Connections whose window the ring bound held below one segment: they get
    // a window update as soon as the ring has room for them again.
    std::vector<uint32_t> starved;
  };
  void roll(PortState& ps, uint16_t slot);
  void feed_starved(PmdContext& ctx);
  bool any_starved_ = false;
  std::vector<uint16_t> starved_ports_;  // ports with a non-empty starved list
  uint32_t now_ms_ = 0;
  uint32_t call_seq_ = 1;     // process() calls: stamps the free-descriptor reads
  uint64_t desc_recip_ = 0;   // ⌈2^32 / desc_bytes⌉ (division-free promise in descriptors)
  int ring_free(PortState& ps) {
    if (ps.f_stamp != call_seq_) {
      ps.f_cache = ps.ptr->tx_ring_free(pmd_);  // this PMD's guest queue, its share
      ps.f_stamp = call_seq_;
    }
    return ps.f_cache;
  }
  uint32_t descs(uint32_t bytes) const {  // ⌈bytes / desc_bytes⌉
    const uint32_t x = bytes + cfg_.desc_bytes - 1;
    return x < (1u << 20) && cfg_.desc_bytes <= 4096 ? uint32_t((uint64_t(x) * desc_recip_) >> 32)
                                                      : x / cfg_.desc_bytes;
  }
  PortState& port_state(PmdContext& ctx, uint16_t id);
  bool ensure_table(PmdContext& ctx);
  static void begin_sync(snoop::Conn& c);
  void restart_sync(snoop::Conn& c, uint32_t end);
  void init_conn(snoop::Conn& c, const TcpConn& tc, const TcpSegment& s, rte_mbuf* m, uint16_t in_port, uint32_t epoch);
  void on_guest(PmdContext& ctx, Batch& b, uint16_t i, snoop::Conn& c, const TcpConn& tc, const TcpSegment& s);
  void on_sender(PmdContext& ctx, Batch& b, uint16_t i, snoop::Conn& c, uint32_t slot, const TcpConn& tc,
                 const TcpSegment& s);
  bool can_ack(PmdContext& ctx, snoop::Conn& c);
  void go_offline(snoop::Conn& c, snoop::Mode m, size_t ctr);
  // Window field (raw) for an ACK with number `ack`; updates right_sent.
  uint16_t window_for(snoop::Conn& c, uint32_t ack, bool ring_bound, bool commit);
  // Re-computes c's share of its port's promise aggregate (O(1)).
  void account(snoop::Conn& c);
  void unaccount(snoop::Conn& c);
  static void on_remove(void* self, uint32_t slot, const TcpConn& tc, RemoveReason why);
  // Both endpoints behind snooped ports and the one taken for the guest sends
  // data first: the other one is the receiver (the guest) — swap the roles.
  bool may_swap(PmdContext& ctx, const snoop::Conn& c);
  void tx_note(PmdContext& ctx, snoop::Conn& c, const snoop::Note& n, bool sent);
  void cap_synack(Batch& b, uint16_t i, snoop::Conn& c, const TcpSegment& s);
  void swap_roles(PmdContext& ctx, snoop::Conn& c, const TcpConn& tc, const TcpSegment& s, rte_mbuf* m);
  void flush_acks(PmdContext& ctx);
  std::vector<uint32_t> pending_;  // slots with kAckPending
  void send_ack(PmdContext& ctx, const snoop::Conn& c, uint32_t slot, uint32_t ack, uint16_t raw_win, uint32_t tsecr,
                bool has_tsecr);

  snoop::Config cfg_;
  uint8_t self_;
  unsigned pmd_;
  snoop::Conn* conns_ = nullptr;
  uint32_t cap_ = 0;
  static constexpr uint32_t kNotes = 4096;
  std::unique_ptr<snoop::Note[]> notes_;
  uint32_t next_note_ = 1;
  std::array<PortState, kMaxPorts> ports_{};
  uint32_t epoch_seq_ = 1;
  std::set<std::vector<uint8_t>> off_keys_;  // per-connection disables (control)
  TcpFlowTable* table_ = nullptr;
};

std::unique_ptr<Stage> make_snoop_stage(const StageInit& init);

}  // namespace vsw
