// TEMPORARY until the operators branch lands (it provides gpt_level_shape / gpt_config_for_shape).
#include "vcycle/level_shape.h"
#include "vcycle/model/gpt.h"
namespace vcycle {
LevelShape gpt_level_shape(const GPTConfig& c) { LevelShape s; s.sizes = {{"hidden", c.hidden}, {"heads", c.heads * c.head_size}, {"ffn", c.ffn}}; s.layers = c.layers; return s; }
GPTConfig gpt_config_for_shape(const GPTConfig& base, const LevelShape& s) { GPTConfig c = base; c.hidden = s.size("hidden"); c.heads = s.size("heads") / base.head_size; c.ffn = s.size("ffn"); c.layers = s.layers; return c; }
}
