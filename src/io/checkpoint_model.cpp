// A checkpoint's model, ready to run; see include/vcycle/io/checkpoint_model.h.
#include "vcycle/io/checkpoint_model.h"

#include <filesystem>

#include <fmt/format.h>

#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/tensor_map.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/level_plan.h"
#include "vcycle/schedules/run_checkpoint.h"

namespace vcycle {

namespace fs = std::filesystem;

std::string find_checkpoint_config(const std::string& checkpoint, const std::string& given) {
  if (!given.empty()) return given;
  const fs::path dir = fs::absolute(checkpoint).parent_path();
  for (const fs::path& d : {dir, dir.parent_path()}) {
    const fs::path p = d / kResolvedConfigFile;
    if (fs::exists(p)) return p.string();
  }
  throw InputError(checkpoint + ": no " + std::string(kResolvedConfigFile) +
                   " beside it or one directory up; pass the run's config with --config");
}

CheckpointModel load_checkpoint_model(const std::string& checkpoint, const std::string& config,
                                      const std::vector<std::string>& overrides) {
  CheckpointModel m;
  m.cfg = load_config(config, overrides);
  m.adapter = make_model(m.cfg);
  const TensorMap tensors = checkpoint_model(load_checkpoint(checkpoint));
  if (tensors.empty()) throw InputError(checkpoint + ": checkpoint holds no model tensors");
  const LevelPlan plan(m.cfg, *m.adapter, m.cfg.levels.count);
  const ParamMap map = m.adapter->param_map();
  std::string tried;
  for (int l = 1; l <= plan.count(); ++l) {
    try {
      param_map_validate(map, tensors, plan.shape(l));
      m.level = l;
      m.shape = plan.shape(l);
      m.module = m.adapter->build(m.shape);
      load_module_tensors(*m.module, tensors, checkpoint);
      m.module->eval();
      return m;
    } catch (const InputError& e) {
      tried += fmt::format("\n  level {} ({}): {}", l, plan.shape(l).to_string(), e.what());
    }
  }
  throw InputError(checkpoint + ": its tensors match no level of " + config + ":" + tried);
}

}  // namespace vcycle
