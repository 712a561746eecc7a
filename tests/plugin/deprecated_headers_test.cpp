// The 0.1 header paths still compile for one release (include/deprecated/: forwarding headers), and
// they declare what a 0.1 user called through them.
#define VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#include "vcycle/bert_adapter.h"
#include "vcycle/bert_param_map.h"
#include "vcycle/checkpoint.h"
#include "vcycle/config.h"
#include "vcycle/cycle.h"
#include "vcycle/data.h"
#include "vcycle/distributed.h"
#include "vcycle/errors.h"
#include "vcycle/experiment.h"
#include "vcycle/file_util.h"
#include "vcycle/finetune.h"
#include "vcycle/flops.h"
#include "vcycle/gpt_param_map.h"
#include "vcycle/image_data.h"
#include "vcycle/level_shape.h"
#include "vcycle/level_transition.h"
#include "vcycle/lora.h"
#include "vcycle/lr_schedule.h"
#include "vcycle/metrics.h"
#include "vcycle/mlm_data.h"
#include "vcycle/model/attention.h"
#include "vcycle/model/bert.h"
#include "vcycle/model/gpt.h"
#include "vcycle/model/vit.h"
#include "vcycle/model_adapter.h"
#include "vcycle/model_registry.h"
#include "vcycle/operators.h"
#include "vcycle/optim/state_projection.h"
#include "vcycle/param_map.h"
#include "vcycle/precision.h"
#include "vcycle/report.h"
#include "vcycle/runtime.h"
#include "vcycle/tensor_map.h"
#include "vcycle/tokenizer.h"
#include "vcycle/vit_adapter.h"
#include "vcycle/vit_param_map.h"
#include "vcycle/yaml_util.h"

#include <type_traits>

#include <catch2/catch.hpp>

TEST_CASE("deprecated headers: the 0.1 paths still declare the 0.1 API", "[plugin]") {
  // The plug-in example's calls, as a 0.1 program spelled them (see examples/custom_model/main.cpp).
  CHECK(std::is_same_v<decltype(&vcycle::load_config_unchecked),
                       vcycle::RunConfig (*)(const std::string&, const std::vector<std::string>&)>);
  CHECK(std::is_same_v<decltype(&vcycle::load_config),
                       vcycle::RunConfig (*)(const std::string&, const std::vector<std::string>&)>);
  CHECK(std::is_abstract_v<vcycle::ModelAdapter>);
  CHECK(std::is_class_v<vcycle::LevelPlan>);
  CHECK(std::is_class_v<vcycle::ParamMap>);
  CHECK(vcycle::kExitBadInput == 2);
}
