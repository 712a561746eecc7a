// The savings report: how much training compute the V-cycle needed to reach the baseline's final
// validation loss L*, against the baseline itself.
//
// Reads  <out>/baseline/metrics.jsonl and <out>/vcycle/metrics.jsonl (nothing else, so
//        `vcycle report` can regenerate it at any time).
// Writes <out>/report.json, <out>/report.md and, when gnuplot is installed, the plots
//        <out>/loss_vs_flops.svg and <out>/loss_vs_wall.svg.
// The cost to reach L* is read off each run's eval curve by linear interpolation between the first
// eval point at or below L* and the one before it. A run that never reaches L* gets `null` and no
// saving is claimed for it.
// Models that report validation accuracy (eval rows with `val_accuracy`, e.g. ViT) get each run's final
// accuracy in report.json (`final_val_accuracy`) and a line in report.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace vcycle {

struct CurvePoint {
  double flops = 0;  // cumulative training FLOPs (operators included)
  double wall = 0;   // cumulative training seconds (evaluation excluded)
  double loss = 0;   // validation loss
};

struct CrossingCost {
  double flops = 0;
  double wall = 0;
};

// The interpolated cost at which `curve` first reaches `target`, or nullopt if it never does.
std::optional<CrossingCost> first_crossing(const std::vector<CurvePoint>& curve, double target);

// One run directory's evaluation curve and totals, read from its metrics.jsonl (InputError naming
// the file when it is missing or malformed).
struct RunCurve {
  std::vector<CurvePoint> curve;  // eval rows with a finite loss, in order
  double final_loss = 0;          // the last eval row's loss
  double total_flops = 0;         // training FLOPs of the whole run (operators included)
  double total_wall = 0;          // training seconds of the whole run
  std::optional<double> peak_state_bytes;  // the largest optimizer state of its train rows; nullopt in
                                           // runs logged before vcycle 0.3 recorded it
};
RunCurve read_run_curve(const std::string& dir);

// "1.23 MiB" for a number of bytes, "n/a" for null (a run that did not record its optimizer state).
std::string format_mib(const nlohmann::json& bytes);

// Writes a curve as gnuplot data: one "train_flops wall_s val_loss" line per point.
void write_curve_data(const std::string& path, const std::vector<CurvePoint>& curve);

// Runs gnuplot on `script` and returns a line for a report: which plots were made (`what`), or why
// not (gnuplot missing or failing; the script stays for the user).
std::string run_gnuplot(const std::string& script, const std::string& what);

struct ReportSummary {
  std::string markdown;                // the table printed to the terminal and written to report.md
  std::optional<double> flop_savings;  // 1 − F_vcycle(L*) / F_baseline(L*); nullopt if L* not reached
  std::optional<double> wall_savings;
  double target_loss = 0;
};

ReportSummary write_report(const std::string& output_dir);

}  // namespace vcycle
