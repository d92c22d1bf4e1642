#include "image/preprocess.h"

#include "error.h"
#include "image/codec.h"
#include "io/file_util.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace vitscope {

namespace {

// Reads width x height from PNG / JPEG / BMP / GIF headers so that huge images are refused
// before decoding. Returns false when the format is not recognised.
bool probeSize(const std::vector<uint8_t>& b, int64_t& w, int64_t& h) {
    auto be32 = [&](std::size_t i) { return (int64_t(b[i]) << 24) | (int64_t(b[i + 1]) << 16) | (int64_t(b[i + 2]) << 8) | b[i + 3]; };
    auto be16 = [&](std::size_t i) { return (int64_t(b[i]) << 8) | b[i + 1]; };
    auto le16 = [&](std::size_t i) { return int64_t(b[i]) | (int64_t(b[i + 1]) << 8); };
    auto le32 = [&](std::size_t i) { return le16(i) | (le16(i + 2) << 16); };
    if (b.size() >= 24 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
        w = be32(16);
        h = be32(20);
        return true;
    }
    if (b.size() >= 10 && b[0] == 'G' && b[1] == 'I' && b[2] == 'F') {
        w = le16(6);
        h = le16(8);
        return true;
    }
    if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
        w = std::llabs(static_cast<int32_t>(le32(18)));
        h = std::llabs(static_cast<int32_t>(le32(22)));
        return true;
    }
    if (b.size() >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
        std::size_t i = 2;
        while (i + 9 < b.size()) {
            if (b[i] != 0xFF) return false;
            const uint8_t marker = b[i + 1];
            if (marker == 0xFF) {
                ++i;
                continue;
            }
            const int64_t len = be16(i + 2);
            const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
            if (sof) {
                h = be16(i + 5);
                w = be16(i + 7);
                return true;
            }
            if (len < 2) return false;
            i += 2 + static_cast<std::size_t>(len);
        }
    }
    return false;
}

