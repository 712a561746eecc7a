// Operators on tiny tensors whose results are written out by hand (spec operators.md §1–3).
#include "op_test_util.h"

using namespace vcycle;

namespace {

torch::Tensor t2(std::initializer_list<std::initializer_list<float>> rows) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows) out.push_back(torch::tensor(std::vector<float>(r)));
  return torch::stack(out);
}

torch::Tensor t1(std::vector<float> v) { return torch::tensor(v); }

// W[r][c] = 4r + c.
torch::Tensor w4x4() { return torch::arange(16, torch::kFloat).view({4, 4}); }

LevelShape shape_a(int64_t a, int64_t layers = 1) { return LevelShape{{{"a", a}}, layers}; }

CoalesceFactors width_only(Pairing p, int64_t k = 2) {
  CoalesceFactors f;
  f.width = k;
  f.depth = 1;
  f.width_pairing = p;
  return f;
}

void check_tensor(const TensorMap& m, const std::string& name, const torch::Tensor& want) {
  INFO(name << ": got\n" << m.at(name) << "\nwant\n" << want);
  REQUIRE(m.count(name) == 1);
  CHECK(m.at(name).sizes() == want.sizes());
  CHECK(torch::equal(m.at(name), want));
}

}  // namespace

TEST_CASE("out role on rows: coalesce averages, de-coalesce copies", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("w", {axis_out("a"), axis_none()});
  // halves pairs rows {0,2},{1,3}; neighbors {0,1},{2,3}.
  check_tensor(coalesce({{"w", w4x4()}}, map, shape_a(4), width_only(Pairing::halves)), "w",
               t2({{4, 5, 6, 7}, {8, 9, 10, 11}}));
  check_tensor(coalesce({{"w", w4x4()}}, map, shape_a(4), width_only(Pairing::neighbors)), "w",
               t2({{2, 3, 4, 5}, {10, 11, 12, 13}}));
  const auto small = t2({{1, 2, 3, 4}, {5, 6, 7, 8}});
  check_tensor(decoalesce({{"w", small}}, map, shape_a(4), width_only(Pairing::halves)), "w",
               t2({{1, 2, 3, 4}, {5, 6, 7, 8}, {1, 2, 3, 4}, {5, 6, 7, 8}}));
  check_tensor(decoalesce({{"w", small}}, map, shape_a(4), width_only(Pairing::neighbors)), "w",
               t2({{1, 2, 3, 4}, {1, 2, 3, 4}, {5, 6, 7, 8}, {5, 6, 7, 8}}));
}

TEST_CASE("in role on columns: coalesce sums, de-coalesce splits", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("w", {axis_none(), axis_in("a")});
  // halves: columns {0,2},{1,3} -> 8r+2, 8r+4; neighbors: {0,1},{2,3} -> 8r+1, 8r+5.
  check_tensor(coalesce({{"w", w4x4()}}, map, shape_a(4), width_only(Pairing::halves)), "w",
               t2({{2, 4}, {10, 12}, {18, 20}, {26, 28}}));
  check_tensor(coalesce({{"w", w4x4()}}, map, shape_a(4), width_only(Pairing::neighbors)), "w",
               t2({{1, 5}, {9, 13}, {17, 21}, {25, 29}}));
  const auto small = t2({{1, 2}, {3, 4}, {5, 6}, {7, 8}});
  check_tensor(decoalesce({{"w", small}}, map, shape_a(4), width_only(Pairing::halves)), "w",
               t2({{.5, 1, .5, 1}, {1.5, 2, 1.5, 2}, {2.5, 3, 2.5, 3}, {3.5, 4, 3.5, 4}}));
  check_tensor(decoalesce({{"w", small}}, map, shape_a(4), width_only(Pairing::neighbors)), "w",
               t2({{.5, .5, 1, 1}, {1.5, 1.5, 2, 2}, {2.5, 2.5, 3, 3}, {3.5, 3.5, 4, 4}}));
}

