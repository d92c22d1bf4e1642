#pragma once
// Shared helpers for the Qt Test suites: oracle paths, tensor comparisons, temp dirs.
#include "model/model.h"
#include "model/random_weights.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <QTemporaryDir>

#include <string>

namespace vitscope::test {

// Path under ../shared/oracle (VITSCOPE_ORACLE_DIR, configured or from the environment); fails if absent, unless VITSCOPE_ORACLE_PARTIAL
// is set (a copy of part of the oracle, as bench/run-gpu-check.sh carries: run only the rows it holds).
std::string oracle(const std::string& relative);
std::string source(const std::string& relative);  // path under the source tree
// The device the parity tests run the model on: VITSCOPE_TEST_DEVICE (cpu, cuda; default cpu).
at::Device testDevice();
// loadModel, then moved to testDevice().
Model testModel(const std::string& spec);
// Both compared on the CPU in double, whatever device either lives on.
double maxAbsDiff(const at::Tensor& a, const at::Tensor& b);
double minRowCosine(const at::Tensor& a, const at::Tensor& b);
bool sameShape(const at::Tensor& a, const at::Tensor& b);

// A configuration a test builds: random weights in a checkpoint layout and the config its loader reads.
struct RandomCase {
    const char* name;
    RandomVitSpec spec;
    nlohmann::json config;
};

}  // namespace vitscope::test
