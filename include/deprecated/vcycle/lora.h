// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/lora.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/lora.h> is deprecated: include <vcycle/models/lora.h>")
#endif
#include "vcycle/models/lora.h"
