// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/gpt/gpt.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/model/gpt.h> is deprecated: include <vcycle/models/gpt/gpt.h>")
#endif
#include "vcycle/models/gpt/gpt.h"
