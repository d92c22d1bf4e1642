#pragma once
// Linear maps from a non-CLIP model's representation into a CLIP model's image-embedding space.
// This is the closed-form shared map (least squares) of ../shared/design.md, the fast baseline;
// the per-component maps trained with a cosine loss come with the analyses issue.
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace vitscope {

struct Aligner {
    at::Tensor weight;  // [D, E]
    at::Tensor bias;    // [E]
    std::map<std::string, std::string> settings;  // how it was made (stored with it)

    at::Tensor apply(const at::Tensor& x) const { return at::matmul(x, weight) + bias; }
};

// Least squares (ridge `lambda`) from features [N, D] to targets [N, E] (targets are
// normalised first, as the aligned output is compared by cosine).
Aligner fitSharedAligner(const at::Tensor& features, const at::Tensor& clipEmbeddings, double lambda = 1e-3);
double meanCosine(const at::Tensor& a, const at::Tensor& b);

void saveAligner(const Aligner& aligner, const std::string& path);
Aligner loadAligner(const std::string& path);  // validates shapes; throws FormatError naming the file

}  // namespace vitscope
