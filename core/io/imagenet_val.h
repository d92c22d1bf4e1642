#pragma once
// ImageNet's validation labels as users have them beside the flat folder of 50,000
// ILSVRC2012_val_NNNNNNNN.JPEG images:
// - the devkit (ILSVRC2012_devkit_t12/data/): ILSVRC2012_validation_ground_truth.txt, one
//   ILSVRC2012_ID per line in file-name order, and meta.mat (MATLAB level 5), whose struct array
//   `synsets` maps each ID to its WNID; the leaf synsets (num_children == 0) are the classes;
// - Kaggle's LOC_val_solution.csv (ImageId,PredictionString; the prediction string starts with the
//   image's wnid), with LOC_synset_mapping.txt beside it when present (the class list).
// The label order is the sorted wnids in both, as torchvision's ImageFolder and the references
// number the classes; the devkit's IDs follow another order and are mapped through meta.mat.
//
//   const ImagenetGroundTruth gt = readImagenetGroundTruth("ILSVRC2012_devkit_t12");
//   const std::vector<int64_t> labels = labelImages(gt, listImages("val"), "val");
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vitscope {

struct DevkitClass {
    int64_t id = 0;  // ILSVRC2012_ID
    std::string wnid, words;
};

struct ImagenetGroundTruth {
    std::string layout;              // "devkit" or "kaggle"
    std::vector<std::string> wnids;  // sorted: the label order
    std::vector<std::string> names;  // per class, its first name (the words up to a comma); the wnid without one
    std::map<std::string, int64_t> labelOf;  // image name without extension -> label
    std::vector<std::string> files;          // the files read (for the record's hashes)
};

// The leaf synsets of a devkit's meta.mat in the file's order; FormatError naming the file for a
// layout that is not the devkit's (no `synsets`, IDs not 1..K or repeated, repeated wnids).
std::vector<DevkitClass> readDevkitClasses(const std::string& metaMat);

// `path`: the devkit folder (or its data/ folder, or a file in it), or LOC_val_solution.csv (or
// the folder holding it). IoError for missing files, FormatError naming the file and line for
// bad content (an ID or wnid that is no class, a repeated image, a malformed line).
ImagenetGroundTruth readImagenetGroundTruth(const std::string& path);

// Each image's label by its file name; InputError naming the image without a ground-truth line,
// or `data` and the first image missing when the folder and the ground truth disagree in count.
std::vector<int64_t> labelImages(const ImagenetGroundTruth& gt, const std::vector<std::string>& images,
                                 const std::string& data);

}  // namespace vitscope
