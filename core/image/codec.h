#pragma once
// Image files in and out. Two back ends behind one interface:
// - OpenCV's imgcodecs (the desktop build): every format it reads (PNG, JPEG, BMP, TIFF, WebP,
//   PPM, ...);
// - libpng + libjpeg (the headless build for GPU machines, where OpenCV's codec module and its
//   dependency chain are not available): PNG and JPEG, decoded with the same transforms as
//   OpenCV (expand palette / gray to BGR, drop alpha, keep 16 bits, EXIF orientation for JPEG),
//   so both back ends give the same pixels (tests/test_io checks it byte for byte).
// The build chooses with VITSCOPE_IMAGE_CODECS (opencv | builtin); the builtin decoders are
// compiled whenever libpng and libjpeg are found, so the desktop build tests them too.
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

// "OpenCV imgcodecs" or "libpng + libjpeg": which back end this build uses.
const char* imageCodecsName();

// Decodes to BGR [H, W, 3], 8 or 16 bits per channel (what cv::imdecode gives with
// IMREAD_COLOR | IMREAD_ANYDEPTH). Returns an empty Mat when the bytes are not a readable image;
// throws FormatError(where, ...) with the decoder's message when the data is corrupt.
cv::Mat decodeImageBgr(const std::vector<uint8_t>& bytes, const std::string& where);

// Writes an 8-bit gray or BGR image as PNG (or JPEG, quality 95, for .jpg / .jpeg; with the
// OpenCV back end any extension OpenCV knows). Throws IoError naming the file.
void writeImage(const std::string& path, const cv::Mat& image);

// Reads an image file as loadImageRgb does, returned as 8-bit BGR, or 8-bit gray when `gray`.
// Throws IoError / FormatError / InputError naming the file.
cv::Mat readImage(const std::string& path, bool gray = false);

// The libpng / libjpeg back end, callable directly where it is compiled in
// (VITSCOPE_HAVE_BUILTIN_CODECS), so that the tests compare it with OpenCV's.
namespace builtin_codecs {
bool available();
cv::Mat decode(const std::vector<uint8_t>& bytes, const std::string& where);  // empty: not PNG / JPEG
std::vector<uint8_t> encodePng(const cv::Mat& image, const std::string& where);
std::vector<uint8_t> encodeJpeg(const cv::Mat& image, int quality, const std::string& where);
}  // namespace builtin_codecs

}  // namespace vitscope
