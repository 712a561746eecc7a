// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/vit/adapter.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/vit_adapter.h> is deprecated: include <vcycle/models/vit/adapter.h>")
#endif
#include "vcycle/models/vit/adapter.h"
