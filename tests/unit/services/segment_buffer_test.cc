// The segment buffer (cc/services/segment_buffer.h): reference counts after
// hold / release / trim (no leak: pools return to their start), partial ACK
// trim, retransmission lookup, sequence wraparound, per-VM budgets, the
// Choudhury–Hahne threshold, grants, and a randomized run against the
// accounting invariants.
#include <random>

#include "tests/unit/services/segment_test_util.h"

using namespace vsw;
using namespace vsw::services;
using vsw::net::Seq;

namespace vsw::test {
namespace {

constexpr VmLimits kRoomy{1u << 30, 1u << 20, 255};  // budgets and α (≈16) that never bind

class SegmentBuffer_ : public SegmentFixture {
 protected:
  void SetUp() override {
    SegmentFixture::SetUp();
    ASSERT_TRUE(sb_->set_vm_limits(0, kRoomy));
    SegmentBuffer::init_flow(f_, 0);
  }
  // Holds [seq, seq+len) and drops the caller's reference, as the transmit path would.
  Verdict hold_sent(SegFlow& f, uint32_t seq, uint32_t len, std::vector<uint32_t> segs = {},
                    HoldMode mode = HoldMode::kRef) {
    rte_mbuf* m = pkt(seq, len, std::move(segs));
    EXPECT_NE(m, nullptr);
    Verdict v = sb_->hold(f, m, Seq(seq), len, kHdr, 1000, mode);
    if (!(v == Verdict::kOk && mode == HoldMode::kTake)) rte_pktmbuf_free(m);
    return v;
  }
  SegFlow f_;
};

TEST_F(SegmentBuffer_, HoldAddsOneReferenceAndReleaseDropsIt) {
  const unsigned start = in_use();
  rte_mbuf* m[3];
  for (int i = 0; i < 3; ++i) {
    m[i] = pkt(1000 + 100 * i, 100);
    ASSERT_EQ(rte_mbuf_refcnt_read(m[i]), 1);
    ASSERT_EQ(sb_->hold(f_, m[i], Seq(1000 + 100 * i), 100, kHdr, 5), Verdict::kOk);
    EXPECT_EQ(rte_mbuf_refcnt_read(m[i]), 2) << "held copy = refcnt+1, the original goes on";
  }
  EXPECT_EQ(f_.segs, 3u);
  EXPECT_EQ(f_.bytes, 300u);
  EXPECT_EQ(f_.mbufs, 3u);
  EXPECT_EQ(sb_->vm(0).held_bytes, 300u);
  for (auto* x : m) rte_pktmbuf_free(x);  // the pipeline's references (sent)
  for (auto* x : m) EXPECT_EQ(rte_mbuf_refcnt_read(x), 1);
  EXPECT_EQ(in_use(), start + 3);

  Released r = sb_->release(f_, Seq(1200));  // frees the first two
  EXPECT_EQ(r.segs, 2u);
  EXPECT_EQ(r.bytes, 200u);
  EXPECT_EQ(r.mbufs, 2u);
  EXPECT_EQ(in_use(), start + 1);
  EXPECT_EQ(rte_mbuf_refcnt_read(m[2]), 1);
  expect_view(sb_->front(f_), 1200, 100);

  r = sb_->release(f_, Seq(1300));
  EXPECT_EQ(r.segs, 1u);
  EXPECT_TRUE(f_.empty());
  EXPECT_EQ(f_.tail, kSegNil);
  EXPECT_EQ(in_use(), start);
  EXPECT_EQ(sb_->descriptors_in_use(), 0u);
  EXPECT_EQ(sb_->vm(0).held_bytes, 0u);
  EXPECT_EQ(sb_->vm(0).held_mbufs, 0u);
  EXPECT_EQ(sb_->vm(0).c.released, 3u);
  EXPECT_EQ(sb_->vm(0).c.released_bytes, 300u);
}

TEST_F(SegmentBuffer_, ChainedSegmentEveryMbufReferenced) {
  rte_mbuf* m = pkt(7, 3000, {kHdr + 1000, 1000});  // three mbufs
  ASSERT_EQ(m->nb_segs, 3);
  ASSERT_EQ(sb_->hold(f_, m, Seq(7), 3000, kHdr, 1), Verdict::kOk);
  for (rte_mbuf* s = m; s; s = s->next) EXPECT_EQ(rte_mbuf_refcnt_read(s), 2);
  EXPECT_EQ(f_.mbufs, 3u);
  EXPECT_EQ(sb_->vm(0).held_mbufs, 3u);
  rte_pktmbuf_free(m);
  EXPECT_EQ(in_use(), 3u);
  expect_view(sb_->front(f_), 7, 3000);
  sb_->release(f_, Seq(7 + 3000));
  EXPECT_EQ(in_use(), 0u);
  EXPECT_EQ(sb_->vm(0).held_mbufs, 0u);
}

TEST_F(SegmentBuffer_, TakeModeKeepsTheCallersReference) {
  rte_mbuf* m = pkt(1, 500);
  ASSERT_EQ(sb_->hold(f_, m, Seq(1), 500, kHdr, 1, HoldMode::kTake), Verdict::kOk);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);  // consumed: the held reference is the caller's
  EXPECT_EQ(in_use(), 1u);
  rte_mbuf* tx = SegmentBuffer::share(*sb_->front(f_));  // sent later: one more reference for tx
  EXPECT_EQ(tx, m);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 2);
  rte_pktmbuf_free(tx);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  sb_->release(f_, Seq(501));
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(SegmentBuffer_, CopyModeDoesNotPinTheIngressPool) {
  rte_mbuf* m = pkt(1, 2500, {kHdr + 1000});
  const auto before = all_bytes(m);
  ASSERT_EQ(sb_->hold(f_, m, Seq(1), 2500, kHdr, 1, HoldMode::kCopy), Verdict::kOk);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  const HeldSegment* s = sb_->front(f_);
  ASSERT_NE(s, nullptr);
  EXPECT_NE(s->m, m);
  EXPECT_EQ(s->m->pool, sb_->pool());
  EXPECT_EQ(all_bytes(s->m), before);
  EXPECT_EQ(meta(s->m).flow_hash, meta(m).flow_hash) << "PktMeta travels with the copy";
  EXPECT_EQ(f_.mbufs, s->m->nb_segs);
  EXPECT_EQ(sb_->vm(0).c.copies, 1u);
  rte_pktmbuf_free(m);
  EXPECT_EQ(in_use(), 0u);
  EXPECT_GE(own_in_use(), 1u);
  expect_view(s, 1, 2500);
  sb_->release(f_, Seq(2501));
  EXPECT_EQ(own_in_use(), 0u);
}

TEST_F(SegmentBuffer_, PartialAckTrimsTheViewNotTheMbuf) {
  rte_mbuf* m = pkt(1000, 1000);
  const auto original = all_bytes(m);
  ASSERT_EQ(sb_->hold(f_, m, Seq(1000), 1000, kHdr, 1), Verdict::kOk);
  ASSERT_EQ(hold_sent(f_, 2000, 1000), Verdict::kOk);

  Released r = sb_->release(f_, Seq(1500));
  EXPECT_EQ(r.segs, 0u);
  EXPECT_EQ(r.bytes, 500u);
  EXPECT_EQ(r.mbufs, 0u);
  const HeldSegment* s = sb_->front(f_);
  expect_view(s, 1500, 500);
  EXPECT_EQ(s->off, kHdr + 500);
  EXPECT_EQ(s->m, m);
  EXPECT_EQ(all_bytes(m), original) << "the original's data and view are untouched";
  EXPECT_EQ(rte_pktmbuf_pkt_len(m), kHdr + 1000);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 2);
  EXPECT_EQ(f_.bytes, 1500u);
  EXPECT_EQ(f_.mbufs, 2u) << "a trimmed segment still pins its mbuf";
  EXPECT_EQ(sb_->vm(0).held_bytes, 1500u);
  EXPECT_EQ(sb_->vm(0).c.trims, 1u);

