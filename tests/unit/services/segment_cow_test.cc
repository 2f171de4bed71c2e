// Copy-on-write (cc/services/segment_cow.h): a stage that rewrites the
// headers of a packet the segment buffer also holds gets its own header
// bytes; the held original never changes; no reference leaks.
#include "cc/services/segment_cow.h"

#include "tests/unit/services/segment_test_util.h"

using namespace vsw;
using namespace vsw::services;
using vsw::net::Seq;

namespace vsw::test {
namespace {

constexpr uint32_t kWindowOff = 14 + 20 + 14;  // TCP window field
constexpr uint32_t kTtlOff = 14 + 8;

class SegmentCow : public SegmentFixture {
 protected:
  void SetUp() override {
    SegmentFixture::SetUp();
    ASSERT_TRUE(sb_->set_vm_limits(0, VmLimits{1u << 30, 1u << 20, 255}));
    SegmentBuffer::init_flow(f_, 0);
  }
  // A packet the buffer holds (refcnt+1) and the pipeline still carries, with offload fields set.
  rte_mbuf* held_packet(uint32_t seq, uint32_t len, std::vector<uint32_t> segs = {}) {
    rte_mbuf* m = pkt(seq, len, std::move(segs));
    m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4;
    m->l2_len = 14;
    m->l3_len = 20;
    m->l4_len = 20;
    m->tso_segsz = 1448;
    m->vlan_tci = 42;
    EXPECT_EQ(sb_->hold(f_, m, Seq(seq), len, kHdr, 1), Verdict::kOk);
    return m;
  }
  static void rewrite(rte_mbuf* m) {
    uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
    d[kWindowOff] ^= 0xff;
    d[kWindowOff + 1] ^= 0x55;
    d[kTtlOff] = 1;
  }
  static std::vector<uint8_t> rewritten(std::vector<uint8_t> v) {
    v[kWindowOff] ^= 0xff;
    v[kWindowOff + 1] ^= 0x55;
    v[kTtlOff] = 1;
    return v;
  }
  static void expect_same_packet_fields(const rte_mbuf* a, const rte_mbuf* b) {
    EXPECT_EQ(rte_pktmbuf_pkt_len(a), rte_pktmbuf_pkt_len(b));
    EXPECT_EQ(a->ol_flags & ~(RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL), b->ol_flags);
    EXPECT_EQ(a->tx_offload, b->tx_offload);
    EXPECT_EQ(a->vlan_tci, b->vlan_tci);
    EXPECT_EQ(meta(a).flow_hash, meta(b).flow_hash) << "PktMeta follows the copy";
    EXPECT_EQ(meta(a).in_port, meta(b).in_port);
  }
  SegFlow f_;
};

TEST_F(SegmentCow, PrivateMbufIsReturnedAsIs) {
  rte_mbuf* m = pkt(1, 100);
  EXPECT_FALSE(segment_headers_shared(m, kHdr));
  EXPECT_EQ(sb_->cow_headers(m, kHdr), m);
  EXPECT_EQ(sb_->stats().cow_private, 1u);
  EXPECT_EQ(own_in_use(), 0u);
  rte_pktmbuf_free(m);
}

TEST_F(SegmentCow, RewriteAfterCowLeavesTheHeldOriginalUnchanged) {
  rte_mbuf* m = held_packet(1000, 1000);
  const auto original = all_bytes(m);
  ASSERT_EQ(rte_mbuf_refcnt_read(m), 2);
  ASSERT_TRUE(segment_headers_shared(m, kHdr));

  rte_mbuf* w = sb_->cow_headers(m, kHdr);  // the pipeline's reference to m moves to w
  ASSERT_NE(w, nullptr);
  ASSERT_NE(w, m);
  EXPECT_EQ(sb_->stats().cow_copies, 1u);
  EXPECT_FALSE(segment_headers_shared(w, kHdr));
  EXPECT_TRUE(segment_headers_shared(w, kHdr + 1)) << "the payload is referenced, not copied";
  EXPECT_FALSE(rte_mbuf_refcnt_read(w) > 1 || RTE_MBUF_CLONED(w)) << "the PMD's VLAN edit needs no second copy";
  expect_same_packet_fields(m, w);
  EXPECT_EQ(all_bytes(w), original);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 2) << "held + the payload reference (the pipeline's was released)";

  rewrite(w);
  EXPECT_EQ(all_bytes(w), rewritten(original));
  EXPECT_EQ(all_bytes(m), original) << "the held copy still carries the guest's header";
  expect_view(sb_->front(f_), 1000, 1000);

