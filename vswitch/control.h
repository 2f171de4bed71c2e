// Control server: newline-delimited JSON requests on a Unix stream socket.
// Request  {"cmd": "port-stats", "args": {"argv": ["vm1"]}}
// Response {"ok": true, "result": ...} | {"ok": false, "error": "..."}
#pragma once
#include <atomic>
#include <string>
#include <thread>

namespace vsw {

class Switch;

class ControlServer {
 public:
  ControlServer(Switch& sw, std::string path) : sw_(sw), path_(std::move(path)) {}
  ~ControlServer() { stop(); }
  bool start(std::string& err);
  void stop();

 private:
  void loop();
  void serve(int fd);

  Switch& sw_;
  std::string path_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thr_;
};

}  // namespace vsw
