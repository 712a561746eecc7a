// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/operators/state_projection.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/optim/state_projection.h> is deprecated: include <vcycle/operators/state_projection.h>")
#endif
#include "vcycle/operators/state_projection.h"
