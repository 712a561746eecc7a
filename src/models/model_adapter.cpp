// The model adapter's defaults; see include/vcycle/models/model_adapter.h.
#include "vcycle/models/model_adapter.h"

#include "vcycle/config/run_config.h"
#include "vcycle/data/token_data.h"

namespace vcycle {

std::unique_ptr<BatchSource> ModelAdapter::batches(const RunConfig& cfg) const {
  return std::make_unique<TokenBatchSource>(cfg.data.train, cfg.data.valid, vocab_size(), cfg.data.batch_size, context(),
                                            cfg.seed, cfg.eval.batches);
}

}  // namespace vcycle
