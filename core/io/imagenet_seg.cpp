#include "io/imagenet_seg.h"

#include "error.h"

#if VITSCOPE_HAVE_HDF5
#include <H5Cpp.h>
#endif

#include <cstdio>
#include <filesystem>
#include <vector>

namespace vitscope {

#if VITSCOPE_HAVE_HDF5

bool imagenetSegSupported() { return true; }

struct ImagenetSegFile::Impl {
    std::string path;
    H5::H5File file;
    std::vector<hobj_ref_t> images, masks;

    [[noreturn]] void bad(const std::string& what) const { throw FormatError(path, what); }

    std::vector<hobj_ref_t> references(const char* name) {
        if (!H5Lexists(file.getId(), "/value", H5P_DEFAULT) || !H5Lexists(file.getId(), name, H5P_DEFAULT))
            bad(std::string("has no ") + name + " (not the ImageNet segmentation layout, gtsegs_ijcv.mat)");
        const H5::DataSet set = file.openDataSet(name);
        if (set.getTypeClass() != H5T_REFERENCE) bad(std::string(name) + " is not a dataset of object references");
        const H5::DataSpace space = set.getSpace();
        if (space.getSimpleExtentNdims() != 2) bad(std::string(name) + " is not an [N, 1] dataset");
        hsize_t dims[2];
        space.getSimpleExtentDims(dims);
        if (dims[1] != 1) bad(std::string(name) + " is not an [N, 1] dataset");
        if (dims[0] > 100000000) bad(std::string(name) + " claims " + std::to_string(dims[0]) + " entries");
        std::vector<hobj_ref_t> refs(dims[0]);
        if (!refs.empty()) set.read(refs.data(), H5::PredType::STD_REF_OBJ);
        return refs;
    }

    // The uint8 dataset a reference points at, with its dimensions.
    std::vector<uint8_t> bytes(const hobj_ref_t& ref, std::vector<hsize_t>& dims, const std::string& what) const {
        const H5::DataSet set(file, &ref);
        if (set.getTypeClass() != H5T_INTEGER) bad(what + " is not an integer array");
        const H5::DataSpace space = set.getSpace();
        dims.resize(static_cast<std::size_t>(space.getSimpleExtentNdims()));
        space.getSimpleExtentDims(dims.data());
        hsize_t n = 1;
        for (hsize_t d : dims) n *= d;
        if (n == 0 || n > (hsize_t(1) << 31)) bad(what + " has an empty or oversized array");
        std::vector<uint8_t> out(n);
        set.read(out.data(), H5::PredType::NATIVE_UINT8);
        return out;
    }
};

namespace {

template <class F>
auto guarded(const std::string& path, F&& f) {
    try {
        return f();
    } catch (const H5::Exception& e) {
        throw FormatError(path, "unreadable as the ImageNet segmentation layout (" + e.getDetailMsg() + ")");
    }
}

}  // namespace

ImagenetSegFile::ImagenetSegFile(const std::string& path) : m(std::make_unique<Impl>()) {
    m->path = path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) throw IoError(path, "no such file");
    H5::Exception::dontPrint();
    guarded(path, [&] {
        if (!H5::H5File::isHdf5(path)) m->bad("is not an HDF5 file (MATLAB 7.3 .mat expected)");
        m->file = H5::H5File(path, H5F_ACC_RDONLY);
        m->images = m->references("/value/img");
        m->masks = m->references("/value/gt");
        return 0;
    });
    if (m->images.size() != m->masks.size())
        m->bad("/value/img has " + std::to_string(m->images.size()) + " entries and /value/gt " + std::to_string(m->masks.size()));
    if (m->images.empty()) m->bad("holds no images");
}

ImagenetSegFile::~ImagenetSegFile() = default;

int64_t ImagenetSegFile::size() const { return static_cast<int64_t>(m->images.size()); }
const std::string& ImagenetSegFile::path() const { return m->path; }

cv::Mat ImagenetSegFile::image(int64_t index) const {
    if (index < 0 || index >= size()) throw InputError(m->path, "image index " + std::to_string(index) + " out of range");
    const std::string what = "image " + std::to_string(index);
    return guarded(m->path, [&] {
        std::vector<hsize_t> dims;
        const std::vector<uint8_t> v = m->bytes(m->images[static_cast<std::size_t>(index)], dims, what);
        if (dims.size() != 3 || dims[0] != 3) m->bad(what + " is not a [3, W, H] array");
        const int w = static_cast<int>(dims[1]), h = static_cast<int>(dims[2]);
        cv::Mat rgb(h, w, CV_8UC3);
        // Stored [c][x][y]: the transpose to [y][x][c].
        for (int y = 0; y < h; ++y) {
            auto* row = rgb.ptr<uint8_t>(y);
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c) row[3 * x + c] = v[(static_cast<std::size_t>(c) * w + x) * h + y];
        }
        return rgb;
    });
}

cv::Mat ImagenetSegFile::mask(int64_t index) const {
    if (index < 0 || index >= size()) throw InputError(m->path, "mask index " + std::to_string(index) + " out of range");
    const std::string what = "mask " + std::to_string(index);
    return guarded(m->path, [&] {
        // The [1, 1] cell, then the array its one reference points at.
        const H5::DataSet cell(m->file, &m->masks[static_cast<std::size_t>(index)]);
        if (cell.getTypeClass() != H5T_REFERENCE) m->bad(what + " is not a cell of references");
        if (cell.getSpace().getSimpleExtentNpoints() != 1) m->bad(what + " is not a 1 x 1 cell");
        hobj_ref_t inner;
        cell.read(&inner, H5::PredType::STD_REF_OBJ);
        std::vector<hsize_t> dims;
        const std::vector<uint8_t> v = m->bytes(inner, dims, what);
        if (dims.size() != 2) m->bad(what + " is not a [W, H] array");
        const int w = static_cast<int>(dims[0]), h = static_cast<int>(dims[1]);
        cv::Mat out(h, w, CV_8UC1);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) out.at<uint8_t>(y, x) = v[static_cast<std::size_t>(x) * h + y] ? 1 : 0;
        return out;
    });
}

