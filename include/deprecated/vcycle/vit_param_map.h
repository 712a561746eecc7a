// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/vit/param_map.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/vit_param_map.h> is deprecated: include <vcycle/models/vit/param_map.h>")
#endif
#include "vcycle/models/vit/param_map.h"
