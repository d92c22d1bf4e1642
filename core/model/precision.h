#pragma once
// Reduced precision: the model's weights and matmuls in bf16 / fp16 (or CUDA's TF32 units), with
// LayerNorm statistics, softmax and every accumulation in fp32. Torch-free (the GUI includes it).
//
//   setDefaultPrecision("auto");                  // the CLI's --precision, once per process
//   Model m = openModelOn(spec, "cpu");           // applies the default (analysis/session.h)
//   for (auto& p : supportedPrecisions("cpu"))    // what a GUI offers: {"fp32", "bf16"} here
//
// What a reduced forward computes (forward.cpp, windows.cpp): LayerNorm in fp32, its output
// rounded to the reduced type; the q/k/v and MLP products in the reduced type (the residual
// stream and every sum into it stay fp32); the softmax in fp32; the attention output of every
// token the decomposition reads formed in fp32 from the fp32 probabilities and the rounded values
// and projected in fp32 through the rounded weights, so that the terms sum to this precision's
// own output exactly (to fp32 rounding).
#include <string>
#include <vector>

namespace vitscope {

enum class Precision { Fp32, Bf16, Fp16, Tf32 };

const char* precisionName(Precision p);
// "fp32", "bf16", "fp16", "tf32" ("auto" is resolvePrecision's); throws InputError naming --precision.
Precision parsePrecision(const std::string& name);

// The device in words for errors and records: "CPU (AMD EPYC, avx512_bf16)", "CUDA device 0 (...)".
// device: "cpu", "cuda" or "auto" (as runtime.h's pickDevice).
std::string deviceDescription(const std::string& device);

// Whether this CPU has bf16 matrix instructions (cpuinfo flags amx_bf16 or avx512_bf16).
// VITSCOPE_MASK_CPU_BF16=1 hides them (a test checks what a machine without them does).
bool cpuHasBf16();

// The precisions `device` runs, fp32 first: the names a GUI setting offers.
std::vector<std::string> supportedPrecisions(const std::string& device = "auto");

// "auto": the fastest precision the device has, measured once per process by a short product of
// a ViT-B/16 linear's shape in each supported precision (the result is cached); another name:
// that precision if the device supports it. Throws InputError with one line naming the device.
Precision resolvePrecision(const std::string& name, const std::string& device);

// The precision openModelOn gives every model it opens (the CLI's --precision; fp32 unless set).
// Stores the name; it is resolved against each model's device when the model is opened.
void setDefaultPrecision(const std::string& name);
const std::string& defaultPrecision();

struct Model;
// Puts a loaded model (already on its device) into `p`: bf16 / fp16 round every matmul weight of
// both towers to that type (the fp32 slots keep the rounded values, for the decomposition's maps)
// and keep reduced copies for the products; tf32 turns CUDA's TF32 matmuls on. Drops the
// decomposition maps. Checks the device first (InputError naming it).
void applyPrecision(Model& model, Precision p);

}  // namespace vitscope