void writeImagenetSegFile(const std::string& path, const std::vector<cv::Mat>& images, const std::vector<cv::Mat>& masks) {
    if (images.size() != masks.size() || images.empty()) throw InputError(path, "needs as many masks as images, and at least one");
    for (std::size_t i = 0; i < images.size(); ++i)
        if (images[i].type() != CV_8UC3 || masks[i].type() != CV_8UC1 || images[i].size() != masks[i].size())
            throw InputError(path, "scene " + std::to_string(i) + ": an 8-bit RGB image and an 8-bit mask of its size are needed");
    H5::Exception::dontPrint();
    const std::string partial = path + ".partial";
    try {
        H5::FileCreatPropList create;
        create.setUserblock(512);
        H5::H5File file(partial, H5F_ACC_TRUNC, create);
        H5::Group refs = file.createGroup("/#refs#"), value = file.createGroup("/value");
        const hsize_t n[2] = {images.size(), 1};
        H5::DataSet img = value.createDataSet("img", H5::PredType::STD_REF_OBJ, H5::DataSpace(2, n));
        H5::DataSet gt = value.createDataSet("gt", H5::PredType::STD_REF_OBJ, H5::DataSpace(2, n));
        std::vector<hobj_ref_t> imgRefs(images.size()), gtRefs(images.size());
        for (std::size_t i = 0; i < images.size(); ++i) {
            const cv::Mat& rgb = images[i];
            const int h = rgb.rows, w = rgb.cols;
            std::vector<uint8_t> planes(static_cast<std::size_t>(3) * w * h), mask(static_cast<std::size_t>(w) * h);
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x) {
                    for (int c = 0; c < 3; ++c) planes[(static_cast<std::size_t>(c) * w + x) * h + y] = rgb.at<cv::Vec3b>(y, x)[c];
                    mask[static_cast<std::size_t>(x) * h + y] = masks[i].at<uint8_t>(y, x) ? 1 : 0;
                }
            const std::string k = std::to_string(i);
            const hsize_t dimsImg[3] = {3, static_cast<hsize_t>(w), static_cast<hsize_t>(h)};
            refs.createDataSet("img" + k, H5::PredType::NATIVE_UINT8, H5::DataSpace(3, dimsImg)).write(planes.data(), H5::PredType::NATIVE_UINT8);
            const hsize_t dimsMask[2] = {static_cast<hsize_t>(w), static_cast<hsize_t>(h)};
            refs.createDataSet("mask" + k, H5::PredType::NATIVE_UINT8, H5::DataSpace(2, dimsMask)).write(mask.data(), H5::PredType::NATIVE_UINT8);
            hobj_ref_t inner;
            file.reference(&inner, ("/#refs#/mask" + k).c_str());
            const hsize_t one[2] = {1, 1};
            refs.createDataSet("cell" + k, H5::PredType::STD_REF_OBJ, H5::DataSpace(2, one)).write(&inner, H5::PredType::STD_REF_OBJ);
            file.reference(&imgRefs[i], ("/#refs#/img" + k).c_str());
            file.reference(&gtRefs[i], ("/#refs#/cell" + k).c_str());
        }
        img.write(imgRefs.data(), H5::PredType::STD_REF_OBJ);
        gt.write(gtRefs.data(), H5::PredType::STD_REF_OBJ);
    } catch (const H5::Exception& e) {
        std::remove(partial.c_str());
        throw IoError(path, "cannot be written (" + e.getDetailMsg() + ")");
    }
    {
        std::FILE* f = std::fopen(partial.c_str(), "r+b");
        if (!f) throw IoError(path, "cannot be written");
        std::string header = "MATLAB 7.3 MAT-file, written by vitscope (the ImageNet segmentation layout)";
        header.resize(116, ' ');
        const bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
        if (std::fclose(f) != 0 || !ok) throw IoError(path, "cannot be written");
    }
    if (std::rename(partial.c_str(), path.c_str()) != 0) throw IoError(path, "cannot be written");
}

#else  // no HDF5 in this build

bool imagenetSegSupported() { return false; }

struct ImagenetSegFile::Impl {
    std::string path;
};

ImagenetSegFile::ImagenetSegFile(const std::string& path) : m(std::make_unique<Impl>()) {
    m->path = path;
    throw InputError(path, "cannot be read: this build has no HDF5 support (install libhdf5-dev and rebuild)");
}
ImagenetSegFile::~ImagenetSegFile() = default;
int64_t ImagenetSegFile::size() const { return 0; }
const std::string& ImagenetSegFile::path() const { return m->path; }
cv::Mat ImagenetSegFile::image(int64_t) const { return {}; }
cv::Mat ImagenetSegFile::mask(int64_t) const { return {}; }

void writeImagenetSegFile(const std::string& path, const std::vector<cv::Mat>&, const std::vector<cv::Mat>&) {
    throw InputError(path, "cannot be written: this build has no HDF5 support (install libhdf5-dev and rebuild)");
}

#endif

}  // namespace vitscope
