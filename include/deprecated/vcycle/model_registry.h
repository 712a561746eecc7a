// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/registry.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/model_registry.h> is deprecated: include <vcycle/models/registry.h>")
#endif
#include "vcycle/models/registry.h"