  r = sb_->release(f_, Seq(1499));  // an old ACK releases nothing
  EXPECT_EQ(r.bytes, 0u);
  r = sb_->release(f_, Seq(2500));  // frees the first, trims the second
  EXPECT_EQ(r.segs, 1u);
  EXPECT_EQ(r.bytes, 1000u);
  expect_view(sb_->front(f_), 2500, 500);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  rte_pktmbuf_free(m);
  sb_->release(f_, Seq(3000));
  EXPECT_EQ(in_use(), 0u);
  EXPECT_EQ(sb_->vm(0).held_bytes, 0u);
}

TEST_F(SegmentBuffer_, RetransmissionLookup) {
  ASSERT_EQ(hold_sent(f_, 100, 100), Verdict::kOk);
  ASSERT_EQ(hold_sent(f_, 200, 100, {kHdr + 40}), Verdict::kOk);  // chained: the view crosses mbufs
  ASSERT_EQ(hold_sent(f_, 400, 100), Verdict::kOk);                // a gap: [300, 400) not held
  expect_view(sb_->find(f_, Seq(100)), 100, 100);
  expect_view(sb_->find(f_, Seq(199)), 100, 100);
  expect_view(sb_->find(f_, Seq(250)), 200, 100);
  expect_view(sb_->find(f_, Seq(499)), 400, 100);
  EXPECT_EQ(sb_->find(f_, Seq(99)), nullptr);
  EXPECT_EQ(sb_->find(f_, Seq(300)), nullptr);
  EXPECT_EQ(sb_->find(f_, Seq(399)), nullptr);
  EXPECT_EQ(sb_->find(f_, Seq(500)), nullptr);
  sb_->release(f_, Seq(250));
  EXPECT_EQ(sb_->find(f_, Seq(200)), nullptr);
  expect_view(sb_->find(f_, Seq(250)), 250, 50);  // trimmed across the mbuf boundary
  int n = 0;
  for (const HeldSegment* s = sb_->front(f_); s; s = sb_->next(*s)) ++n;
  EXPECT_EQ(n, 2);
  sb_->release(f_, Seq(500));
  EXPECT_EQ(sb_->find(f_, Seq(450)), nullptr);
}

