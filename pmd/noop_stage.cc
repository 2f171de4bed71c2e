// The no-op stage: proves the stage interface end to end. It forwards every
// packet and counts what it saw; with `mark_drop_ttl1` it drops IPv4 packets
// with TTL 1 (used by tests to prove drops and counters flow through).
#include "cc/net_headers.h"
#include "cc/pkt_meta.h"
#include "pmd/stage.h"

namespace vsw {

namespace {
enum : size_t { kSeen, kTcp, kDroppedTtl1, kNCounters };

class NoopStage final : public Stage {
 public:
  explicit NoopStage(bool drop_ttl1) : Stage(kNCounters), drop_ttl1_(drop_ttl1) {}
  void process(Batch& b, PmdContext&) override {
    for (uint16_t i = 0; i < b.n; ++i) {
      if (b.next[i] != Next::kForward) continue;
      rte_mbuf* m = b.pkts[i];
      const PktMeta& pm = meta(m);
      ctr(kSeen).add();
      if (pm.flags & net::kFlagTcp) ctr(kTcp).add();
      if (drop_ttl1_ && (pm.flags & net::kFlagIPv4) &&
          pkt_at<net::Ipv4Hdr>(m, pm.l3_off)->ttl == 1) {
        b.next[i] = Next::kDrop;
        ctr(kDroppedTtl1).add();
      }
    }
  }

 private:
  bool drop_ttl1_;
};
}  // namespace

std::unique_ptr<Stage> make_noop_stage(const StageInit& init) {
  return std::make_unique<NoopStage>(init.config.value("drop_ttl1", false));
}

}  // namespace vsw
