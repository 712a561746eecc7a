// vcycle's optimizers: CAME, LAMB and Adafactor as torch::optim::Optimizer subclasses, the
// name → optimizer registry the trainer uses, the optimizer benchmark, and optimizer state by
// parameter name with its projection between levels.
#pragma once

#include "vcycle/optim/adafactor.h"
#include "vcycle/optim/bench.h"
#include "vcycle/optim/came.h"
#include "vcycle/optim/fused.h"
#include "vcycle/optim/lamb.h"
#include "vcycle/optim/registry.h"
#include "vcycle/operators/state_projection.h"