TEST_F(SegmentBuffer_, SequenceWraparound) {
  const uint32_t a = 0xffffff00u;
  ASSERT_EQ(hold_sent(f_, a, 0x80), Verdict::kOk);
  ASSERT_EQ(hold_sent(f_, a + 0x80, 0x100), Verdict::kOk);  // [0xffffff80, 0x80): crosses 2^32
  ASSERT_EQ(hold_sent(f_, 0x80, 0x100), Verdict::kOk);
  EXPECT_EQ(hold_sent(f_, 0xfffffff0u, 0x10), Verdict::kOrder) << "before the tail's end across the wrap";
  expect_view(sb_->find(f_, Seq(0xffffffffu)), a + 0x80, 0x100);
  expect_view(sb_->find(f_, Seq(0x10)), a + 0x80, 0x100);
  expect_view(sb_->find(f_, Seq(0x80)), 0x80, 0x100);

  Released r = sb_->release(f_, Seq(0x40));  // frees the first, trims the second past 2^32
  EXPECT_EQ(r.segs, 1u);
  EXPECT_EQ(r.bytes, 0x80u + 0xc0u);
  expect_view(sb_->front(f_), 0x40, 0x40);
  EXPECT_EQ(sb_->find(f_, Seq(0xfffffff0u)), nullptr);
  r = sb_->release(f_, Seq(0x180));
  EXPECT_EQ(r.segs, 2u);
  EXPECT_TRUE(f_.empty());
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(SegmentBuffer_, MalformedHoldsRefusedAndCounted) {
  ASSERT_EQ(hold_sent(f_, 1000, 100), Verdict::kOk);
  EXPECT_EQ(hold_sent(f_, 1050, 100), Verdict::kOrder);  // overlaps the tail
  EXPECT_EQ(hold_sent(f_, 900, 100), Verdict::kOrder);   // old data
  rte_mbuf* m = pkt(1100, 100);
  EXPECT_EQ(sb_->hold(f_, m, Seq(1100), 0, kHdr, 1), Verdict::kBadSegment);
  EXPECT_EQ(sb_->hold(f_, m, Seq(1100), 101, kHdr, 1), Verdict::kBadSegment);  // beyond the packet
  EXPECT_EQ(sb_->hold(f_, m, Seq(1100), 100, kHdr, 1, HoldMode::kTake), Verdict::kOk);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  const VmCounters& c = sb_->vm(0).c;
  EXPECT_EQ(c.refused[unsigned(Verdict::kOrder)], 2u);
  EXPECT_EQ(c.refused[unsigned(Verdict::kBadSegment)], 2u);
  EXPECT_EQ(c.held, 2u);
  EXPECT_EQ(hold_sent(f_, 1300, 50), Verdict::kOk) << "gaps are allowed";
}

TEST_F(SegmentBuffer_, VmByteBudget) {
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{5000, 1000, 255}));  // α ≈ 16: only the budget binds
  SegFlow a, b;
  SegmentBuffer::init_flow(a, 1);
  SegmentBuffer::init_flow(b, 1);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(hold_sent(a, 1000 * i, 1000), Verdict::kOk);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(hold_sent(b, 1000 * i, 1000), Verdict::kOk);
  rte_mbuf* m = pkt(2000, 1000);
  EXPECT_EQ(sb_->hold(b, m, Seq(2000), 1000, kHdr, 1), Verdict::kVmBytes);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1) << "refused: nothing taken, the caller forwards it";
  EXPECT_EQ(hold_sent(b, 2000, 1), Verdict::kVmBytes);
  EXPECT_EQ(sb_->vm(1).c.refused[unsigned(Verdict::kVmBytes)], 2u);
  EXPECT_EQ(sb_->vm(1).held_bytes, 5000u);
  EXPECT_EQ(sb_->room(b).bytes, 0u);
  sb_->release(a, Seq(1000));
  EXPECT_EQ(sb_->hold(b, m, Seq(2000), 1000, kHdr, 1), Verdict::kOk);
  rte_pktmbuf_free(m);
  sb_->drop_flow(a);
  sb_->drop_flow(b);
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(SegmentBuffer_, VmMbufBudget) {
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{1u << 20, 5, 255}));
  SegFlow a;
  SegmentBuffer::init_flow(a, 1);
  ASSERT_EQ(hold_sent(a, 0, 3000, {kHdr + 1000, 1000}), Verdict::kOk);  // 3 mbufs
  EXPECT_EQ(hold_sent(a, 3000, 3000, {kHdr + 1000, 1000}), Verdict::kVmMbufs);
  EXPECT_EQ(hold_sent(a, 3000, 1000, {kHdr + 500}), Verdict::kOk);  // 2 more: exactly 5
  EXPECT_EQ(hold_sent(a, 4000, 10), Verdict::kVmMbufs);
  EXPECT_EQ(sb_->vm(1).held_mbufs, 5u);
  EXPECT_EQ(sb_->vm(1).c.refused[unsigned(Verdict::kVmMbufs)], 2u);
  sb_->drop_flow(a);
  EXPECT_EQ(sb_->vm(1).c.dropped, 2u);
  EXPECT_EQ(in_use(), 0u);
}

