#pragma once
// The shapes world: procedurally generated 64 x 64 RGB scenes with one object (and sometimes
// a distractor), ground-truth attribute labels and object mask, and captions. Deterministic for
// (seed, index), so scenes can be generated in any order or in parallel. Torch-free.
#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vitscope::shapes {

enum class Attribute { Shape, Color, Texture, Position, Size, Background };
constexpr std::array<Attribute, 6> kAttributes{Attribute::Shape,    Attribute::Color, Attribute::Texture,
                                               Attribute::Position, Attribute::Size,  Attribute::Background};

const char* attributeName(Attribute a);         // "shape", "color", ...
const std::vector<std::string>& attributeValues(Attribute a);
int valueIndex(Attribute a, const std::string& value);  // -1 when unknown

// The zero-shot prompt for one value ("a red object", "a circle", "an object at the top left"...).
std::string singleAttributePrompt(Attribute a, int value);

enum class Split { Standard, SpuriousTrain, SpuriousTest };
Split parseSplit(const std::string& name);  // "standard", "spurious-train", "spurious-test"
const char* splitName(Split split);

struct SceneLabels {
    std::array<int, 6> values{};  // indexed by Attribute
    int group = -1;               // spurious splits: 0 / 1 (the shape group); -1 elsewhere
    bool distractor = false;
    // The distractor's attributes (background: the scene's), valid when `distractor`.
    std::array<int, 6> distractorValues{};
    int value(Attribute a) const { return values[static_cast<std::size_t>(a)]; }
    int distractorValue(Attribute a) const { return distractorValues[static_cast<std::size_t>(a)]; }
};

struct Scene {
    cv::Mat image;            // CV_8UC3, RGB
    cv::Mat mask;             // CV_8UC1, 255 on the main object
    cv::Mat distractorMask;   // CV_8UC1, 255 where the distractor is visible; empty without one
    SceneLabels labels;
};

struct WorldParams {
    int imageSize = 64;
    double distractorProbability = 0.25;
    Split split = Split::Standard;
    double spuriousAgreement = 0.95;  // spurious-train: P(background agrees with group)
    int backgroundKinds = 4;          // standard split: draw among the first k kinds (gray, dark, grass, water)
    int textureKinds = 4;             // draw among the first k textures (solid, striped, dotted, checkered)
    int positionKinds = 9;            // draw among the first k grid cells (diagnostics; 9: all)
};

// Shapes 0..3 form group 0, 4..7 group 1; in the spurious splits group 0 pairs with the grass
// background and group 1 with water (95% in train, 50% in test).
int shapeGroup(int shape);

Scene generateScene(uint64_t seed, uint64_t index, const WorldParams& params = {});

// Captions of a scene, from templates naming one attribute up to all six. `variant` picks among
// them deterministically; captionCount() of them exist for every scene.
std::string caption(const SceneLabels& labels, int variant);
int captionCount();

// Every attribute phrase and the combinations used by the captions (the world's text pool).
std::vector<std::string> textPool();

}  // namespace vitscope::shapes
