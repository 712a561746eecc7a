// The plug-in path end to end: `cmake --install` this build tree into a temporary prefix, configure
// and build examples/custom_model (an outside project that only says find_package(vcycle)) against
// it, and run its LLaMA — registered as model type `llama`, the program being vcycle::cli_main —
// through vcycle's commands: a short 2-level V-cycle (`run`), `--resume`, `report`, `coalesce`, and
// `run --nproc 2`, whose final parameters must equal the 1-process run's.
//
// Tolerance of the --nproc comparison: that of tests/core/distributed_test.cpp (the same model
// family, the same reduction order argument): ‖θ₂ − θ₁‖ ≤ 1e-5·max(‖θ₁‖, 1) per tensor and
// ≤ 1e-5·‖θ₁‖ over all.
//
// Slow by nature (it compiles a project: about a minute on 2 cores, less with a warm ccache), so it
// is one test case. It never skips: a missing tool is a failure.
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/tensor_map.h"
#include "vcycle/schedules/run_checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

struct Shell {
  int code = -1;       // exit code (-1 when killed by a signal)
  std::string output;  // stdout + stderr
  double seconds = 0;
};

// Runs `command` through /bin/sh with its output captured in `log`.
Shell sh(const std::string& command, const std::string& log) {
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system((command + " > " + quoted(log) + " 2>&1").c_str());
  Shell r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  r.output = read_text(log);
  return r;
}

std::string tail(const std::string& s, size_t n = 4000) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

std::string run_config(const std::string& data, const std::string& out, const std::string& extra_model = "") {
  // precision: fp32, because the runs are compared to fp32 rounding (auto is bf16 on some CPUs).
  return "name: llama-install-test\nseed: 7\nthreads: 1\nprecision: fp32\n"
         "model: { type: llama, layers: 2, hidden: 16, heads: 2, head_size: 8, ffn: 24, context: 16" + extra_model + " }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, tokenizer: byte, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n"
         "phases:\n"
         "  - { level: 1, steps: 4, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 2, steps: 8, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 1, steps: 6, lr: 2e-3 }\n"
         "baseline: { steps: 12, lr: 3e-3, warmup: 1 }\n"
         "eval: { every: 4, batches: 2 }\n"
         "train: { log_every: 2, checkpoint_every: 5 }\n"
         "output: " + out + "\n";
}

// The final parameters of two runs agree within the data-parallel tests' tolerance (top of file).
void check_same_params(const std::string& a_ckpt, const std::string& b_ckpt) {
  const vcycle::TensorMap a = vcycle::checkpoint_model(vcycle::load_checkpoint(a_ckpt));
  const vcycle::TensorMap b = vcycle::checkpoint_model(vcycle::load_checkpoint(b_ckpt));
  REQUIRE(!a.empty());
  REQUIRE(a.size() == b.size());
  double diff2 = 0, norm2 = 0;
  for (const auto& [name, t] : a) {
    INFO(name);
    REQUIRE(b.count(name) == 1);
    const auto& u = b.at(name);
    REQUIRE(t.sizes() == u.sizes());
    const double diff = (t - u).norm().item<double>(), norm = t.norm().item<double>();
    CHECK(diff <= 1e-5 * std::max(norm, 1.0));
    diff2 += diff * diff;
    norm2 += norm * norm;
  }
  INFO("relative parameter difference " << std::sqrt(diff2 / norm2));
  CHECK(std::sqrt(diff2 / norm2) <= 1e-5);
}

}  // namespace

