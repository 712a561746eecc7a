// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/data/tokenizer.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/tokenizer.h> is deprecated: include <vcycle/data/tokenizer.h>")
#endif
#include "vcycle/data/tokenizer.h"
