// Helpers of the segment buffer tests: a fixture with its own source pool
// (no per-lcore cache: in-use counts are exact) and a SegmentBuffer, TCP
// frames whose payload byte at sequence s is a function of s, and byte views.
#pragma once
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cc/pkt_meta.h"
#include "cc/services/segment_buffer.h"
#include "tests/common/pkt_builder.h"

namespace vsw::test {

inline constexpr uint32_t kHdr = 54;  // Ethernet + IPv4 + TCP without options

inline uint8_t seq_byte(uint32_t seq) { return static_cast<uint8_t>(seq * 31u + 7u); }

inline std::vector<uint8_t> expected_payload(uint32_t seq, uint32_t len) {
  std::vector<uint8_t> v(len);
  for (uint32_t i = 0; i < len; ++i) v[i] = seq_byte(seq + i);
  return v;
}

inline std::vector<uint8_t> read_bytes(const rte_mbuf* m, uint32_t off, uint32_t len) {
  std::vector<uint8_t> v(len);
  const void* p = rte_pktmbuf_read(m, off, len, v.data());
  if (!p) return {};
  if (p != v.data()) std::memcpy(v.data(), p, len);
  return v;
}
inline std::vector<uint8_t> all_bytes(const rte_mbuf* m) { return read_bytes(m, 0, rte_pktmbuf_pkt_len(m)); }

class SegmentFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    id_ = ++n;
    src_ = rte_pktmbuf_pool_create(("sbsrc" + std::to_string(id_)).c_str(), 2047, 0, kPktMetaPrivSize,
                                   RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    ASSERT_NE(src_, nullptr);
    cfg_.name = "sbown" + std::to_string(id_);
    cfg_.descriptors = 512;
    cfg_.pool_mbufs = 511;
    cfg_.pool_cache = 0;
    cfg_.priv_size = kPktMetaPrivSize;
    cfg_.max_vms = 4;
    remake();
  }
  void TearDown() override {
    sb_.reset();  // frees what the buffer still holds
    EXPECT_EQ(rte_mempool_in_use_count(src_), 0u) << "source mbufs leaked";
    rte_mempool_free(src_);
  }
  void remake() {
    sb_.reset();
    sb_ = services::SegmentBuffer::create(cfg_);
    ASSERT_NE(sb_, nullptr);
  }
  unsigned in_use() const { return rte_mempool_in_use_count(src_); }
  unsigned own_in_use() const { return rte_mempool_in_use_count(sb_->pool()); }

  // A TCP/IPv4 frame carrying [seq, seq+len), split into mbufs of the given
  // sizes (the last takes the rest; none larger than an mbuf's room). Payload byte at sequence s = seq_byte(s).
  rte_mbuf* pkt(uint32_t seq, uint32_t len, std::vector<uint32_t> seg_sizes = {}, rte_mempool* mp = nullptr) {
    TcpSpec t;
    t.seq = seq;
    t.payload = len;
    std::vector<uint8_t> f = FrameBuilder(mac(2), mac(1)).tcp4(t);
    for (uint32_t i = 0; i < len; ++i) f[kHdr + i] = seq_byte(seq + i);
    rte_mbuf* head = nullptr;
    size_t done = 0;
    for (size_t i = 0; done < f.size(); ++i) {
      rte_mbuf* s = rte_pktmbuf_alloc(mp ? mp : src_);
      if (!s) return nullptr;
      const size_t k = std::min<size_t>({i < seg_sizes.size() ? seg_sizes[i] : f.size() - done, f.size() - done,
                                         rte_pktmbuf_tailroom(s)});
      std::memcpy(rte_pktmbuf_append(s, static_cast<uint16_t>(k)), f.data() + done, k);
      done += k;
      if (!head) head = s;
      else if (rte_pktmbuf_chain(head, s) != 0) return nullptr;
    }
    meta(head) = PktMeta{};
    meta(head).in_port = 3;
    meta(head).flow_hash = 0xfeedu + seq;
    meta(head).payload_len = len;
    return head;
  }
  // The bytes a held segment's view covers must be the payload it claims.
  static void expect_view(const services::HeldSegment* s, uint32_t seq, uint32_t len) {
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->seq, seq);
    EXPECT_EQ(s->len, len);
    EXPECT_EQ(read_bytes(s->m, s->off, s->len), expected_payload(seq, len));
  }

  int id_ = 0;
  rte_mempool* src_ = nullptr;
  services::SegmentBufferConfig cfg_;
  std::unique_ptr<services::SegmentBuffer> sb_;
};

}  // namespace vsw::test
