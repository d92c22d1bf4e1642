// The libpng / libjpeg back end of image/codec.h. Both libraries report errors by longjmp: each
// decoder keeps its C++ objects (the output Mat, the message) alive outside the jump and frees the
// library's state on both paths.
#include "image/codec.h"

#include "error.h"

#if VITSCOPE_HAVE_BUILTIN_CODECS
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <png.h>
#endif

namespace vitscope::builtin_codecs {

#if !VITSCOPE_HAVE_BUILTIN_CODECS

bool available() { return false; }
cv::Mat decode(const std::vector<uint8_t>&, const std::string& where) {
    throw InputError(where, "this build has no libpng / libjpeg decoders");
}
std::vector<uint8_t> encodePng(const cv::Mat&, const std::string& where) {
    throw InputError(where, "this build has no libpng encoder");
}
std::vector<uint8_t> encodeJpeg(const cv::Mat&, int, const std::string& where) {
    throw InputError(where, "this build has no libjpeg encoder");
}

#else

namespace {

// ---- EXIF orientation (JPEG APP1), applied as OpenCV's decoders do ----

int exifOrientation(const uint8_t* p, std::size_t n) {
    if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
    p += 6;
    n -= 6;
    const bool little = p[0] == 'I' && p[1] == 'I';
    if (!little && !(p[0] == 'M' && p[1] == 'M')) return 1;
    auto u16 = [&](std::size_t i) -> uint32_t { return little ? p[i] | (p[i + 1] << 8) : (p[i] << 8) | p[i + 1]; };
    auto u32 = [&](std::size_t i) -> uint32_t { return little ? u16(i) | (u16(i + 2) << 16) : (u16(i) << 16) | u16(i + 2); };
    const uint32_t ifd = u32(4);
    if (ifd + 2 > n) return 1;
    const uint32_t count = u16(ifd);
    for (uint32_t e = 0; e < count; ++e) {
        const std::size_t at = ifd + 2 + 12 * static_cast<std::size_t>(e);
        if (at + 12 > n) break;
        if (u16(at) == 0x0112) {  // Orientation, SHORT
            const uint32_t v = u16(at + 8);
            return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
        }
    }
    return 1;
}

void applyOrientation(cv::Mat& img, int orientation) {
    switch (orientation) {
    case 2: cv::flip(img, img, 1); break;
    case 3: cv::flip(img, img, -1); break;
    case 4: cv::flip(img, img, 0); break;
    case 5: cv::transpose(img, img); break;
    case 6: cv::transpose(img, img); cv::flip(img, img, 1); break;
    case 7: cv::transpose(img, img); cv::flip(img, img, -1); break;
    case 8: cv::transpose(img, img); cv::flip(img, img, 0); break;
    default: break;
    }
}

// ---- PNG ----

struct PngRead {
    const uint8_t* data;
    std::size_t size, pos;
};

void pngReadBytes(png_structp png, png_bytep out, png_size_t n) {
    auto* r = static_cast<PngRead*>(png_get_io_ptr(png));
    if (r->pos + n > r->size) png_error(png, "the data ends early (truncated file)");
    std::memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

void pngError(png_structp png, png_const_charp message) {
    auto* text = static_cast<std::string*>(png_get_error_ptr(png));
    *text = message;
    png_longjmp(png, 1);
}

void pngWarning(png_structp, png_const_charp) {}

// Reads into `out` (allocated here); returns false with `message` set on a libpng error.
bool decodePng(const std::vector<uint8_t>& bytes, cv::Mat& out, std::string& message) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &message, pngError, pngWarning);
    if (!png) {
        message = "out of memory";
        return false;
    }
    png_infop info = png_create_info_struct(png);
    PngRead reader{bytes.data(), bytes.size(), 0};
    std::vector<png_bytep> rows;
    if (!info || setjmp(png_jmpbuf(png))) {
        if (message.empty()) message = "out of memory";
        png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
        return false;
    }
    png_set_read_fn(png, &reader, pngReadBytes);
    png_read_info(png, info);
    const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    const int depth = png_get_bit_depth(png, info), colorType = png_get_color_type(png, info);
    // OpenCV's transforms for IMREAD_COLOR | IMREAD_ANYDEPTH: 16 bits kept (native byte order),
    // alpha stripped, palette and low-depth gray expanded, color as BGR, gray replicated.
    if (depth == 16) png_set_swap(png);
    png_set_strip_alpha(png);
    if (colorType == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((colorType & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (colorType & PNG_COLOR_MASK_COLOR) png_set_bgr(png);
    else png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    out.create(static_cast<int>(height), static_cast<int>(width), depth == 16 ? CV_16UC3 : CV_8UC3);
    rows.resize(height);
    for (png_uint_32 y = 0; y < height; ++y) rows[y] = out.ptr<png_byte>(static_cast<int>(y));
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
}

void pngWriteBytes(png_structp png, png_bytep data, png_size_t n) {
    auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
    out->insert(out->end(), data, data + n);
}

void pngFlush(png_structp) {}

// ---- JPEG ----

struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpegErrorExit(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    cinfo->err->format_message(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

void jpegQuiet(j_common_ptr, int) {}

bool decodeJpeg(const std::vector<uint8_t>& bytes, cv::Mat& out, std::string& message) {
    jpeg_decompress_struct cinfo{};
    JpegError err{};
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpegErrorExit;
    err.mgr.emit_message = jpegQuiet;
    cv::Mat cmyk;
    int orientation = 1;
    if (setjmp(err.jump)) {
        message = err.message;
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && (orientation = exifOrientation(m->data, m->data_length)) != 1) break;
    const bool fourChannel = cinfo.num_components == 4;
    if (fourChannel) {
        cinfo.out_color_space = JCS_CMYK;
        cinfo.out_color_components = 4;
    } else {
        cinfo.out_color_space = JCS_EXT_BGR;
        cinfo.out_color_components = 3;
    }
    jpeg_start_decompress(&cinfo);
    out.create(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width), CV_8UC3);
    if (fourChannel) cmyk.create(1, static_cast<int>(cinfo.output_width), CV_8UC4);
    while (cinfo.output_scanline < cinfo.output_height) {
        const int y = static_cast<int>(cinfo.output_scanline);
        JSAMPROW row = fourChannel ? cmyk.ptr<JSAMPLE>(0) : out.ptr<JSAMPLE>(y);
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (fourChannel) {
            // Adobe's inverted CMYK to BGR, as OpenCV converts it.
            const uint8_t* s = cmyk.ptr<uint8_t>(0);
            uint8_t* d = out.ptr<uint8_t>(y);
            for (int x = 0; x < out.cols; ++x, s += 4, d += 3) {
                const int k = s[3];
                d[2] = static_cast<uint8_t>(k - ((255 - s[0]) * k >> 8));
                d[1] = static_cast<uint8_t>(k - ((255 - s[1]) * k >> 8));
                d[0] = static_cast<uint8_t>(k - ((255 - s[2]) * k >> 8));
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    applyOrientation(out, orientation);
    return true;
}

bool encodeJpegInto(const cv::Mat& bgr, int quality, std::vector<uint8_t>& bytes, std::string& message) {
    jpeg_compress_struct cinfo{};
    JpegError err{};
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpegErrorExit;
    err.mgr.emit_message = jpegQuiet;
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    if (setjmp(err.jump)) {
        message = err.message;
        jpeg_destroy_compress(&cinfo);
        std::free(buffer);
        return false;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = static_cast<JDIMENSION>(bgr.cols);
    cinfo.image_height = static_cast<JDIMENSION>(bgr.rows);
    cinfo.input_components = bgr.channels();
    cinfo.in_color_space = bgr.channels() == 1 ? JCS_GRAYSCALE : JCS_EXT_BGR;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPLE*>(bgr.ptr<JSAMPLE>(static_cast<int>(cinfo.next_scanline)));
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    bytes.assign(buffer, buffer + size);
    std::free(buffer);
    return true;
}

cv::Mat eightBitGrayOrBgr(const cv::Mat& image, const std::string& where) {
    if (image.empty()) throw InputError(where, "cannot write an empty image");
    if (image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3))
        throw InputError(where, "writes 8-bit gray or BGR images only");
    return image.isContinuous() ? image : image.clone();
}

}  // namespace

bool available() { return true; }

cv::Mat decode(const std::vector<uint8_t>& bytes, const std::string& where) {
    cv::Mat out;
    std::string message;
    const bool png = bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0;
    const bool jpeg = bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
    if (!png && !jpeg) return {};
    if (!(png ? decodePng(bytes, out, message) : decodeJpeg(bytes, out, message)))
        throw FormatError(where, std::string("cannot decode ") + (png ? "PNG" : "JPEG") + " image: " + message);
    return out;
}

std::vector<uint8_t> encodePng(const cv::Mat& image, const std::string& where) {
    const cv::Mat img = eightBitGrayOrBgr(image, where);
    std::vector<uint8_t> bytes;
    std::string message;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &message, pngError, pngWarning);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    std::vector<png_bytep> rows(static_cast<std::size_t>(img.rows));
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : nullptr);
        throw IoError(where, "cannot encode PNG: " + (message.empty() ? std::string("out of memory") : message));
    }
    png_set_write_fn(png, &bytes, pngWriteBytes, pngFlush);
    png_set_IHDR(png, info, static_cast<png_uint_32>(img.cols), static_cast<png_uint_32>(img.rows), 8,
                 img.channels() == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (img.channels() == 3) png_set_bgr(png);
    for (int y = 0; y < img.rows; ++y) rows[static_cast<std::size_t>(y)] = const_cast<png_bytep>(img.ptr<png_byte>(y));
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return bytes;
}

std::vector<uint8_t> encodeJpeg(const cv::Mat& image, int quality, const std::string& where) {
    const cv::Mat img = eightBitGrayOrBgr(image, where);
    std::vector<uint8_t> bytes;
    std::string message;
    if (!encodeJpegInto(img, quality, bytes, message)) throw IoError(where, "cannot encode JPEG: " + message);
    return bytes;
}

#endif

}  // namespace vitscope::builtin_codecs