TEST_CASE("a 4x4 linear layer (out rows, in columns) and its bias", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("w", {axis_out("a"), axis_in("a")}).param("b", {axis_out("a")});
  const TensorMap big{{"w", w4x4()}, {"b", t1({1, 2, 3, 5})}};
  auto h = coalesce(big, map, shape_a(4), width_only(Pairing::halves));
  check_tensor(h, "w", t2({{10, 12}, {18, 20}}));  // rows averaged, then columns summed
  check_tensor(h, "b", t1({2, 3.5}));
  auto n = coalesce(big, map, shape_a(4), width_only(Pairing::neighbors));
  check_tensor(n, "w", t2({{5, 9}, {21, 25}}));
  check_tensor(n, "b", t1({1.5, 4}));

  const TensorMap small{{"w", t2({{1, 2}, {3, 4}})}, {"b", t1({7, 9})}};
  auto dh = decoalesce(small, map, shape_a(4), width_only(Pairing::halves));
  check_tensor(dh, "w", t2({{.5, 1, .5, 1}, {1.5, 2, 1.5, 2}, {.5, 1, .5, 1}, {1.5, 2, 1.5, 2}}));
  check_tensor(dh, "b", t1({7, 9, 7, 9}));
  auto dn = decoalesce(small, map, shape_a(4), width_only(Pairing::neighbors));
  check_tensor(dn, "w", t2({{.5, .5, 1, 1}, {.5, .5, 1, 1}, {1.5, 1.5, 2, 2}, {1.5, 1.5, 2, 2}}));
  check_tensor(dn, "b", t1({7, 7, 9, 9}));
}

TEST_CASE("factor 4 on a 4x4 layer merges everything into one unit", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("w", {axis_out("a"), axis_in("a")});
  // mean of rows = [6, 7, 8, 9], then sum of columns = 30; the same for both pairings.
  for (auto p : {Pairing::halves, Pairing::neighbors}) {
    check_tensor(coalesce({{"w", w4x4()}}, map, shape_a(4), width_only(p, 4)), "w", t2({{30}}));
    check_tensor(decoalesce({{"w", t2({{8}})}}, map, shape_a(4), width_only(p, 4)), "w", torch::full({4, 4}, 2.0f));
  }
}

TEST_CASE("chunked QKV: each of q, k, v is coalesced separately and heads merge whole", "[operators][hand]") {
  // 4 heads of size 2; rows of chunk c (q, k, v), head h, element e sit at 8c + 2h + e.
  ParamMap map;
  map.space("heads", 2).param("qkv", {axis_out("heads", 3), axis_none()});
  const LevelShape large{{{"heads", 8}}, 1};
  const auto qkv = torch::arange(24, torch::kFloat).view({24, 1});
  // halves: heads {0,2},{1,3} -> chunk c: 8c + [2, 3, 4, 5]
  check_tensor(coalesce({{"qkv", qkv}}, map, large, width_only(Pairing::halves)), "qkv",
               t1({2, 3, 4, 5, 10, 11, 12, 13, 18, 19, 20, 21}).view({12, 1}));
  // neighbors: heads {0,1},{2,3} -> chunk c: 8c + [1, 2, 5, 6] (element-wise neighbors would give 0.5, …)
  check_tensor(coalesce({{"qkv", qkv}}, map, large, width_only(Pairing::neighbors)), "qkv",
               t1({1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}).view({12, 1}));

  // 2 small heads: chunk c, head h, element e at 4c + 2h + e.
  const auto small = torch::arange(12, torch::kFloat).view({12, 1});
  check_tensor(decoalesce({{"qkv", small}}, map, large, width_only(Pairing::halves)), "qkv",
               t1({0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10, 11}).view({24, 1}));
  check_tensor(decoalesce({{"qkv", small}}, map, large, width_only(Pairing::neighbors)), "qkv",
               t1({0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11}).view({24, 1}));
}

TEST_CASE("chunked QKV with an in-role hidden axis", "[operators][hand]") {
  // qkv (3·H·h, d) with 2 heads of size 1 and d = 2; k = 2 merges both heads and both hidden units.
  ParamMap map;
  map.space("heads", 1).space("hidden").param("qkv", {axis_out("heads", 3), axis_in("hidden")});
  const LevelShape large{{{"heads", 2}, {"hidden", 2}}, 1};
  const auto qkv = t2({{1, 2}, {3, 4}, {10, 20}, {30, 40}, {100, 200}, {300, 400}});
  // per chunk: rows averaged ((1+3)/2, (2+4)/2) = (2, 3), then columns summed: 5; etc.
  check_tensor(coalesce({{"qkv", qkv}}, map, large, width_only(Pairing::halves)), "qkv", t2({{5}, {50}, {500}}));
  check_tensor(decoalesce({{"qkv", t2({{2}, {4}, {6}})}}, map, large, width_only(Pairing::neighbors)), "qkv",
               t2({{1, 1}, {1, 1}, {2, 2}, {2, 2}, {3, 3}, {3, 3}}));
}