TEST_CASE("vcycle installs, and an outside project builds against it with find_package and runs a V-cycle",
          "[plugin][install]") {
  vcycle::test::TempDir dir("plugin_install");
  const std::string prefix = dir.str("prefix"), build = dir.str("build");
  const std::string cmake = VCYCLE_CMAKE_COMMAND;
  std::ostringstream timing;

  // 1. Install this build tree.
  const Shell install = sh(quoted(cmake) + " --install " + quoted(VCYCLE_BINARY_DIR) + " --prefix " + quoted(prefix),
                           dir.str("install.log"));
  INFO("cmake --install:\n" << tail(install.output));
  REQUIRE(install.code == 0);
  timing << "install " << install.seconds << " s";
  fs::path config_dir;
  for (const auto& e : fs::recursive_directory_iterator(prefix)) {
    if (e.path().filename() == "vcycleConfig.cmake") config_dir = e.path().parent_path();
  }
  REQUIRE_FALSE(config_dir.empty());
  CHECK(fs::exists(config_dir / "vcycleConfigVersion.cmake"));
  CHECK(fs::exists(config_dir / "vcycleTargets.cmake"));
  CHECK(fs::exists(fs::path(prefix) / "include/vcycle/models/model_adapter.h"));
  CHECK(fs::exists(fs::path(prefix) / "include/vcycle/schedules/experiment.h"));

  // 2. Configure and build the example against the prefix, with this build's CMake, generator and
  //    compiler. ccache (when this build uses it) sees paths relative to the temporary directory, so
  //    a rerun hits its cache.
  std::string configure = quoted(cmake) + " -S " + quoted(vcycle::test::source_path("examples/custom_model")) + " -B " +
                          quoted(build) + " -G " + quoted(VCYCLE_CMAKE_GENERATOR) + " -DCMAKE_BUILD_TYPE=Release" +
                          " -DCMAKE_PREFIX_PATH=" + quoted(prefix) + " -DCMAKE_CXX_COMPILER=" + quoted(VCYCLE_CXX_COMPILER) +
                          " -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF";
  if (std::string(VCYCLE_MAKE_PROGRAM).size() > 0) configure += " -DCMAKE_MAKE_PROGRAM=" + quoted(VCYCLE_MAKE_PROGRAM);
  const std::string launcher = VCYCLE_CXX_LAUNCHER;
  if (!launcher.empty()) configure += " -DCMAKE_CXX_COMPILER_LAUNCHER=" + quoted(launcher);
  const std::string env = "CCACHE_BASEDIR=" + quoted(dir.str()) + " ";
  const Shell conf = sh(env + configure, dir.str("configure.log"));
  INFO("configure the example:\n" << tail(conf.output));
  REQUIRE(conf.code == 0);
  timing << ", configure " << conf.seconds << " s";
  // find_package found the installed package, not a build tree or another install.
  const std::string cache = read_text(build + "/CMakeCache.txt");
  CHECK_THAT(cache, Catch::Contains("vcycle_DIR:PATH=" + config_dir.string()));

  const Shell make = sh(env + quoted(cmake) + " --build " + quoted(build) + " --parallel 2", dir.str("build.log"));
  INFO("build the example:\n" << tail(make.output));
  REQUIRE(make.code == 0);
  timing << ", build " << make.seconds << " s";
  const std::string exe = build + "/llama_vcycle";
  REQUIRE(fs::exists(exe));

  // 3. A short 2-level V-cycle and its baseline through the installed library.
  vcycle::test::prepare_fixture_corpus(dir.str("data"));
  const std::string out = dir.str("out");
  vcycle::test::write_text(dir.str("run.yaml"), run_config(dir.str("data"), out));
  const Shell run = sh(quoted(exe) + " run " + quoted(dir.str("run.yaml")), dir.str("run.log"));
  INFO("llama_vcycle run run.yaml:\n" << tail(run.output));
  REQUIRE(run.code == 0);
  timing << ", run " << run.seconds << " s";
  CHECK_THAT(run.output, Catch::Contains("[vcycle] decoalesce+interpolate level 2 -> 1"));  // progress lines
  CHECK_THAT(run.output, Catch::Contains("Target loss L*"));                                 // the report
  REQUIRE(fs::exists(out + "/report.json"));
  const json report = json::parse(std::ifstream(out + "/report.json"));
  REQUIRE(report.contains("baseline"));
  REQUIRE(report.contains("vcycle"));
  const json& phases = report["vcycle"]["phases"];
  REQUIRE(phases.size() == 3);
  CHECK(phases[0]["level"] == 1);
  CHECK(phases[1]["level"] == 2);
  CHECK(phases[2]["level"] == 1);
  CHECK(phases[1]["shape"] == "layers=1 ffn=12 heads=8 hidden=8");
  CHECK(report["baseline"]["phases"].size() == 1);
  CHECK(report["vcycle"]["operator_flops"].get<double>() > 0);
  CHECK(fs::exists(out + "/vcycle/checkpoint.ckpt"));

  // --resume on the finished run changes nothing and prints the report again.
  const Shell again = sh(quoted(exe) + " run " + quoted(dir.str("run.yaml")) + " --resume --quiet", dir.str("again.log"));
  INFO("llama_vcycle run --resume:\n" << tail(again.output));
  CHECK(again.code == 0);
  CHECK_THAT(again.output, Catch::Contains("Target loss L*"));

  // report regenerates the report of the run directory.
  fs::remove(out + "/report.md");
  const Shell report_again = sh(quoted(exe) + " report " + quoted(out), dir.str("report.log"));
  INFO("llama_vcycle report:\n" << tail(report_again.output));
  CHECK(report_again.code == 0);
  CHECK_THAT(report_again.output, Catch::Contains("Target loss L*"));
  CHECK(fs::exists(out + "/report.md"));

  // coalesce takes the final model to level 2 through the model's parameter map: the C++ map, and
  // the YAML one given as model.param_map.
  std::string good_map = read_text(vcycle::test::source_path("examples/custom_model/configs/llama_param_map.yaml"));
  good_map.replace(good_map.find("{unit: 64}"), 10, "{unit: 8}");
  vcycle::test::write_text(dir.str("map.yaml"), good_map);
  for (const std::string& set : {std::string(), " --set model.param_map=" + quoted(dir.str("map.yaml"))}) {
    const Shell down = sh(quoted(exe) + " coalesce " + quoted(out + "/vcycle/checkpoint.ckpt") + " --config " +
                              quoted(dir.str("run.yaml")) + " --out " + quoted(dir.str("l2.ckpt")) + set,
                          dir.str("coalesce.log"));
    INFO("llama_vcycle coalesce" << set << ":\n" << tail(down.output));
    CHECK(down.code == 0);
    CHECK_THAT(down.output, Catch::Contains("coalesce: level 1") && Catch::Contains("-> level 2"));
    const vcycle::TensorMap l2 = vcycle::checkpoint_model(vcycle::load_checkpoint(dir.str("l2.ckpt")));
    CHECK(l2.at("layers.0.mlp.down_proj.weight").sizes() == torch::IntArrayRef({8, 12}));
    fs::remove(dir.str("l2.ckpt"));
  }

  // --nproc 2: the V-cycle in 2 data-parallel worker processes (copies of llama_vcycle) ends with
  // the 1-process run's parameters.
  const std::string out2 = dir.str("out2");
  const Shell two = sh(quoted(exe) + " run " + quoted(dir.str("run.yaml")) + " --no-baseline --quiet --nproc 2 --set output=" +
                           quoted(out2),
                       dir.str("nproc.log"));
  INFO("llama_vcycle run --nproc 2:\n" << tail(two.output));
  REQUIRE(two.code == 0);
  timing << ", run --nproc 2 " << two.seconds << " s";
  check_same_params(out + "/vcycle/checkpoint.ckpt", out2 + "/vcycle/checkpoint.ckpt");

  // 4. A parameter map that misses a parameter stops the program before training, naming it.
  std::string map = read_text(vcycle::test::source_path("examples/custom_model/configs/llama_param_map.yaml"));
  map.replace(map.find("{unit: 64}"), 10, "{unit: 8}");
  const auto line = map.find("  \"layers.{layer}.mlp.down_proj.weight\"");
  map.erase(line, map.find('\n', line) + 1 - line);
  vcycle::test::write_text(dir.str("broken_map.yaml"), map);
  vcycle::test::write_text(dir.str("broken.yaml"),
                           run_config(dir.str("data"), dir.str("out_broken"), ", param_map: " + dir.str("broken_map.yaml")));
  const Shell broken = sh(quoted(exe) + " run " + quoted(dir.str("broken.yaml")), dir.str("broken.log"));
  INFO("llama_vcycle run broken.yaml:\n" << tail(broken.output));
  CHECK(broken.code == 2);
  CHECK_THAT(broken.output, Catch::Contains("'layers.0.mlp.down_proj.weight'"));
  CHECK_FALSE(fs::exists(dir.str("out_broken/baseline/metrics.jsonl")));

  std::cout << "[plugin install test] " << timing.str() << "\n";
}
