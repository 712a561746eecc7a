// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/config/run_config.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/config.h> is deprecated: include <vcycle/config/run_config.h> (load_config: <vcycle/models/registry.h>)")
#endif
#include "vcycle/config/run_config.h"
#include "vcycle/models/registry.h"  // load_config
