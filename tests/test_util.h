#pragma once
// Shared helpers for the Qt Test suites: oracle paths, tensor comparisons, temp dirs.
#include <ATen/ATen.h>
#include <QTemporaryDir>

#include <string>

namespace vitscope::test {

std::string oracle(const std::string& relative);  // path under ../shared/oracle; fails if absent
std::string source(const std::string& relative);  // path under the source tree
double maxAbsDiff(const at::Tensor& a, const at::Tensor& b);
double minRowCosine(const at::Tensor& a, const at::Tensor& b);
bool sameShape(const at::Tensor& a, const at::Tensor& b);

}  // namespace vitscope::test
