// Test helper: an in-memory switch port. The test injects frames into its rx
// side and reads what the switch transmitted, through the real PMD thread.
#pragma once
#include <rte_mbuf.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "vswitch/port.h"

namespace vsw::test {

struct TxFrame {
  std::vector<uint8_t> bytes;
  uint64_t ol_flags;
  uint16_t tso_segsz;
};

class MemPort final : public Port {
 public:
  MemPort(std::string name, rte_mempool* mp, uint64_t tx_offloads = 0)
      : Port(std::move(name), Kind::kEthdev), mp_(mp), caps_(tx_offloads) {}
  bool start(unsigned) override { return true; }
  void stop() override {}
  uint16_t n_rxq() const override { return 1; }
  uint16_t rx_burst(uint16_t, rte_mbuf** pkts, uint16_t n) override {
    std::lock_guard lk(mu_);
    uint16_t k = 0;
    while (k < n && !rx_.empty()) {
      pkts[k++] = rx_.front();
      rx_.pop_front();
    }
    return k;
  }
  // Accept at most `limit` packets per burst (a guest ring with little room).
  void set_accept_limit(uint16_t limit) { limit_.store(limit); }
  uint16_t tx_burst(unsigned, rte_mbuf** pkts, uint16_t n) override {
    std::lock_guard lk(mu_);
    const uint16_t take = std::min<uint16_t>(n, limit_.load());
    for (uint16_t i = 0; i < take; ++i) {
      TxFrame f;
      f.bytes.resize(rte_pktmbuf_pkt_len(pkts[i]));
      const void* d = rte_pktmbuf_read(pkts[i], 0, f.bytes.size(), f.bytes.data());
      if (d != f.bytes.data()) std::memcpy(f.bytes.data(), d, f.bytes.size());
      f.ol_flags = pkts[i]->ol_flags;
      f.tso_segsz = pkts[i]->tso_segsz;
      tx_.push_back(std::move(f));
    }
    rte_pktmbuf_free_bulk(pkts, n);
    return take;
  }
  uint64_t tx_offloads() const override { return caps_; }
  bool link_up() const override { return true; }
  nlohmann::json describe() const override { return {{"type", "mem"}}; }

  // Test thread side.
  void inject(const std::vector<uint8_t>& frame, uint64_t ol_flags = 0, uint16_t tso_segsz = 0) {
    rte_mbuf* m = make_mbuf(frame, ol_flags, tso_segsz);
    std::lock_guard lk(mu_);
    rx_.push_back(m);
  }
  // All frames become visible to the PMD at once (one rx burst if <= 32).
  void inject_burst(const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<rte_mbuf*> ms;
    for (const auto& f : frames) ms.push_back(make_mbuf(f, 0, 0));
    std::lock_guard lk(mu_);
    rx_.insert(rx_.end(), ms.begin(), ms.end());
  }
  rte_mbuf* make_mbuf(const std::vector<uint8_t>& frame, uint64_t ol_flags, uint16_t tso_segsz) {
    rte_mbuf* m = rte_pktmbuf_alloc(mp_);
    if (!m) throw std::runtime_error("mbuf alloc");
    // Large frames become chains, as the vhost library delivers them.
    size_t off = 0;
    rte_mbuf* last = m;
    while (off < frame.size()) {
      size_t room = rte_pktmbuf_tailroom(last);
      if (room == 0) {
        rte_mbuf* s = rte_pktmbuf_alloc(mp_);
        rte_pktmbuf_chain(m, s);
        last = s;
        continue;
      }
      size_t n = std::min(room, frame.size() - off);
      std::memcpy(rte_pktmbuf_mtod_offset(last, uint8_t*, rte_pktmbuf_data_len(last)), frame.data() + off, n);
      last->data_len = static_cast<uint16_t>(last->data_len + n);
      m->pkt_len += static_cast<uint32_t>(n);
      off += n;
    }
    m->ol_flags = ol_flags;
    m->tso_segsz = tso_segsz;
    return m;
  }
  std::vector<TxFrame> take() {
    std::lock_guard lk(mu_);
    std::vector<TxFrame> out(tx_.begin(), tx_.end());
    tx_.clear();
    return out;
  }
  size_t tx_count() {
    std::lock_guard lk(mu_);
    return tx_.size();
  }

 private:
  rte_mempool* mp_;
  uint64_t caps_;
  std::atomic<uint16_t> limit_{0xffff};
  std::mutex mu_;
  std::deque<rte_mbuf*> rx_;
  std::deque<TxFrame> tx_;
};

// Polls cond for up to timeout.
template <typename F>
bool wait_for(F cond, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

}  // namespace vsw::test
