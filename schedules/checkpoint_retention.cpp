// Checkpoint retention; see include/vcycle/schedules/checkpoint_retention.h.
#include "vcycle/schedules/checkpoint_retention.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <vector>

#include "vcycle/core/errors.h"

namespace vcycle {

namespace fs = std::filesystem;

void retain_checkpoint(const std::string& dir, const std::string& current, int64_t global_step, int phase_end, int keep) {
  const fs::path copy = fs::path(dir) / (phase_end > 0 ? "checkpoint-phase" + std::to_string(phase_end) + ".ckpt"
                                                       : "checkpoint-step" + std::to_string(global_step) + ".ckpt");
  std::error_code ec;
  fs::remove(copy, ec);
  fs::create_hard_link(current, copy, ec);
  if (ec) {
    fs::copy_file(current, copy, fs::copy_options::overwrite_existing, ec);
    if (ec) throw RunError(copy.string() + ": cannot write a retained checkpoint (" + ec.message() + ")");
  }
  static const std::regex step_name(R"(checkpoint-step(\d+)\.ckpt)");
  std::vector<std::pair<int64_t, fs::path>> steps;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, step_name)) steps.emplace_back(std::stoll(m[1]), entry.path());
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i) fs::remove(steps[i].second, ec);
}

}  // namespace vcycle
