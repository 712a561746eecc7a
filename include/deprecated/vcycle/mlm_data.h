// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/bert/mlm_data.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/mlm_data.h> is deprecated: include <vcycle/models/bert/mlm_data.h>")
#endif
#include "vcycle/models/bert/mlm_data.h"