TEST_CASE("depth: blocks of a group are averaged, de-coalescing copies", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("blocks.{layer}.b", {axis_none()}).param("head", {axis_none()});
  TensorMap big{{"head", t1({42})}};
  for (int l = 0; l < 4; ++l) big["blocks." + std::to_string(l) + ".b"] = t1({float(l), float(10 * l)});
  CoalesceFactors f;
  f.width = 1;
  f.depth = 2;
  const LevelShape large = shape_a(2, 4);

  f.depth_pairing = Pairing::halves;  // blocks {0,2},{1,3}
  auto h = coalesce(big, map, large, f);
  CHECK(h.size() == 3);
  check_tensor(h, "blocks.0.b", t1({1, 10}));
  check_tensor(h, "blocks.1.b", t1({2, 20}));
  check_tensor(h, "head", t1({42}));
  f.depth_pairing = Pairing::neighbors;  // blocks {0,1},{2,3}
  auto n = coalesce(big, map, large, f);
  check_tensor(n, "blocks.0.b", t1({0.5, 5}));
  check_tensor(n, "blocks.1.b", t1({2.5, 25}));

  const TensorMap small{{"head", t1({42})}, {"blocks.0.b", t1({1, 2})}, {"blocks.1.b", t1({3, 4})}};
  f.depth_pairing = Pairing::halves;
  auto dh = decoalesce(small, map, large, f);
  CHECK(dh.size() == 5);
  check_tensor(dh, "blocks.0.b", t1({1, 2}));
  check_tensor(dh, "blocks.1.b", t1({3, 4}));
  check_tensor(dh, "blocks.2.b", t1({1, 2}));
  check_tensor(dh, "blocks.3.b", t1({3, 4}));
  f.depth_pairing = Pairing::neighbors;
  auto dn = decoalesce(small, map, large, f);
  check_tensor(dn, "blocks.0.b", t1({1, 2}));
  check_tensor(dn, "blocks.1.b", t1({1, 2}));
  check_tensor(dn, "blocks.2.b", t1({3, 4}));
  check_tensor(dn, "blocks.3.b", t1({3, 4}));
}

TEST_CASE("width and depth pairings are independent", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("blocks.{layer}.b", {axis_out("a")});
  TensorMap big;
  for (int l = 0; l < 4; ++l) big["blocks." + std::to_string(l) + ".b"] = t1({0, 1, 2, 3}) + 100.0f * l;
  CoalesceFactors f;  // width 2 neighbors, depth 2 halves
  f.width_pairing = Pairing::neighbors;
  f.depth_pairing = Pairing::halves;
  auto out = coalesce(big, map, shape_a(4, 4), f);
  // width neighbors: (0.5, 2.5) + 100 l; depth halves: layers {0,2} -> +100, {1,3} -> +200.
  check_tensor(out, "blocks.0.b", t1({100.5, 102.5}));
  check_tensor(out, "blocks.1.b", t1({200.5, 202.5}));
}

TEST_CASE("second moments are averaged on every axis and copied back", "[operators][hand]") {
  ParamMap map;
  map.space("a").param("w", {axis_out("a"), axis_in("a")});
  const TensorMap big{{"w", w4x4()}};
  // rows averaged (halves) -> [[4,5,6,7],[8,9,10,11]], columns averaged -> [[5, 6], [9, 10]].
  check_tensor(coalesce_state(big, map, shape_a(4), width_only(Pairing::halves), MomentKind::second), "w",
               t2({{5, 6}, {9, 10}}));
  // first moments behave like the parameter (columns summed)
  check_tensor(coalesce_state(big, map, shape_a(4), width_only(Pairing::halves), MomentKind::first), "w",
               t2({{10, 12}, {18, 20}}));
  check_tensor(decoalesce_state({{"w", t2({{1, 2}, {3, 4}})}}, map, shape_a(4), width_only(Pairing::halves),
                                MomentKind::second),
               "w", t2({{1, 2, 1, 2}, {3, 4, 3, 4}, {1, 2, 1, 2}, {3, 4, 3, 4}}));
  // state may hold a subset of the parameters
  ParamMap two = map;
  two.param("unused", {axis_none()});
  CHECK(coalesce_state(big, two, shape_a(4), width_only(Pairing::halves), MomentKind::second).size() == 1);
}
