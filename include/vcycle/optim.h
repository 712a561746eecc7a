// vcycle's optimizers: CAME, LAMB and Adafactor as torch::optim::Optimizer subclasses, the
// name → optimizer registry the trainer uses (with each optimizer's state by field), and the
// optimizer benchmark. Moving optimizer state between levels is an operator:
// vcycle/operators/state_projection.h.
#pragma once

#include "vcycle/optim/adafactor.h"
#include "vcycle/optim/bench.h"
#include "vcycle/optim/came.h"
#include "vcycle/optim/fused.h"
#include "vcycle/optim/lamb.h"
#include "vcycle/optim/registry.h"