  rte_pktmbuf_free(w);  // transmitted
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  EXPECT_EQ(own_in_use(), 0u);
  sb_->release(f_, Seq(2000));
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(SegmentCow, ChainedPacketHeadersFillTheFirstMbuf) {
  rte_mbuf* m = held_packet(5, 1500, {kHdr, 700});  // headers alone in the first mbuf
  const auto original = all_bytes(m);
  rte_mbuf* w = sb_->cow_headers(m, kHdr);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->nb_segs, 3);  // headers + references to the two payload mbufs
  EXPECT_EQ(rte_pktmbuf_data_len(w), kHdr);
  EXPECT_EQ(all_bytes(w), original);
  rewrite(w);
  EXPECT_EQ(all_bytes(m), original);
  EXPECT_EQ(all_bytes(w), rewritten(original));
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1) << "nobody references the header-only first mbuf but the holder";
  rte_pktmbuf_free(w);
  for (rte_mbuf* s = m; s; s = s->next) EXPECT_EQ(rte_mbuf_refcnt_read(s), 1);
  sb_->release(f_, Seq(1505));
  EXPECT_EQ(in_use(), 0u);
  EXPECT_EQ(own_in_use(), 0u);
}

TEST_F(SegmentCow, HeadersAcrossMbufsGetAFullCopy) {
  rte_mbuf* m = held_packet(5, 300, {30});  // the TCP header starts in the second mbuf
  const auto original = all_bytes(m);
  rte_mbuf* w = sb_->cow_headers(m, kHdr);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(sb_->stats().cow_full_copies, 1u);
  EXPECT_GE(rte_pktmbuf_data_len(w), kHdr);
  expect_same_packet_fields(m, w);
  rewrite(w);
  EXPECT_EQ(all_bytes(m), original);
  EXPECT_EQ(all_bytes(w), rewritten(original));
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  rte_pktmbuf_free(w);
  sb_->release(f_, Seq(305));
  EXPECT_EQ(in_use(), 0u);
  EXPECT_EQ(own_in_use(), 0u);
}

TEST_F(SegmentCow, HeaderOnlyPacket) {
  rte_mbuf* m = pkt(9, 0);
  rte_mbuf_refcnt_update(m, 1);  // another holder
  const auto original = all_bytes(m);
  rte_mbuf* w = sb_->cow_headers(m, kHdr);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->nb_segs, 1);
  rewrite(w);
  EXPECT_EQ(all_bytes(m), original);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  rte_pktmbuf_free(w);
  rte_pktmbuf_free(m);
}

TEST_F(SegmentCow, IndirectInputIsShared) {
  rte_mbuf* m = pkt(1, 400);
  rte_mbuf* c = rte_pktmbuf_clone(m, src_);  // e.g. a segment rte_gso produced
  ASSERT_NE(c, nullptr);
  meta(c) = meta(m);
  ASSERT_EQ(rte_mbuf_refcnt_read(c), 1);
  EXPECT_TRUE(segment_headers_shared(c, kHdr));
  const auto original = all_bytes(m);
  rte_mbuf* w = sb_->cow_headers(c, kHdr);
  ASSERT_NE(w, nullptr);
  ASSERT_NE(w, c);
  rewrite(w);
  EXPECT_EQ(all_bytes(m), original);
  rte_pktmbuf_free(w);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  rte_pktmbuf_free(m);
}

TEST_F(SegmentCow, FailureLeavesTheCallersMbufUntouched) {
  rte_mbuf* m = held_packet(1, 1000);
  const auto original = all_bytes(m);
  // A pool whose private area cannot carry PktMeta.
  rte_mempool* nopriv = rte_pktmbuf_pool_create(("sbnp" + std::to_string(id_)).c_str(), 63, 0, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(nopriv, nullptr);
  CowResult how = CowResult::kPrivate;
  EXPECT_EQ(segment_cow_headers(m, kHdr, nopriv, &how), nullptr);
  EXPECT_EQ(how, CowResult::kFailed);
  EXPECT_EQ(segment_copy(m, nopriv), nullptr);
  // A pool with a single mbuf: the header copy fits, the payload reference does not.
  rte_mempool* tiny = rte_pktmbuf_pool_create(("sbt" + std::to_string(id_)).c_str(), 1, 0, kPktMetaPrivSize,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(tiny, nullptr);
  EXPECT_EQ(segment_cow_headers(m, kHdr, tiny, &how), nullptr);
  EXPECT_EQ(how, CowResult::kFailed);
  EXPECT_EQ(rte_mempool_in_use_count(tiny), 0u);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 2);
  EXPECT_EQ(all_bytes(m), original);
  rte_mempool_free(nopriv);
  rte_mempool_free(tiny);
  rte_pktmbuf_free(m);
  sb_->drop_flow(f_);
  EXPECT_EQ(in_use(), 0u);
}

}  // namespace
}  // namespace vsw::test
