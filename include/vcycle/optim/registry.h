// TEMPORARY (replaced by the optimizer branch at merge): the registry interface, AdamW only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include <torch/optim/optimizer.h>
#include <yaml-cpp/yaml.h>
namespace vcycle::optim {
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::string& name, const std::vector<std::pair<std::string, torch::Tensor>>& named_params,
    double lr, const YAML::Node& options, const std::string& where);
const std::vector<std::string>& optimizer_names();
int64_t state_bytes(const torch::optim::Optimizer& opt);
void set_learning_rate(torch::optim::Optimizer& opt, double lr);
std::string save_state(torch::optim::Optimizer& opt);
void load_state(torch::optim::Optimizer& opt, const std::string& bytes);
}
