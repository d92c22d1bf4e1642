#pragma once
// Guillaumin et al.'s ImageNet segmentation set as the references read it (gtsegs_ijcv.mat:
// MATLAB 7.3, i.e. HDF5 behind a 512-byte header). `/value/img` and `/value/gt` are [N, 1]
// datasets of object references into `/#refs#`: an image is uint8 [3, W, H] (MATLAB's column
// order), a mask is a [1, 1] cell whose one reference points at a [W, H] 0/1 array; both are
// transposed to rows x columns as the references' readers do. Read with libhdf5's C++ API.
#include <opencv2/core.hpp>

#include <memory>
#include <string>
#include <vector>

namespace vitscope {

// Whether this build reads and writes the layout (built with libhdf5's C++ API).
bool imagenetSegSupported();

class ImagenetSegFile {
public:
    // Throws IoError for a missing file and FormatError naming the file for anything else.
    explicit ImagenetSegFile(const std::string& path);
    ~ImagenetSegFile();
    ImagenetSegFile(const ImagenetSegFile&) = delete;
    ImagenetSegFile& operator=(const ImagenetSegFile&) = delete;

    int64_t size() const;
    cv::Mat image(int64_t index) const;  // CV_8UC3, RGB, H x W
    cv::Mat mask(int64_t index) const;   // CV_8UC1, 0 / 1, H x W (the caller checks it against its image)
    const std::string& path() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m;
};

// Writes scenes (CV_8UC3 RGB) and masks (CV_8UC1, non-zero = object, the scene's size) in the
// same layout, MATLAB's header text in the user block: the shapes world's ImageNet-S-style file.
// Throws InputError for mismatched inputs, IoError naming `path` when it cannot be written.
void writeImagenetSegFile(const std::string& path, const std::vector<cv::Mat>& images, const std::vector<cv::Mat>& masks);

}  // namespace vitscope
