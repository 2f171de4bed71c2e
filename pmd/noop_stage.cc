// The no-op stage: proves the stage interface end to end. It forwards every
// packet and counts what it saw. Test options: `drop_ttl1` drops IPv4 TTL 1
// packets (drops and counters flow through); `notify_tx` asks to hear which
// packets the egress really took (the transmit notification snoop relies on).
#include "cc/net_headers.h"
#include "cc/pkt_meta.h"
#include "pmd/stage.h"

namespace vsw {

namespace {
#define NOOP_COUNTERS(X) \
  X(kSeen, "seen") X(kTcp, "tcp") X(kDroppedTtl1, "dropped_ttl1") X(kTxConfirmed, "tx_confirmed") \
  X(kTxFailed, "tx_failed")
enum : size_t { NOOP_COUNTERS(VSW_COUNTER_ID) kNCounters };

class NoopStage final : public Stage {
 public:
  NoopStage(bool drop_ttl1, bool notify_tx, uint8_t self)
      : Stage(kNCounters), drop_ttl1_(drop_ttl1), notify_tx_(notify_tx), self_(self) {}
  void on_tx(PmdContext&, uint16_t, const uint32_t cookie[2], uint32_t, bool sent) override {
    // The cookie carries the ingress port: proves cookies survive the pipeline.
    if (cookie[0] != 0x5eed) return;
    ctr(sent ? kTxConfirmed : kTxFailed).add();
  }
  void process(Batch& b, PmdContext&) override {
    for (uint16_t i = 0; i < b.n; ++i) {
      if (b.next[i] != Next::kForward) continue;
      rte_mbuf* m = b.pkts[i];
      const PktMeta& pm = meta(m);
      ctr(kSeen).add();
      if (pm.flags & net::kFlagTcp) ctr(kTcp).add();
      if (notify_tx_) {
        PktMeta& w = meta(m);
        w.notify_stage = self_;
        w.cookie[0] = 0x5eed;
        w.cookie[1] = pm.in_port;
      }
      if (drop_ttl1_ && (pm.flags & net::kFlagIPv4) &&
          pkt_at<net::Ipv4Hdr>(m, pm.l3_off)->ttl == 1) {
        b.next[i] = Next::kDrop;
        ctr(kDroppedTtl1).add();
      }
    }
  }

 private:
  bool drop_ttl1_;
  bool notify_tx_;
  uint8_t self_;
};
}  // namespace

std::unique_ptr<Stage> make_noop_stage(const StageInit& init) {
  return std::make_unique<NoopStage>(init.config.value("drop_ttl1", false), init.config.value("notify_tx", false),
                                     static_cast<uint8_t>(stage_index("noop") + 1));
}

const std::vector<const char*>& noop_counter_names() {
  static const std::vector<const char*> n = {NOOP_COUNTERS(VSW_COUNTER_NAME)};
  return n;
}

}  // namespace vsw