// Choudhury–Hahne, worked example. B = 10,000 bytes (mbufs not binding), 1,000-byte segments.
// A flow is admitted while Q_i + 1000 <= α·(B − Q), Q = pool occupancy before the segment.
// 1. α = 1, flow A alone (Q = Q_A): Q_A + 1000 <= 10000 − Q_A  <=>  Q_A <= 4500:
//    admitted at Q_A = 0, 1000, 2000, 3000, 4000: A holds 5 segments (αB/(1+α) = 5000);
//    the 6th: 5000 + 1000 = 6000 > 10000 − 5000 = 5000 -> kThreshold.
// 2. Flow B joins (free = 5000 − Q_B): admitted at Q_B = 0 (1000 <= 5000), 1000 (2000 <= 4000),
//    2000 (3000 <= 3000); the 4th: 4000 > 2000. A: 6000 > 2000. 2,000 bytes stay free
//    although the budget is not reached: room for a newcomer, the point of the scheme.
//    room() = min(free, α·free − Q_i) = 0 for both.
// 3. An ACK frees 3 of A's segments: A 2000, B 3000, Q = 5000, free = 5000.
//    room(A) = 5000 − 2000 = 3000, room(B) = 5000 − 3000 = 2000.
//    B: 3000 + 1000 <= 5000 -> admitted (Q = 6000, free = 4000); again: 5000 > 4000 -> refused.
//    A: 2000 + 1000 <= 4000 -> admitted (Q = 7000, free = 3000); again: 4000 > 3000 -> refused.
// 4. α = 2, one flow: Q + 1000 <= 2·(10000 − Q)  <=>  Q <= 6333: 7 segments (2B/3 ≈ 6667);
//    the 8th: 8000 > 2·3000 = 6000 -> refused.
TEST_F(SegmentBuffer_, ChoudhuryHahneThresholdWorkedExample) {
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{10000, 1000, kAlphaOne}));
  SegFlow a, b;
  SegmentBuffer::init_flow(a, 1);
  SegmentBuffer::init_flow(b, 1);
  uint32_t sa = 0, sb = 0;
  int na = 0, nb = 0;
  while (hold_sent(a, sa, 1000) == Verdict::kOk) sa += 1000, ++na;  // 1.
  EXPECT_EQ(na, 5);
  EXPECT_EQ(a.bytes, 5000u);
  EXPECT_EQ(sb_->vm(1).c.refused[unsigned(Verdict::kThreshold)], 1u);
  while (hold_sent(b, sb, 1000) == Verdict::kOk) sb += 1000, ++nb;  // 2.
  EXPECT_EQ(nb, 3);
  EXPECT_EQ(hold_sent(a, sa, 1000), Verdict::kThreshold);
  EXPECT_EQ(sb_->vm(1).held_bytes, 8000u);
  EXPECT_EQ(sb_->room(a).bytes, 0u);
  EXPECT_EQ(sb_->room(b).bytes, 0u);

  sb_->release(a, Seq(3000));  // 3.
  EXPECT_EQ(sb_->room(a).bytes, 3000u);
  EXPECT_EQ(sb_->room(b).bytes, 2000u);
  EXPECT_EQ(hold_sent(b, sb, 1000), Verdict::kOk);
  sb += 1000;
  EXPECT_EQ(hold_sent(b, sb, 1000), Verdict::kThreshold);
  EXPECT_EQ(hold_sent(a, sa, 1000), Verdict::kOk);
  sa += 1000;
  EXPECT_EQ(hold_sent(a, sa, 1000), Verdict::kThreshold);
  EXPECT_EQ(a.bytes, 3000u);
  EXPECT_EQ(b.bytes, 4000u);
  EXPECT_EQ(sb_->vm(1).c.refused[unsigned(Verdict::kThreshold)], 5u);
  sb_->drop_flow(a);
  sb_->drop_flow(b);

  SegFlow p;  // 4. α = 2 (a prioritized flow: its own α overrides the VM's)
  SegmentBuffer::init_flow(p, 1, 2 * kAlphaOne);
  int np = 0;
  for (uint32_t s = 0; hold_sent(p, s, 1000) == Verdict::kOk; s += 1000) ++np;
  EXPECT_EQ(np, 7);
  sb_->drop_flow(p);
  EXPECT_EQ(sb_->vm(1).held_bytes, 0u);
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(SegmentBuffer_, ThresholdAppliesToMbufsToo) {
  // B = 12 mbufs, α = 1, 3-mbuf segments: 0 + 3 <= 12, 3 + 3 <= 9, 6 + 3 > 6.
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{1u << 20, 12, kAlphaOne}));
  SegFlow a;
  SegmentBuffer::init_flow(a, 1);
  EXPECT_EQ(hold_sent(a, 0, 300, {kHdr + 100, 100}), Verdict::kOk);
  EXPECT_EQ(hold_sent(a, 300, 300, {kHdr + 100, 100}), Verdict::kOk);
  EXPECT_EQ(hold_sent(a, 600, 300, {kHdr + 100, 100}), Verdict::kThreshold);
  EXPECT_EQ(sb_->room(a).mbufs, 0u);
  sb_->drop_flow(a);
}

