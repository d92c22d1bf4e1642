#pragma once
// The spurious-split demo's world: a train and a test split of the shapes world where shape groups
// go with a background (grass / water), the classes file that makes the eight shapes vote for their
// group, and the descriptions that discover the spurious heads. The GUI's ablation demo and its
// tests take every file, seed and text from here.
#include <cstdint>
#include <string>

namespace vitscope::shapes {

struct SpuriousDemo {
    std::string dir;                    // the demo's folder (train/, test/, groups.tsv)
    std::string trainDir() const { return dir + "/train"; }
    std::string testDir() const { return dir + "/test"; }
    std::string classesFile() const { return dir + "/groups.tsv"; }
    int64_t scenesPerSplit = 2000;
    uint64_t trainSeed = 9102, testSeed = 9103;
    std::string labelColumn = "group";
    std::string groupColumns = "group,background";  // comma separated
    // "Tick discovered spurious heads": spurious (background) and core (shape) descriptions.
    std::string spuriousTexts = "an object on a grass background, an object on a water background";
    std::string coreTexts = "a circle, a square, a hexagon, a heart, a triangle, a diamond, a star, a cross";
};

// Writes the classes file: the eight shape prompts, each voting for its group ("0<TAB>a circle").
// Throws IoError naming the file when it cannot be written.
void writeSpuriousDemoClasses(const SpuriousDemo& demo);

// The spurious world in the Waterbirds layout of group-DRO (metadata.csv: img_id, img_filename,
// y, split, place, place_filename), so `evaluate waterbirds` runs on a fresh machine: split 0
// (train) from spurious-train, splits 1 and 2 (val, test) from spurious-test, `perSplit` scenes
// each; y = the shape group, place = 1 on water, 0 on grass. Beside it: classes.tsv (the eight
// shape prompts voting for their group), spurious.txt and core.txt (the demo's descriptions).
// Returns the rows written; throws IoError naming a file that cannot be written.
int64_t writeWaterbirdsWorld(const std::string& dir, int64_t perSplit, uint64_t seed);

}  // namespace vitscope::shapes
