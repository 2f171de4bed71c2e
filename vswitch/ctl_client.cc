#include "vswitch/ctl_client.h"

#include "vswitch/fd_io.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vsw {

nlohmann::json ctl_args_from_words(const std::vector<std::string>& words) {
  nlohmann::json a = {{"argv", nlohmann::json::array()}};
  for (const auto& w : words) {
    auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) a["argv"].push_back(w);
    else a[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return a;
}

nlohmann::json ctl_request(const std::string& socket_path, const std::string& cmd, const nlohmann::json& args,
                           int timeout_ms) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string e = std::strerror(errno);
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot connect to " + socket_path + ": " + e + " (is vswitchd running?)");
  }
  std::string req = nlohmann::json{{"cmd", cmd}, {"args", args}}.dump() + "\n";
  if (!write_all(fd, req.data(), req.size())) {
    close(fd);
    throw std::runtime_error("write to control socket failed");
  }
  std::string buf;
  char tmp[65536];
  while (buf.find('\n') == std::string::npos) {
    if (wait_readable(fd, timeout_ms) <= 0) {
      close(fd);
      throw std::runtime_error("timeout waiting for vswitchd");
    }
    ssize_t n = read_some(fd, tmp, sizeof(tmp));
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
  }
  close(fd);
  return nlohmann::json::parse(buf.substr(0, buf.find('\n')));
}

}  // namespace vsw
