// Test helper: crafts Ethernet/IPv4|IPv6/TCP frames with valid checksums and
// turns them into TcpSegments through the real parser.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cc/checksum.h"
#include "cc/net_headers.h"
#include "cc/parse.h"
#include "cc/tcp_options.h"
#include "cc/tcp_segment.h"

namespace vsw::test {

struct Endpoint {
  std::string ip;  // "10.0.0.1" or "fd00::1"
  uint16_t port;
};

struct TcpSpec {
  Endpoint src, dst;
  uint8_t flags = net::tcpflag::kAck;
  uint32_t seq = 0, ack = 0;
  uint16_t window = 65535;
  std::vector<uint8_t> opts;  // raw option bytes, padded to 4 by the builder
  uint32_t payload = 0;
  uint16_t vlan = 0;  // adds an 802.1Q tag when non-zero
};

bool parse_ip(const std::string& s, uint8_t out[16], bool& v6);

// Frame with correct IP and TCP checksums.
std::vector<uint8_t> build_frame(const TcpSpec& t);

// Full TCP checksum check (pseudo header + segment) of a built frame.
bool tcp_csum_ok(const std::vector<uint8_t>& frame);

// Parses the frame like the PMD does and builds the segment.
bool segment_of(const std::vector<uint8_t>& frame, TcpSegment& s, uint16_t gso_size = 0);
TcpSegment seg(const TcpSpec& t, uint16_t gso_size = 0);

}  // namespace vsw::test
