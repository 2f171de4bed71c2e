// Strong TCP sequence-number type: arithmetic and comparison modulo 2^32.
#pragma once
#include <cstdint>

namespace vsw::net {

class Seq {
 public:
  constexpr Seq() = default;
  constexpr explicit Seq(uint32_t v) : v_(v) {}
  constexpr uint32_t raw() const { return v_; }
  // Signed distance from b to a (a - b), valid when |a - b| < 2^31.
  friend constexpr int32_t operator-(Seq a, Seq b) { return static_cast<int32_t>(a.v_ - b.v_); }
  friend constexpr Seq operator+(Seq a, uint32_t n) { return Seq(a.v_ + n); }
  friend constexpr Seq operator-(Seq a, uint32_t n) { return Seq(a.v_ - n); }
  Seq& operator+=(uint32_t n) { v_ += n; return *this; }
  friend constexpr bool operator==(Seq a, Seq b) { return a.v_ == b.v_; }
  friend constexpr bool operator<(Seq a, Seq b) { return (a - b) < 0; }
  friend constexpr bool operator<=(Seq a, Seq b) { return (a - b) <= 0; }
  friend constexpr bool operator>(Seq a, Seq b) { return (a - b) > 0; }
  friend constexpr bool operator>=(Seq a, Seq b) { return (a - b) >= 0; }
  static constexpr Seq max(Seq a, Seq b) { return a < b ? b : a; }
  static constexpr Seq min(Seq a, Seq b) { return a < b ? a : b; }
  // True if s lies in [lo, hi).
  static constexpr bool in_range(Seq s, Seq lo, Seq hi) { return s >= lo && s < hi; }

 private:
  uint32_t v_ = 0;
};

}  // namespace vsw::net