// PIL's bicubic kernel (a = -0.5).
double cubic(double x) {
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// PIL's bilinear (triangle) kernel.
double triangle(double x) {
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
    std::vector<int> start, count;
    std::vector<int32_t> weights;  // fixed point, `maxCount` per output pixel
    int maxCount = 0;
};

// Per output pixel: the input window and the fixed-point weights, as PIL computes them.
Coeffs computeCoeffs(int inSize, int outSize, bool bilinear) {
    const double scale = static_cast<double>(inSize) / outSize;
    const double filterScale = std::max(scale, 1.0);
    const double support = (bilinear ? 1.0 : 2.0) * filterScale;
    Coeffs c;
    c.maxCount = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.start.resize(outSize);
    c.count.resize(outSize);
    c.weights.assign(static_cast<std::size_t>(outSize) * c.maxCount, 0);
    std::vector<double> k(static_cast<std::size_t>(c.maxCount));
    for (int xx = 0; xx < outSize; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterScale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        double total = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double u = (x + xmin - center + 0.5) * ss;
            const double w = bilinear ? triangle(u) : cubic(u);
            k[x] = w;
            total += w;
        }
        for (int x = 0; x < xmax; ++x) {
            const double w = total != 0.0 ? k[x] / total : 0.0;
            const double scaled = w * (1 << kPrecisionBits);
            c.weights[static_cast<std::size_t>(xx) * c.maxCount + x] =
                static_cast<int32_t>(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
        }
        c.start[xx] = xmin;
        c.count[xx] = xmax;
    }
    return c;
}

uint8_t clip8(int64_t v) {
    v >>= kPrecisionBits;
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

cv::Mat resizeHorizontal(const cv::Mat& in, int outW, bool bilinear) {
    const Coeffs c = computeCoeffs(in.cols, outW, bilinear);
    cv::Mat out(in.rows, outW, CV_8UC3);
    for (int y = 0; y < in.rows; ++y) {
        const uint8_t* src = in.ptr<uint8_t>(y);
        uint8_t* dst = out.ptr<uint8_t>(y);
        for (int xx = 0; xx < outW; ++xx) {
            const int32_t* w = &c.weights[static_cast<std::size_t>(xx) * c.maxCount];
            for (int ch = 0; ch < 3; ++ch) {
                int64_t acc = int64_t(1) << (kPrecisionBits - 1);
                for (int x = 0; x < c.count[xx]; ++x) acc += int64_t(src[(c.start[xx] + x) * 3 + ch]) * w[x];
                dst[xx * 3 + ch] = clip8(acc);
            }
        }
    }
    return out;
}

cv::Mat resizeVertical(const cv::Mat& in, int outH, bool bilinear) {
    const Coeffs c = computeCoeffs(in.rows, outH, bilinear);
    cv::Mat out(outH, in.cols, CV_8UC3);
    const int rowLen = in.cols * 3;
    for (int yy = 0; yy < outH; ++yy) {
        const int32_t* w = &c.weights[static_cast<std::size_t>(yy) * c.maxCount];
        uint8_t* dst = out.ptr<uint8_t>(yy);
        for (int i = 0; i < rowLen; ++i) {
            int64_t acc = int64_t(1) << (kPrecisionBits - 1);
            for (int y = 0; y < c.count[yy]; ++y) acc += int64_t(in.ptr<uint8_t>(c.start[yy] + y)[i]) * w[y];
            dst[i] = clip8(acc);
        }
    }
    return out;
}

// Whether an encoded image holds all its data (decoders fill a cut file with grey silently):
// PNG up to its IEND chunk, JPEG up to an end-of-image marker after the last scan, an
// uncompressed BMP its whole pixel array.
bool isTruncated(const std::vector<uint8_t>& b) {
    const std::size_t n = b.size();
    auto be32 = [&](std::size_t i) { return (uint64_t(b[i]) << 24) | (uint64_t(b[i + 1]) << 16) | (uint64_t(b[i + 2]) << 8) | b[i + 3]; };
    auto le32 = [&](std::size_t i) { return uint64_t(b[i]) | (uint64_t(b[i + 1]) << 8) | (uint64_t(b[i + 2]) << 16) | (uint64_t(b[i + 3]) << 24); };
    if (n >= 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
        std::size_t i = 8;
        while (i + 8 <= n) {
            const uint64_t len = be32(i);
            const bool end = b[i + 4] == 'I' && b[i + 5] == 'E' && b[i + 6] == 'N' && b[i + 7] == 'D';
            if (len > n - i - 8 || n - i - 8 - len < 4) return true;
            if (end) return false;
            i += 12 + static_cast<std::size_t>(len);
        }
        return true;
    }
    if (n >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
        std::size_t sos = 0, eoi = 0;
        for (std::size_t i = 2; i + 1 < n; ++i) {
            if (b[i] != 0xFF) continue;
            if (b[i + 1] == 0xDA) sos = i;
            else if (b[i + 1] == 0xD9) eoi = i;
        }
        return sos == 0 || eoi < sos;
    }
    if (n >= 34 && b[0] == 'B' && b[1] == 'M') {
        const uint64_t offset = le32(10), bpp = uint64_t(b[28]) | (uint64_t(b[29]) << 8), compression = le32(30);
        const uint64_t w = static_cast<uint64_t>(std::llabs(static_cast<int32_t>(le32(18))));
        const uint64_t h = static_cast<uint64_t>(std::llabs(static_cast<int32_t>(le32(22))));
        if (compression != 0 || bpp == 0 || w > (1u << 20) || h > (1u << 20)) return false;
        const uint64_t row = (w * bpp + 31) / 32 * 4;
        return offset + row * h > n;
    }
    return false;
}

}  // namespace

cv::Mat decodeImageRgb(const std::vector<uint8_t>& bytes, const std::string& where) {
    if (bytes.empty()) throw FormatError(where, "file is empty, not an image");
    int64_t w = 0, h = 0;
    if (probeSize(bytes, w, h)) {
        if (w <= 0 || h <= 0) throw FormatError(where, "image header gives an empty size");
        if (w * h > kMaxImagePixels)
            throw InputError(where, "image is " + std::to_string(w) + " x " + std::to_string(h) + " pixels, over the " +
                                        std::to_string(kMaxImagePixels / 1000000) + "-megapixel limit");
    }
    if (isTruncated(bytes)) throw FormatError(where, "image file is truncated (its data ends early)");
    cv::Mat decoded = decodeImageBgr(bytes, where);
    if (decoded.empty())
        throw FormatError(where, std::string("not a readable image (unknown format or corrupt data; this build reads images with ") +
                                     imageCodecsName() + ")");
    if (decoded.depth() == CV_16U) decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
    else if (decoded.depth() == CV_32F) decoded.convertTo(decoded, CV_8U, 255.0);
    else if (decoded.depth() != CV_8U) decoded.convertTo(decoded, CV_8U);
    cv::Mat rgb;
    cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
    return rgb;
}

cv::Mat loadImageRgb(const std::string& path) { return decodeImageRgb(readFileBytes(path), path); }

cv::Mat resizeAntialias(const cv::Mat& rgb, int width, int height, bool bilinear) {
    CV_Assert(rgb.type() == CV_8UC3);
    cv::Mat src = rgb.isContinuous() ? rgb : rgb.clone();
    if (width != src.cols) src = resizeHorizontal(src, width, bilinear);
    if (height != src.rows) src = resizeVertical(src, height, bilinear);
    return src;
}

cv::Mat resizeBicubicAntialias(const cv::Mat& rgb, int width, int height) { return resizeAntialias(rgb, width, height, false); }

cv::Mat cropForModel(const cv::Mat& rgb, const ImagePreprocess& prep) {
    // CLIP Surgery's demo preprocessing: the full image squashed to the input size.
    if (prep.squash) return resizeAntialias(rgb, prep.imageSize, prep.imageSize, prep.bilinear);
    const int shortest = prep.resizeShortest;
    int w = rgb.cols, h = rgb.rows;
    // torchvision's Resize(int): the short side becomes `shortest`, the long side is truncated.
    if (w <= h) {
        h = static_cast<int>(static_cast<int64_t>(shortest) * h / w);
        w = shortest;
    } else {
        w = static_cast<int>(static_cast<int64_t>(shortest) * w / h);
        h = shortest;
    }
    cv::Mat resized = resizeAntialias(rgb, w, h, prep.bilinear);
    const int s = prep.imageSize;
    if (resized.cols < s || resized.rows < s) {
        // Pad like torchvision's CenterCrop when the crop is larger than the image.
        const int padL = std::max(0, (s - resized.cols) / 2), padT = std::max(0, (s - resized.rows) / 2);
        cv::copyMakeBorder(resized, resized, padT, std::max(0, s - resized.rows - padT), padL,
                           std::max(0, s - resized.cols - padL), cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
    }
    const int top = static_cast<int>(std::nearbyint((resized.rows - s) / 2.0));
    const int left = static_cast<int>(std::nearbyint((resized.cols - s) / 2.0));
    return resized(cv::Rect(left, top, s, s)).clone();
}

bool pngHasTransparency(const std::vector<uint8_t>& bytes) {
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (bytes.size() < 33 || !std::equal(signature, signature + 8, bytes.begin())) return false;
    const uint8_t colourType = bytes[25];  // IHDR's data starts at 16: width, height, depth, colour type
    if (colourType == 4 || colourType == 6) return true;
    // Palette or grey / RGB with a transparent colour: a tRNS chunk before the image data.
    for (std::size_t at = 8; at + 8 <= bytes.size();) {
        const uint32_t length = (uint32_t(bytes[at]) << 24) | (uint32_t(bytes[at + 1]) << 16) | (uint32_t(bytes[at + 2]) << 8) | bytes[at + 3];
        const std::string type(bytes.begin() + static_cast<std::ptrdiff_t>(at + 4), bytes.begin() + static_cast<std::ptrdiff_t>(at + 8));
        if (type == "tRNS") return true;
        if (type == "IDAT" || type == "IEND") return false;
        if (length > bytes.size()) return false;
        at += 12 + static_cast<std::size_t>(length);
    }
    return false;
}

std::string describeModelInput(int width, int height, const ImagePreprocess& prep) {
    if (width <= 0 || height <= 0 || prep.imageSize <= 0 || prep.resizeShortest <= 0) return {};
    const std::string size = std::to_string(width) + " x " + std::to_string(height);
    if (prep.squash)
        return width == height ? std::string()
                               : "the whole " + size + " image, squashed to " + std::to_string(prep.imageSize) + " x " +
                                     std::to_string(prep.imageSize);
    // cropForModel's geometry in the source's pixels: the crop is imageSize / resizeShortest of
    // the short side, centred.
    const double scale = static_cast<double>(prep.resizeShortest) / std::min(width, height);
    const int side = static_cast<int>(std::lround(prep.imageSize / scale));
    if (side >= width && side >= height) return {};
    const int cutW = std::max(0, width - side), cutH = std::max(0, height - side);
    std::string where;
    if (cutW > 0) where = std::to_string((cutW + 1) / 2) + " px cut at the left and right";
    if (cutH > 0) where += (where.empty() ? "" : ", ") + std::to_string((cutH + 1) / 2) + " px at the top and bottom";
    return "the centre " + std::to_string(std::min(side, width)) + " x " + std::to_string(std::min(side, height)) + " of the " + size +
           " image (" + where + ")";
}

at::Tensor preprocessImage(const cv::Mat& rgb, const ImagePreprocess& prep) {
    const int s = prep.imageSize;
    cv::Mat crop = cropForModel(rgb, prep);
    at::Tensor t = at::from_blob(crop.data, {s, s, 3}, at::kByte).permute({2, 0, 1}).to(at::kFloat).div(255.0);
    const at::Tensor mean = at::tensor(std::vector<float>(prep.mean.begin(), prep.mean.end())).view({3, 1, 1});
    const at::Tensor stdv = at::tensor(std::vector<float>(prep.std.begin(), prep.std.end())).view({3, 1, 1});
    return ((t - mean) / stdv).contiguous();
}

at::Tensor loadAndPreprocess(const std::vector<std::string>& paths, const ImagePreprocess& prep) {
    std::vector<at::Tensor> items;
    for (const std::string& p : paths) items.push_back(preprocessImage(loadImageRgb(p), prep));
    if (items.empty()) throw InputError("images", "no images given");
    return at::stack(items);
}

}  // namespace vitscope
