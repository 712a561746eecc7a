// TEMPORARY (replaced by the optimizer branch at merge).
#include "vcycle/optim/registry.h"
#include <sstream>
#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include "vcycle/errors.h"
namespace vcycle::optim {
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::string& name, const std::vector<std::pair<std::string, torch::Tensor>>& named_params,
    double lr, const YAML::Node& options, const std::string& where) {
  if (name != "adamw") throw ConfigError(where, "optimizer", "unknown optimizer '" + name + "'");
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& [n, p] : named_params) (p.dim() < 2 ? no_decay : decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(0.01)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(0)));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
}
const std::vector<std::string>& optimizer_names() { static std::vector<std::string> n{"adamw"}; return n; }
int64_t state_bytes(const torch::optim::Optimizer&) { return 0; }
void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}
std::string save_state(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive a; opt.save(a); std::ostringstream s; a.save_to(s); return s.str();
}
void load_state(torch::optim::Optimizer& opt, const std::string& bytes) {
  torch::serialize::InputArchive a; std::istringstream s(bytes); a.load_from(s); opt.load(a);
}
}
