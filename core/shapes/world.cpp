#include "shapes/world.h"

#include "error.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <set>

namespace vitscope::shapes {

namespace {

const std::vector<std::string> kShapes{"circle", "square", "hexagon", "heart", "triangle", "diamond", "star", "cross"};
const std::vector<std::string> kColors{"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"};
const std::vector<std::string> kTextures{"solid", "striped", "dotted", "checkered"};
const std::vector<std::string> kPositions{"top left",    "top",    "top right",    "left",        "center",
                                          "right",       "bottom left", "bottom",  "bottom right"};
const std::vector<std::string> kSizes{"small", "large"};
const std::vector<std::string> kBackgrounds{"gray", "dark", "grass", "water"};

const cv::Vec3b kRgb[] = {{220, 30, 30}, {245, 140, 20}, {240, 225, 30}, {40, 180, 40},
                          {40, 220, 230}, {40, 70, 230},  {150, 50, 200}, {250, 130, 200}};

constexpr int kGrass = 2, kWater = 3;

// splitmix64: a well-mixed stream per (seed, index).
class Rng {
public:
    explicit Rng(uint64_t seed) : m_state(seed) {}
    uint64_t next() {
        uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
    double range(double lo, double hi) { return lo + (hi - lo) * uniform(); }

private:
    uint64_t m_state;
};

std::vector<cv::Point> polygon(int shape, cv::Point2d c, double r, double angle) {
    std::vector<cv::Point2d> pts;
    auto regular = [&](int n, double radius, double phase) {
        for (int i = 0; i < n; ++i) {
            const double a = phase + angle + 2 * M_PI * i / n;
            pts.emplace_back(c.x + radius * std::cos(a), c.y + radius * std::sin(a));
        }
    };
    switch (shape) {
    case 0: regular(48, r, 0); break;                        // circle
    case 1: regular(4, r * 1.2, M_PI / 4); break;           // square
    case 2: regular(6, r * 1.05, 0); break;                 // hexagon
    case 3:                                                 // heart
        for (int i = 0; i < 48; ++i) {
            const double t = 2 * M_PI * i / 48;
            const double x = 16 * std::pow(std::sin(t), 3);
            const double y = 13 * std::cos(t) - 5 * std::cos(2 * t) - 2 * std::cos(3 * t) - std::cos(4 * t);
            pts.emplace_back(c.x + r * x / 16.5, c.y - r * (y + 2.5) / 16.5);
        }
        break;
    case 4: regular(3, r * 1.25, -M_PI / 2); break;         // triangle
    case 5:                                                 // diamond: a tall rhombus
        pts = {{c.x, c.y - r * 1.2}, {c.x + r * 0.75, c.y}, {c.x, c.y + r * 1.2}, {c.x - r * 0.75, c.y}};
        break;
    case 6:                                                 // star
        for (int i = 0; i < 10; ++i) {
            const double a = -M_PI / 2 + angle + M_PI * i / 5;
            const double rr = i % 2 == 0 ? r * 1.25 : r * 0.5;
            pts.emplace_back(c.x + rr * std::cos(a), c.y + rr * std::sin(a));
        }
        break;
    default: {                                              // cross (plus sign)
        const double a = r * 1.1, b = r * 0.38;
        const cv::Point2d q[] = {{-b, -a}, {b, -a}, {b, -b}, {a, -b}, {a, b}, {b, b},
                                 {b, a},   {-b, a}, {-b, b}, {-a, b}, {-a, -b}, {-b, -b}};
        for (const auto& p : q) pts.emplace_back(c.x + p.x, c.y + p.y);
        break;
    }
    }
    std::vector<cv::Point> out;
    constexpr int kShift = 4;  // sub-pixel vertices
    for (const auto& p : pts) out.emplace_back(static_cast<int>(std::lround(p.x * (1 << kShift))), static_cast<int>(std::lround(p.y * (1 << kShift))));
    return out;
}

void drawBackground(cv::Mat& img, int kind, Rng& rng) {
    const int s = img.rows;
    switch (kind) {
    case 0: {  // gray
        const int g = 110 + rng.below(50);
        img.setTo(cv::Scalar(g, g, g));
        break;
    }
    case 1: {  // dark
        const int g = 15 + rng.below(25);
        img.setTo(cv::Scalar(g, g, g + 5));
        break;
    }
    case kGrass: {  // grass: green field with darker blades
        img.setTo(cv::Scalar(70 + rng.below(20), 120 + rng.below(30), 50));
        for (int i = 0; i < 90; ++i) {
            const cv::Point a(rng.below(s), rng.below(s));
            const cv::Point b(a.x + rng.below(5) - 2, a.y - 3 - rng.below(5));
            cv::line(img, a, b, cv::Scalar(40 + rng.below(30), 90 + rng.below(40), 30), 1);
        }
        break;
    }
    default: {  // water: blue with light wavy lines
        img.setTo(cv::Scalar(40, 90 + rng.below(20), 170 + rng.below(30)));
        const double phase = rng.range(0, 2 * M_PI);
        for (int y0 = 3; y0 < s; y0 += 6) {
            std::vector<cv::Point> wave;
            for (int x = 0; x < s; x += 2) wave.emplace_back(x, y0 + static_cast<int>(std::lround(1.5 * std::sin(x * 0.35 + phase + y0))));
            cv::polylines(img, wave, false, cv::Scalar(120, 170, 230), 1);
        }
        break;
    }
    }
    // Mild pixel noise everywhere.
    cv::Mat noise(img.size(), CV_16SC3);
    cv::RNG local(rng.next());  // never OpenCV's global generator: scenes stay deterministic
    local.fill(noise, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(6));
    cv::Mat tmp;
    img.convertTo(tmp, CV_16SC3);
    tmp += noise;
    tmp.convertTo(img, CV_8UC3);
}

// Fills `mask`'s pixels of `img` with the color and texture.
void paint(cv::Mat& img, const cv::Mat& mask, int color, int texture, Rng& rng) {
    const cv::Vec3b base = kRgb[color];
    const cv::Vec3b shade(static_cast<uint8_t>(base[0] * 0.45), static_cast<uint8_t>(base[1] * 0.45),
                          static_cast<uint8_t>(base[2] * 0.45));
    const int period = 4 + rng.below(2), ox = rng.below(8), oy = rng.below(8);
    for (int y = 0; y < img.rows; ++y) {
        for (int x = 0; x < img.cols; ++x) {
            if (!mask.at<uint8_t>(y, x)) continue;
            bool alt = false;
            switch (texture) {
            case 1: alt = ((x + y + ox) / 2) % period < period / 2; break;                          // striped
            case 2: alt = ((x + ox) % 4 == 0 || (x + ox) % 4 == 1) && ((y + oy) % 4 == 0 || (y + oy) % 4 == 1); break;  // dotted
            case 3: alt = (((x + ox) / 4) + ((y + oy) / 4)) % 2 == 1; break;                      // checkered
            default: break;                                                                      // solid
            }
            img.at<cv::Vec3b>(y, x) = alt ? shade : base;
        }
    }
}

struct Placement {
    cv::Point2d center;
    double radius;
};

Placement place(int position, int size, int imageSize, Rng& rng) {
    // Cell centres on patch-grid lines (16, 32, 48 px at 64 px) and no jitter: the object meets the
    // 8 px patch grid the same way in every cell, so a ViT learns one set of shape features instead
    // of one per alignment (measured in models/shapes-vit/card.md: 49.6% -> 87.6% shape).
    const double cells[] = {0.25, 0.5, 0.75};
    const double r = (size == 0 ? 8.5 : 12.5) * imageSize / 64.0 * rng.range(0.92, 1.08);
    return {{cells[position % 3] * imageSize, cells[position / 3] * imageSize}, r};
}

std::string article(const std::string& word) {
    const char c = word.empty() ? 'x' : word[0];
    return (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') ? "an " : "a ";
}

}  // namespace

const char* attributeName(Attribute a) {
    switch (a) {
    case Attribute::Shape: return "shape";
    case Attribute::Color: return "color";
    case Attribute::Texture: return "texture";
    case Attribute::Position: return "position";
    case Attribute::Size: return "size";
    case Attribute::Background: return "background";
    }
    return "?";
}

const std::vector<std::string>& attributeValues(Attribute a) {
    switch (a) {
    case Attribute::Shape: return kShapes;
    case Attribute::Color: return kColors;
    case Attribute::Texture: return kTextures;
    case Attribute::Position: return kPositions;
    case Attribute::Size: return kSizes;
    case Attribute::Background: return kBackgrounds;
    }
    return kShapes;
}

int valueIndex(Attribute a, const std::string& value) {
    const auto& values = attributeValues(a);
    const auto it = std::find(values.begin(), values.end(), value);
    return it == values.end() ? -1 : static_cast<int>(it - values.begin());
}

std::string singleAttributePrompt(Attribute a, int value) {
    const std::string& v = attributeValues(a).at(static_cast<std::size_t>(value));
    switch (a) {
    case Attribute::Shape: return article(v) + v;
    case Attribute::Color:
    case Attribute::Texture:
    case Attribute::Size: return article(v) + v + " object";
    case Attribute::Position: return "an object at the " + v;
    case Attribute::Background: return "an object on " + article(v) + v + " background";
    }
    return v;
}

Split parseSplit(const std::string& name) {
    if (name == "standard" || name.empty()) return Split::Standard;
    if (name == "spurious-train") return Split::SpuriousTrain;
    if (name == "spurious-test") return Split::SpuriousTest;
    throw InputError("--split", "unknown split '" + name + "' (standard, spurious-train or spurious-test)");
}

const char* splitName(Split split) {
    switch (split) {
    case Split::Standard: return "standard";
    case Split::SpuriousTrain: return "spurious-train";
    case Split::SpuriousTest: return "spurious-test";
    }
    return "?";
}

int shapeGroup(int shape) { return shape < 4 ? 0 : 1; }

Scene generateScene(uint64_t seed, uint64_t index, const WorldParams& params) {
    if (params.imageSize < 16 || params.imageSize > 1024) throw InputError("imageSize", "must be within 16..1024");
    Rng rng(seed * 0x2545F4914F6CDD1Dull ^ (index + 0x632BE59BD9B4E019ull));
    Scene scene;
    SceneLabels& l = scene.labels;
    auto set = [&](Attribute a, int v) { l.values[static_cast<std::size_t>(a)] = v; };
    set(Attribute::Shape, rng.below(8));
    set(Attribute::Color, rng.below(8));
    set(Attribute::Texture, rng.below(std::clamp(params.textureKinds, 1, 4)));
    set(Attribute::Position, rng.below(std::clamp(params.positionKinds, 1, 9)));
    set(Attribute::Size, rng.below(2));
    if (params.split == Split::Standard) {
        set(Attribute::Background, rng.below(std::clamp(params.backgroundKinds, 1, 4)));
    } else {
        l.group = shapeGroup(l.value(Attribute::Shape));
        const double agree = params.split == Split::SpuriousTrain ? params.spuriousAgreement : 0.5;
        const int matching = l.group == 0 ? kGrass : kWater;
        set(Attribute::Background, rng.uniform() < agree ? matching : (matching == kGrass ? kWater : kGrass));
    }
    const int s = params.imageSize;
    scene.image = cv::Mat(s, s, CV_8UC3);
    drawBackground(scene.image, l.value(Attribute::Background), rng);

    // Optional distractor first (small, another shape, color and cell), so the object is on top.
    l.distractor = rng.uniform() < params.distractorProbability;
    if (l.distractor) {
        int cell = rng.below(9);
        if (cell == l.value(Attribute::Position)) cell = (cell + 1 + rng.below(8)) % 9;
        const int shape = (l.value(Attribute::Shape) + 1 + rng.below(7)) % 8;
        const int color = (l.value(Attribute::Color) + 1 + rng.below(7)) % 8;
        const Placement p = place(cell, 0, s, rng);
        cv::Mat dmask = cv::Mat::zeros(s, s, CV_8UC1);
        cv::fillPoly(dmask, std::vector<std::vector<cv::Point>>{polygon(shape, p.center, p.radius * 0.8, rng.range(-0.2, 0.2))},
                     cv::Scalar(255), cv::LINE_8, 4);
        const int texture = rng.below(4);  // drawn where the paint call drew it: scenes stay as they were
        paint(scene.image, dmask, color, texture, rng);
        l.distractorValues = l.values;
        l.distractorValues[static_cast<std::size_t>(Attribute::Shape)] = shape;
        l.distractorValues[static_cast<std::size_t>(Attribute::Color)] = color;
        l.distractorValues[static_cast<std::size_t>(Attribute::Texture)] = texture;
        l.distractorValues[static_cast<std::size_t>(Attribute::Position)] = cell;
        l.distractorValues[static_cast<std::size_t>(Attribute::Size)] = 0;  // placed as a small object
        scene.distractorMask = dmask;
    }
    const Placement p = place(l.value(Attribute::Position), l.value(Attribute::Size), s, rng);
    scene.mask = cv::Mat::zeros(s, s, CV_8UC1);
    cv::fillPoly(scene.mask,
                 std::vector<std::vector<cv::Point>>{polygon(l.value(Attribute::Shape), p.center, p.radius, rng.range(-0.2, 0.2))},
                 cv::Scalar(255), cv::LINE_8, 4);
    paint(scene.image, scene.mask, l.value(Attribute::Color), l.value(Attribute::Texture), rng);
    if (l.distractor) scene.distractorMask.setTo(0, scene.mask);  // what the object covers is not the distractor's
    return scene;
}

namespace {

// Caption templates over the six attributes; {s} shape, {c} color, {t} texture, {p} position,
// {z} size, {b} background. The first six are the single-attribute zero-shot prompts.
const std::vector<std::string>& templates() {
    static const std::vector<std::string> t{
        "", "", "", "", "", "",  // single-attribute prompts, filled by singleAttributePrompt
        "a {c} {s}", "a {z} {s}", "a {t} {s}", "a {s} at the {p}", "a {s} on a {b} background",
        "a {c} object at the {p}", "a {z} {c} object", "a {t} {c} object",
        "a {z} {c} {s}", "a {c} {t} {s}", "a {c} {s} at the {p}", "a {z} {s} at the {p}",
        "a {z} {t} {c} {s} at the {p}", "a {c} {s} at the {p} on a {b} background",
        "a {z} {t} {c} {s} at the {p} on a {b} background"};
    return t;
}

std::string fill(std::string t, const SceneLabels& l) {
    const std::pair<const char*, Attribute> keys[] = {{"{s}", Attribute::Shape},    {"{c}", Attribute::Color},
                                                      {"{t}", Attribute::Texture},  {"{p}", Attribute::Position},
                                                      {"{z}", Attribute::Size},     {"{b}", Attribute::Background}};
    for (const auto& [key, attr] : keys) {
        const auto pos = t.find(key);
        if (pos != std::string::npos) t.replace(pos, 3, attributeValues(attr)[static_cast<std::size_t>(l.value(attr))]);
    }
    // Fix the article of the first word ("a orange" -> "an orange").
    if (t.rfind("a ", 0) == 0) t = article(t.substr(2)) + t.substr(2);
    return t;
}

}  // namespace

int captionCount() { return static_cast<int>(templates().size()); }

std::string caption(const SceneLabels& labels, int variant) {
    if (variant < 0 || variant >= captionCount()) throw InputError("caption", "variant out of range");
    if (variant < 6) return singleAttributePrompt(kAttributes[static_cast<std::size_t>(variant)], labels.value(kAttributes[static_cast<std::size_t>(variant)]));
    return fill(templates()[static_cast<std::size_t>(variant)], labels);
}

std::vector<std::string> textPool() {
    std::set<std::string> seen;
    std::vector<std::string> out;
    auto add = [&](const std::string& s) {
        if (seen.insert(s).second) out.push_back(s);
    };
    for (Attribute a : kAttributes)
        for (int v = 0; v < static_cast<int>(attributeValues(a).size()); ++v) add(singleAttributePrompt(a, v));
    // Pairwise combinations through the two-attribute templates, over every value pair.
    SceneLabels l;
    for (int t = 6; t < 14; ++t) {
        for (int s = 0; s < 8; ++s)
            for (int c = 0; c < 8; ++c)
                for (int x = 0; x < 9; ++x)
                    for (int z = 0; z < 2; ++z)
                        for (int tx = 0; tx < 4; ++tx)
                            for (int b = 0; b < 4; ++b) {
                                l.values = {s, c, tx, x, z, b};
                                add(fill(templates()[static_cast<std::size_t>(t)], l));
                            }
    }
    return out;
}

}  // namespace vitscope::shapes