// Grants: room promised in advance. B = 10,000 bytes / 100 mbufs, α = 1.
TEST_F(SegmentBuffer_, GrantReserveCommitCancel) {
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{10000, 100, kAlphaOne}));
  SegFlow a, b;
  SegmentBuffer::init_flow(a, 1);
  SegmentBuffer::init_flow(b, 1);
  const VmPool& p = sb_->vm(1);
  auto within_budget = [&] {
    EXPECT_LE(p.held_bytes + p.granted_bytes, p.limits.bytes);
    EXPECT_LE(p.held_mbufs + p.granted_mbufs, p.limits.mbufs);
  };
  // reserve: A 4000 (0 + 4000 <= 10000 budget; 0 + 4000 <= 1·10000 threshold).
  EXPECT_EQ(sb_->reserve(a, 4000, 4), Verdict::kOk);
  EXPECT_EQ(p.granted_bytes, 4000u);
  EXPECT_EQ(a.granted_bytes, 4000u);
  // 4000 more: the budget allows (8000) but A would have 8000 > α·free = 6000.
  EXPECT_EQ(sb_->reserve(a, 4000, 4), Verdict::kThreshold);
  EXPECT_EQ(p.c.grant_refused[unsigned(Verdict::kThreshold)], 1u);
  EXPECT_EQ(sb_->room(a).bytes, 2000u);  // min(6000, 6000 − 4000)
  EXPECT_EQ(sb_->room(b).bytes, 6000u);  // a grant is occupancy for the others
  EXPECT_EQ(sb_->reserve(b, 3000, 3), Verdict::kOk);
  EXPECT_EQ(sb_->reserve(b, 3001, 1), Verdict::kVmBytes);  // 7000 + 3001 > 10000
  within_budget();

  // commit: data under a grant is held without a check; held + granted stays 7000.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(hold_sent(a, 1000 * i, 1000), Verdict::kOk);
  EXPECT_EQ(a.granted_bytes, 1000u);
  EXPECT_EQ(a.granted_mbufs, 1u);
  EXPECT_EQ(p.held_bytes, 3000u);
  EXPECT_EQ(p.granted_bytes, 4000u);
  EXPECT_EQ(sb_->room(a).bytes, 0u);  // A is above α·free = 3000 ...
  EXPECT_EQ(hold_sent(a, 3000, 1000), Verdict::kOk) << "... but a promise is kept";
  EXPECT_EQ(a.granted_bytes, 0u);
  EXPECT_EQ(hold_sent(a, 4000, 1000), Verdict::kThreshold);  // no grant left: 4000 + 1000 > 3000
  within_budget();

  // A segment larger than the grant: the excess is checked; refused, the grant is untouched.
  EXPECT_EQ(hold_sent(b, 0, 3500), Verdict::kThreshold);  // 0 + 3000 + 500 > 1·3000
  EXPECT_EQ(b.granted_bytes, 3000u);
  // The caller forwarded the promised data instead of holding it: the promise is over.
  sb_->cancel(b, 3000, 3);
  EXPECT_EQ(b.granted_bytes, 0u);
  EXPECT_EQ(p.granted_bytes, 0u);
  EXPECT_EQ(p.granted_mbufs, 0u);
  sb_->cancel(b, 99999, 99);  // clamped: nothing left to cancel
  EXPECT_EQ(p.c.cancelled_bytes, 3000u);

  EXPECT_EQ(sb_->reserve(b, 1000, 1), Verdict::kOk);
  Released r = sb_->drop_flow(b);  // the connection ends: its grant goes with it
  EXPECT_EQ(r.segs, 0u);
  EXPECT_EQ(p.granted_bytes, 0u);
  EXPECT_EQ(p.c.grants, 3u);
  EXPECT_EQ(p.c.granted_bytes, 8000u);
  EXPECT_EQ(p.c.committed_bytes, 4000u);
  EXPECT_EQ(p.c.cancelled_bytes, 4000u);
  sb_->drop_flow(a);
  EXPECT_EQ(in_use(), 0u);
}

