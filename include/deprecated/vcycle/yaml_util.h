// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/yaml_util.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/yaml_util.h> is deprecated: include <vcycle/core/yaml_util.h>")
#endif
#include "vcycle/core/yaml_util.h"
