#pragma once
// Image loading and the reference CLIP / timm preprocessing: shortest-side resize with
// antialiased bicubic (the same separable filter and 8-bit rounding as PIL), center crop,
// scale to [0, 1], normalise with the model's mean / std.
#include "model/model.h"

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace vitscope {

constexpr int64_t kMaxImagePixels = 100'000'000;  // larger images are refused with a message

// Decodes any OpenCV-readable image to 8-bit RGB [H, W, 3]: gray and RGBA converted (alpha
// dropped), 16-bit scaled, EXIF orientation applied. Throws IoError / FormatError naming the file.
cv::Mat loadImageRgb(const std::string& path);
cv::Mat decodeImageRgb(const std::vector<uint8_t>& bytes, const std::string& where);

// PIL-compatible antialiased bicubic resize of an 8-bit RGB image.
cv::Mat resizeBicubicAntialias(const cv::Mat& rgb, int width, int height);
// The same with PIL's bilinear (triangle) filter when `bilinear`.
cv::Mat resizeAntialias(const cv::Mat& rgb, int width, int height, bool bilinear);

// The 8-bit RGB crop [S, S, 3] the model sees (resize + center crop), e.g. to draw heatmaps on.
cv::Mat cropForModel(const cv::Mat& rgb, const ImagePreprocess& prep);

// What of a width x height image the model sees under `prep`, in a line for a person: "the
// centre 480 x 480 of the 640 x 480 image (80 px cut at the left and right)", "the whole
// 640 x 480 image, squashed to 224 x 224", or "" when the crop is the whole image.
std::string describeModelInput(int width, int height, const ImagePreprocess& prep);

// Whether a file's bytes are a PNG with transparency (an alpha channel or a tRNS chunk); the
// loaders drop it as PIL's convert("RGB") does, so the model sees the colour stored underneath.
bool pngHasTransparency(const std::vector<uint8_t>& bytes);
// [3, S, S] float32 model input.
at::Tensor preprocessImage(const cv::Mat& rgb, const ImagePreprocess& prep);
// [B, 3, S, S] for several files.
at::Tensor loadAndPreprocess(const std::vector<std::string>& paths, const ImagePreprocess& prep);

}  // namespace vitscope
