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
  uint32_t share_win;  // port share window this connection was last counted in
  uint32_t pend_tsecr; // TSval to echo in the pending early ACK
  uint8_t pend_ts, pad_[3];
};
static_assert(sizeof(Conn) == 92);

// Counter indexes (names in snoop_counter_names(), same order).
enum Ctr : size_t {
  kSeen,              // TCP packets of tracked connections looked at
  kInitHandshake,     // connection state from the guest's SYN / SYN-ACK
  kInitMidstream,     // mid-stream initialisation (sync mode)
  kDataMarked,        // sender data segments marked for the transmit notification
  kTxConfirmed,       // ... the guest ring took it
  kTxRefused,         // ... the guest ring refused it
  kEarlyAck,          // early ACKs sent
  kEarlyAckBytes,     // bytes they acknowledged
  kReack,             // duplicate segment re-acknowledged (sender missed our ACK)
  kOfflineOoo,        // -> offline: hole before an enqueued segment
  kOfflineNoBuf,      // -> offline: guest ring full
  kOfflineCe,         // -> offline: CE-marked segment (guest echoes ECN)
  kOfflineWindow,     // segment beyond the guest's advertised window
  kResumeGuestAck,    // back online: guest acknowledged everything enqueued
  kResumeRetrans,     // back online: retransmission from NEXT_SEQ enqueued
  kSyncDone,          // mid-stream sync completed
  kNoAckFlags,        // not acked: SYN/RST/URG or FIN without payload
  kNoAckTs,           // not acked: timestamps negotiated but missing
  kNoAckOff,          // not acked: port/connection disabled or guest gone
  kGuestAck,          // guest packets with ACK looked at
  kGuestAckDropCovered,  // pure guest ACK below our early ACK: dropped
  kGuestAckDropDup,      // pure guest ACK equal to our early ACK, nothing new: dropped
  kGuestAckPass,         // guest ACK passed
  kGuestAckRaised,       // ACK number raised to the early-ACK point (data / ECE / SACK)
  kGuestWinCapped,       // window lowered to the port bound / guest right edge
  kGuestSackTrimmed,     // SACK blocks below the raised ACK removed
  kClosed,               // FIN / RST: snooping ended
  kPortDisabled,         // connection switched off (port disabled, relinked, guest gone)
  kAckAllocFail,         // no mbuf for an early ACK
  kStaleNote,            // transmit note for a connection that is gone
  kNCtr
};
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
  SnoopStage(const snoop::Config& cfg, uint8_t self);
  ~SnoopStage() override;
  void process(Batch& b, PmdContext& ctx) override;
  void on_tx(PmdContext& ctx, uint16_t port, const uint32_t cookie[2], uint32_t pkt_len, bool sent) override;
  nlohmann::json details() const override;

  // ---- control (run on the owning PMD through Pmd::call) ----
  void set_port(PmdContext& ctx, const std::string& name, bool on, uint32_t buf_bytes);
  bool set_conn(const FlowKey& k, bool on, PmdContext& ctx);  // false: no such connection
  void set_default_on(bool on);
  nlohmann::json dump(PmdContext& ctx, size_t max) const;
  const snoop::Config& config() const { return cfg_; }
  // Tests.
  const snoop::Conn* conn(uint32_t slot) const { return conns_ && slot < cap_ ? &conns_[slot] : nullptr; }

 private:
  struct PortState {
    const Port* ptr = nullptr;
    uint32_t epoch = 1;
    uint32_t buf = 0;
    bool enabled = false;
    bool resolved = false;
    bool up = false;
    // Connections that got early ACKs in the current / previous 64 ms window:
    // they share the guest ring, so each may only count on its share of it.
    uint32_t share_win = 0, share_cur = 0, share_prev = 0;
  };
  PortState& port_state(PmdContext& ctx, uint16_t id);
  bool ensure_table(PmdContext& ctx);
  void init_conn(snoop::Conn& c, const TcpConn& tc, const TcpSegment& s, rte_mbuf* m, uint16_t in_port, uint32_t epoch);
  void on_guest(PmdContext& ctx, Batch& b, uint16_t i, snoop::Conn& c, const TcpConn& tc, const TcpSegment& s);
  void on_sender(PmdContext& ctx, Batch& b, uint16_t i, snoop::Conn& c, uint32_t slot, const TcpConn& tc,
                 const TcpSegment& s);
  bool can_ack(PmdContext& ctx, snoop::Conn& c);
  void go_offline(snoop::Conn& c, snoop::Mode m, size_t ctr);
  // Window field (raw) for an ACK with number `ack`; updates right_sent.
  uint16_t window_for(snoop::Conn& c, uint32_t ack, bool ring_bound, bool commit);
  void count_share(PmdContext& ctx, snoop::Conn& c);
  void flush_acks(PmdContext& ctx);
  std::vector<uint32_t> pending_;  // slots with kAckPending
  void send_ack(PmdContext& ctx, const snoop::Conn& c, uint32_t slot, uint32_t ack, uint16_t raw_win, uint32_t tsecr,
                bool has_tsecr);

  snoop::Config cfg_;
  uint8_t self_;
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