// A grant's mbuf count is an estimate: bytes fully granted but more mbufs
// than promised meet the VM's mbuf budget only, not the threshold.
TEST_F(SegmentBuffer_, GrantedBytesWithExtraMbufs) {
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{100000, 8, kAlphaOne}));
  SegFlow a;
  SegmentBuffer::init_flow(a, 1);
  ASSERT_EQ(sb_->reserve(a, 3000, 1), Verdict::kOk);
  // 3 mbufs: 1 from the grant, 2 more; the threshold (0 + 1 + 2 <= 1·7) is not consulted anyway.
  EXPECT_EQ(hold_sent(a, 0, 1500, {kHdr + 500, 500}), Verdict::kOk);
  EXPECT_EQ(a.granted_bytes, 1500u);
  EXPECT_EQ(a.granted_mbufs, 0u);
  EXPECT_EQ(sb_->vm(1).held_mbufs, 3u);
  // Now the threshold would refuse (3 + 3 > 1·5) but the bytes are granted: only the budget counts.
  EXPECT_EQ(hold_sent(a, 1500, 1500, {kHdr + 500, 500}), Verdict::kOk);
  EXPECT_EQ(sb_->vm(1).held_mbufs, 6u);
  ASSERT_EQ(sb_->reserve(a, 1000, 0), Verdict::kOk);  // threshold: bytes only (3000 + 1000 <= 97000)
  EXPECT_EQ(hold_sent(a, 3000, 1000, {kHdr + 300, 300}), Verdict::kVmMbufs) << "6 + 3 > 8: the pool lacks mbufs";
  EXPECT_EQ(a.granted_bytes, 1000u);
  sb_->drop_flow(a);
  EXPECT_EQ(sb_->vm(1).granted_bytes, 0u);
}

