#pragma once
// Writing shapes-world datasets and text resources to disk.
#include "shapes/world.h"

#include <functional>
#include <string>

namespace vitscope::shapes {

struct GenerateParams {
    std::string outDir;
    int64_t count = 1000;
    uint64_t seed = 0;
    WorldParams world;
};

struct GenerateResult {
    int64_t written = 0;
    double seconds = 0;
};

// Writes OUT/images/NNNNNN.png, OUT/masks/NNNNNN.png, OUT/distractor-masks/NNNNNN.png (scenes
// with a distractor) and OUT/labels.csv with columns
// file,mask,shape,color,texture,position,size,background,group,distractor_shape,
// distractor_color,distractor_texture,distractor_position,distractor_size,distractor_mask
// (group empty outside the spurious splits, distractor cells empty without one; paths relative
// to OUT). `progress(done, total)` is called now and then.
GenerateResult generateDataset(const GenerateParams& params,
                               const std::function<void(int64_t, int64_t)>& progress = {});

// Writes the world's text pool (text_pool.txt) and one word list per property (color.txt,
// shape.txt, texture.txt, position.txt, size.txt, background.txt) into `dir`.
void writeTextResources(const std::string& dir);

}  // namespace vitscope::shapes
