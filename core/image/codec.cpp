#include "image/codec.h"

#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"

#include <opencv2/core.hpp>

#if VITSCOPE_HAVE_OPENCV_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#endif
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>

namespace vitscope {

#if VITSCOPE_USE_OPENCV_IMGCODECS

const char* imageCodecsName() { return "OpenCV imgcodecs"; }

cv::Mat decodeImageBgr(const std::vector<uint8_t>& bytes, const std::string& where) {
    try {
        return cv::imdecode(bytes, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH);
    } catch (const cv::Exception& e) {
        throw FormatError(where, std::string("cannot decode image: ") + e.err);
    }
}

void writeImage(const std::string& path, const cv::Mat& image) {
    bool ok = false;
    try {
        ok = cv::imwrite(path, image);
    } catch (const cv::Exception& e) {
        throw IoError(path, std::string("cannot write the image: ") + e.err);
    }
    if (!ok) throw IoError(path, "cannot write the image (unknown extension or unwritable folder)");
}

#else

namespace {

std::string lowerExtension(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext;
}

}  // namespace

const char* imageCodecsName() { return "libpng + libjpeg"; }

cv::Mat decodeImageBgr(const std::vector<uint8_t>& bytes, const std::string& where) { return builtin_codecs::decode(bytes, where); }

void writeImage(const std::string& path, const cv::Mat& image) {
    const std::string ext = lowerExtension(path);
    std::vector<uint8_t> bytes;
    if (ext == ".png") bytes = builtin_codecs::encodePng(image, path);
    else if (ext == ".jpg" || ext == ".jpeg") bytes = builtin_codecs::encodeJpeg(image, 95, path);
    else throw IoError(path, "this build writes PNG and JPEG only (built with libpng + libjpeg, not OpenCV imgcodecs)");
    writeFileAtomic(path, bytes);
}

#endif

cv::Mat readImage(const std::string& path, bool gray) {
    // The model's loader (size and truncation checks, 16 bits scaled), then the layout asked for.
    cv::Mat out;
    cv::cvtColor(loadImageRgb(path), out, gray ? cv::COLOR_RGB2GRAY : cv::COLOR_RGB2BGR);
    return out;
}

}  // namespace vitscope