TEST_F(SegmentBuffer_, DescriptorPoolExhausted) {
  cfg_.descriptors = 4;
  remake();
  ASSERT_TRUE(sb_->set_vm_limits(0, kRoomy));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(hold_sent(f_, 100 * i, 100), Verdict::kOk);
  EXPECT_EQ(hold_sent(f_, 400, 100), Verdict::kNoDescriptor);
  EXPECT_EQ(sb_->descriptors_in_use(), 4u);
  sb_->release(f_, Seq(100));
  EXPECT_EQ(hold_sent(f_, 400, 100), Verdict::kOk) << "descriptors are reused";
  sb_->drop_flow(f_);
  EXPECT_EQ(sb_->descriptors_in_use(), 0u);
}

TEST_F(SegmentBuffer_, UnconfiguredVm) {
  SegFlow g, h;
  SegmentBuffer::init_flow(g, 2);  // no limits set
  SegmentBuffer::init_flow(h, 9);  // beyond max_vms
  EXPECT_EQ(hold_sent(g, 0, 100), Verdict::kNoVm);
  EXPECT_EQ(sb_->reserve(g, 100, 1), Verdict::kNoVm);
  EXPECT_EQ(hold_sent(h, 0, 100), Verdict::kNoVm);
  EXPECT_EQ(sb_->vm(2).c.refused[unsigned(Verdict::kNoVm)], 1u);
  EXPECT_EQ(sb_->vm(2).c.grant_refused[unsigned(Verdict::kNoVm)], 1u);
  EXPECT_EQ(sb_->stats().invalid_vm, 1u);
  EXPECT_FALSE(sb_->set_vm_limits(4, kRoomy));
  EXPECT_STREQ(verdict_name(Verdict::kThreshold), "threshold");
}

TEST_F(SegmentBuffer_, DestroyFreesWhatIsHeld) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(hold_sent(f_, 100 * i, 100, {kHdr + 50}), Verdict::kOk);
  ASSERT_EQ(hold_sent(f_, 300, 100, {}, HoldMode::kCopy), Verdict::kOk);
  EXPECT_EQ(in_use(), 6u);
  sb_.reset();
  EXPECT_EQ(in_use(), 0u);
  EXPECT_EQ(rte_mempool_lookup(("sbown" + std::to_string(id_)).c_str()), nullptr) << "own pool freed";
}

TEST_F(SegmentBuffer_, FlowStateIsIndependentOfItsAddress) {
  ASSERT_EQ(hold_sent(f_, 0, 100), Verdict::kOk);
  SegFlow moved = f_;  // slots may move (a table resize): indices, not pointers
  f_ = SegFlow{};
  ASSERT_EQ(hold_sent(moved, 100, 100), Verdict::kOk);
  EXPECT_EQ(sb_->release(moved, Seq(200)).segs, 2u);
}

// Randomized: holds (ref / take / copy, chained), releases with partial ACKs,
// grants, cancels and drops on four flows of two VMs with small budgets.
// After every step the VM accounting equals the sum of its flows, held +
// granted never exceeds the budget, descriptors and mbufs in use match what
// the flows hold, a refused hold took nothing, and data fully covered by a
// grant (bytes and mbufs) is never refused.
TEST_F(SegmentBuffer_, RandomOperationsKeepTheAccounting) {
  ASSERT_TRUE(sb_->set_vm_limits(1, VmLimits{40000, 40, kAlphaOne}));
  ASSERT_TRUE(sb_->set_vm_limits(2, VmLimits{30000, 60, 2 * kAlphaOne}));
  std::mt19937 rng(1234);
  struct F {
    SegFlow s;
    uint32_t next_seq;
    uint32_t acked;
  };
  F fl[4];
  for (int i = 0; i < 4; ++i) {
    SegmentBuffer::init_flow(fl[i].s, uint16_t(1 + i / 2), i == 3 ? 4 * kAlphaOne : 0);
    fl[i].next_seq = fl[i].acked = 0xfffff000u + 977u * i;  // wraps during the run
  }
  uint64_t holds = 0, refusals = 0, granted_holds = 0;
  for (int step = 0; step < 20000; ++step) {
    F& x = fl[rng() % 4];
    const unsigned op = rng() % 10;
    if (op < 5) {
      const uint32_t len = 1 + rng() % 3000;
      const uint32_t extra = rng() % 3;
      std::vector<uint32_t> segs;
      if (extra) segs.push_back(kHdr + len / (extra + 1));
      if (extra == 2) segs.push_back(len / 3);
      rte_mbuf* m = pkt(x.next_seq, len, segs);
      ASSERT_NE(m, nullptr);
      const HoldMode mode = HoldMode(rng() % 3);
      const bool covered = len <= x.s.granted_bytes && (mode == HoldMode::kCopy || m->nb_segs <= x.s.granted_mbufs);
      const Verdict v = sb_->hold(x.s, m, Seq(x.next_seq), len, kHdr, step, mode);
      if (covered && mode != HoldMode::kCopy) {
        ASSERT_EQ(v, Verdict::kOk) << "granted data refused";
        ++granted_holds;
      }
      if (v == Verdict::kOk) {
        ++holds;
        x.next_seq += len + (rng() % 8 == 0 ? rng() % 100 : 0);  // sometimes a gap
      } else {
        ++refusals;
        for (rte_mbuf* s = m; s; s = s->next) ASSERT_EQ(rte_mbuf_refcnt_read(s), 1);
      }
      if (!(v == Verdict::kOk && mode == HoldMode::kTake)) rte_pktmbuf_free(m);
    } else if (op < 8) {
      const uint32_t outstanding = x.next_seq - x.acked;
      const uint32_t adv = outstanding ? rng() % (outstanding + 1) : 0;
      x.acked += adv;
      sb_->release(x.s, Seq(x.acked));
      if (const HeldSegment* h = sb_->front(x.s)) {
        ASSERT_TRUE(Seq(x.acked) <= h->begin());
        ASSERT_EQ(read_bytes(h->m, h->off, h->len), expected_payload(h->seq, h->len));
      }
    } else if (op == 8) {
      sb_->reserve(x.s, rng() % 4000, rng() % 4);
    } else if (rng() % 8 == 0) {
      sb_->drop_flow(x.s);
      x.acked = x.next_seq;
    } else {
      sb_->cancel(x.s, rng() % 3000, rng() % 3);
    }
    // invariants
    uint64_t segs = 0, mbufs_src = 0;
    for (uint16_t vm = 1; vm <= 2; ++vm) {
      const VmPool& p = sb_->vm(vm);
      uint64_t hb = 0, hm = 0, gb = 0, gm = 0;
      for (F& y : fl)
        if (y.s.vm == vm) hb += y.s.bytes, hm += y.s.mbufs, gb += y.s.granted_bytes, gm += y.s.granted_mbufs;
      ASSERT_EQ(p.held_bytes, hb);
      ASSERT_EQ(p.held_mbufs, hm);
      ASSERT_EQ(p.granted_bytes, gb);
      ASSERT_EQ(p.granted_mbufs, gm);
      ASSERT_LE(hb + gb, p.limits.bytes);
      ASSERT_LE(hm + gm, p.limits.mbufs);
    }
    for (F& y : fl) {
      uint32_t n = 0, bytes = 0, mb = 0;
      for (const HeldSegment* h = sb_->front(y.s); h; h = sb_->next(*h)) {
        ++n, bytes += h->len, mb += h->nb_mbufs;
        if (h->m->pool == src_) mbufs_src += h->nb_mbufs;
      }
      ASSERT_EQ(n, y.s.segs);
      ASSERT_EQ(bytes, y.s.bytes);
      ASSERT_EQ(mb, y.s.mbufs);
      segs += n;
    }
    ASSERT_EQ(sb_->descriptors_in_use(), segs);
    ASSERT_EQ(in_use(), mbufs_src) << "every source mbuf in use is one the buffer holds";
  }
  EXPECT_GT(holds, 2000u);
  EXPECT_GT(refusals, 100u);
  EXPECT_GT(granted_holds, 50u);
  RecordProperty("holds", int(holds));
  RecordProperty("refused", int(refusals));
  RecordProperty("fully_granted", int(granted_holds));
  for (F& y : fl) sb_->drop_flow(y.s);
  EXPECT_EQ(in_use(), 0u);
  EXPECT_EQ(own_in_use(), 0u);
}

}  // namespace
}  // namespace vsw::test
