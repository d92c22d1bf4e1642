#include "shapes_commands.h"

#include "analysis/labels.h"
#include "cli_common.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/imagenet_seg.h"
#include "io/matlab_v5.h"
#include "io/file_util.h"
#include "model/export.h"
#include "model/loader.h"
#include "shapes/dataset.h"
#include "shapes/plant.h"
#include "shapes/specialisation.h"
#include "shapes/spurious_demo.h"
#include "shapes/train_clip.h"
#include "shapes/train_vit.h"
#include "shapes/zero_shot.h"
#include "text/text_tokenizer.h"
#include "error.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <set>
#include <iostream>
#include <memory>

namespace vitscope::cli {

namespace {

struct GenerateOptions {
    shapes::GenerateParams params;
    std::string split = "standard";
};

void runGenerate(GenerateOptions o) {
    o.params.world.split = shapes::parseSplit(o.split);
    const shapes::GenerateResult r = shapes::generateDataset(o.params, [](int64_t done, int64_t total) {
        std::cerr << "\rgenerated " << done << " / " << total << std::flush;
    });
    std::cerr << "\n";
    std::cout << r.written << " images (" << shapes::splitName(o.params.world.split) << ") in " << o.params.outDir << ", "
              << static_cast<int64_t>(r.written / std::max(r.seconds, 1e-9)) << " images/s including PNG encoding\n";
}

std::atomic<bool> g_cancel{false};

void onInterrupt(int) { g_cancel.store(true); }

void runTrainClip(const shapes::ClipTrainParams& params) {
    std::signal(SIGINT, onInterrupt);
    std::signal(SIGTERM, onInterrupt);
    const shapes::ClipTrainResult r = shapes::trainShapesClip(
        params, g_cancel,
        [](const shapes::TrainProgress& p) {
            if (p.step % 10 != 0 && p.step != p.steps) return;
            std::fprintf(stderr, "\rstep %d/%d  loss %.4f  T %.4f  %.0f images/s  ETA %.0f s   ", p.step, p.steps, p.loss,
                         p.temperature, p.imagesPerSecond, p.etaSeconds);
        },
        [](const std::string& line) { std::fprintf(stderr, "\n%s\n", line.c_str()); });
    std::fprintf(stderr, "\n");
    if (r.cancelled) {
        std::cout << "interrupted after " << r.stepsRun << " steps; checkpoint kept in " << params.outDir
                  << "/checkpoint (run the same command to resume)\n";
        return;
    }
    std::cout << "trained " << r.stepsRun << " steps in " << r.seconds << " s, final loss " << r.finalLoss << "; model in "
              << params.outDir << "\n";
}

void runTrainVit(const shapes::VitTrainParams& params) {
    std::signal(SIGINT, onInterrupt);
    const shapes::VitTrainResult r = shapes::trainShapesVit(params, g_cancel, [&](int step, double loss, double ips) {
        if (step % 10 == 0 || step == params.steps)
            std::fprintf(stderr, "\rstep %d/%d  loss %.4f  %.0f images/s  ETA %.0f s   ", step, params.steps, loss, ips,
                         (params.steps - step) * params.batch / std::max(ips, 1e-9));
    });
    std::fprintf(stderr, "\n");
    if (r.cancelled) {
        std::cout << "interrupted; nothing written\n";
        return;
    }
    std::printf("trained in %.0f s; held-out accuracy: shape %.2f%%, color %.2f%%\n", r.seconds, 100 * r.shapeAccuracy, 100 * r.colorAccuracy);
    if (r.alignCosine > -2) std::printf("aligned into %s: held-out mean cosine %.4f\n", params.clipModel.c_str(), r.alignCosine);
}

void runEvaluate(const std::string& spec, int64_t count, bool probe) {
    const Model model = loadModel(spec);
    if (!model.isClip()) {
        const auto [shape, color] = shapes::evaluateShapesVit(spec, count);
        std::printf("classifier accuracy on %lld held-out images: shape %.2f%%, color %.2f%%\n", static_cast<long long>(count),
                    100 * shape, 100 * color);
        return;
    }
    if (model.tokenizerPath.empty()) throw InputError(spec, "no tokenizer beside the model");
    const auto tok = loadTokenizer(model.tokenizerPath);
    const shapes::ZeroShotResult r = shapes::evaluateZeroShot(model, *tok, count);
    std::cout << "zero-shot accuracy on " << r.images << " held-out images (seed never used for training)\n";
    for (std::size_t a = 0; a < 6; ++a) {
        const shapes::Attribute attr = shapes::kAttributes[a];
        std::printf("  %-10s %6.2f%%  (chance %.2f%%, %zu values)\n", shapes::attributeName(attr), 100.0 * r.accuracy[a],
                    100.0 / shapes::attributeValues(attr).size(), shapes::attributeValues(attr).size());
    }
    if (probe) {
        const shapes::ZeroShotResult p = shapes::linearProbe(model, 4000, count);
        std::cout << "linear probe on the image embeddings (4000 training scenes, " << p.images << " held-out)\n";
        for (std::size_t a = 0; a < 6; ++a)
            std::printf("  %-10s %6.2f%%\n", shapes::attributeName(shapes::kAttributes[a]), 100.0 * p.accuracy[a]);
    }
}

void runSpecialisation(const std::string& spec, int64_t count, int lastLayers) {
    const Model model = loadModel(spec);
    const shapes::SpecialisationResult r = shapes::headSpecialisation(model, count, shapes::kEvalSeed + 2);
    std::printf("Head specialisation of %s over %lld held-out scenes (max decomposition sum error %.2g).\n",
                spec.c_str(), static_cast<long long>(r.images), r.maxSumError);
    std::printf("R^2: share of the variance of the head's direct contribution explained by the attribute.\n\n");
    std::printf("| layer | head | best attribute | R^2 | shape | color | texture | position | size | background |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
    const int first = std::max(0, model.vision.layers() - lastLayers);
    for (const auto& h : r.heads) {
        if (h.layer < first) continue;
        std::printf("| %d | %d | %s | %.2f |", h.layer, h.head, shapes::attributeName(shapes::kAttributes[static_cast<std::size_t>(h.bestAttribute())]),
                    h.r2[static_cast<std::size_t>(h.bestAttribute())]);
        for (double v : h.r2) std::printf(" %.2f |", v);
        std::printf("\n");
    }
}

// A shapes world folder (labels.csv with its file and mask columns) as an ImageNet-S-style
// .mat, so `evaluate imagenet-seg` runs on a fresh machine.
void runImagenetSegExport(const std::string& world, const std::string& out, int64_t count) {
    const std::string labels = (std::filesystem::path(world) / "labels.csv").string();
    std::vector<std::map<std::string, std::string>> rows = readCsvTable(labels);
    if (count > 0 && static_cast<int64_t>(rows.size()) > count) rows.resize(static_cast<std::size_t>(count));
    std::vector<cv::Mat> images, masks;
    for (const auto& row : rows) {
        if (!row.count("file") || !row.count("mask")) throw FormatError(labels, "needs the columns file and mask");
        images.push_back(loadImageRgb((std::filesystem::path(world) / row.at("file")).string()));
        const cv::Mat m = loadImageRgb((std::filesystem::path(world) / row.at("mask")).string());
        cv::Mat gray(m.rows, m.cols, CV_8UC1);
        for (int y = 0; y < m.rows; ++y)
            for (int x = 0; x < m.cols; ++x) gray.at<uint8_t>(y, x) = m.at<cv::Vec3b>(y, x)[0] > 127 ? 1 : 0;
        masks.push_back(gray);
    }
    writeImagenetSegFile(out, images, masks);
    std::printf("%zu scenes of %s in the ImageNet segmentation layout\n%s\n", images.size(), world.c_str(), out.c_str());
}

// The rows of a world's labels.csv, each with its file and a non-empty class in `column`.
std::vector<std::map<std::string, std::string>> classRows(const std::string& world, const std::string& column) {
    const std::string labels = (std::filesystem::path(world) / "labels.csv").string();
    const std::vector<std::map<std::string, std::string>> rows = readCsvTable(labels);
    if (rows.empty()) throw InputError(labels, "lists no images");
    if (!rows.front().count(column) || !rows.front().count("file")) throw FormatError(labels, "has no column '" + column + "' (or no file column)");
    for (const auto& row : rows)
        if (row.at(column).empty()) throw FormatError(labels, "a row has an empty '" + column + "'");
    return rows;
}

void copyScene(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::error_code ec;
    std::filesystem::create_directories(to.parent_path(), ec);
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(to.string(), "cannot be written (" + ec.message() + ")");
}

// A shapes world folder as an ImageNet-style class-folder dataset (OUT/<value of COLUMN>/<file>),
// so `evaluate zero-shot` / `evaluate ablations` run on a fresh machine.
void runClassFolders(const std::string& world, const std::string& column, const std::string& out) {
    const std::vector<std::map<std::string, std::string>> rows = classRows(world, column);
    for (const auto& row : rows) {
        const std::filesystem::path from = std::filesystem::path(world) / row.at("file");
        copyScene(from, std::filesystem::path(out) / row.at(column) / from.filename());
    }
    std::printf("%zu scenes of %s in class folders by %s\n%s\n", rows.size(), world.c_str(), column.c_str(), out.c_str());
}

// A shapes world folder as ImageNet's flat validation folder with both ground truths users have:
// OUT/val/ILSVRC2012_val_NNNNNNNN.<ext> in the world's order, the devkit
// (OUT/ILSVRC2012_devkit_t12/data/meta.mat, level 5, and ILSVRC2012_validation_ground_truth.txt)
// and Kaggle's OUT/LOC_val_solution.csv + LOC_synset_mapping.txt. The classes (the values of
// COLUMN, standing for wnids) get their ILSVRC2012_IDs in reverse sorted order and an inner
// synset is listed first, as traps for a reader that numbers the classes by ID or keeps every synset.
void runImagenetValExport(const std::string& world, const std::string& column, const std::string& out) {
    const std::vector<std::map<std::string, std::string>> rows = classRows(world, column);
    std::set<std::string> classSet;
    for (const auto& row : rows) classSet.insert(row.at(column));
    const std::vector<std::string> classes(classSet.begin(), classSet.end());
    const int64_t K = static_cast<int64_t>(classes.size());
    auto idOf = [&](const std::string& c) { return K - (std::lower_bound(classes.begin(), classes.end(), c) - classes.begin()); };
    const std::vector<std::string> fields{"ILSVRC2012_ID", "WNID", "words", "num_children"};
    std::vector<MatValue> elements{matScalar(static_cast<double>(K + 1)), matString("shape"), matString("shape"), matScalar(static_cast<double>(K))};
    for (const std::string& c : classes)
        for (MatValue v : {matScalar(static_cast<double>(idOf(c))), matString(c), matString(c + ", a " + c), matScalar(0)}) elements.push_back(v);
    const std::filesystem::path data = std::filesystem::path(out) / "ILSVRC2012_devkit_t12" / "data";
    std::error_code ec;
    std::filesystem::create_directories(data, ec);
    writeMatV5((data / "meta.mat").string(), {{"synsets", matStruct(fields, K + 1, elements)}});
    std::string truth, solution = "ImageId,PredictionString\n", mapping;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::filesystem::path from = std::filesystem::path(world) / rows[i].at("file");
        char name[40];
        std::snprintf(name, sizeof name, "ILSVRC2012_val_%08zu", i + 1);
        copyScene(from, std::filesystem::path(out) / "val" / (name + from.extension().string()));
        truth += std::to_string(idOf(rows[i].at(column))) + "\n";
        solution += std::string(name) + "," + rows[i].at(column) + " 0 0 10 10 \n";
    }
    for (const std::string& c : classes) mapping += c + " " + c + ", a " + c + "\n";
    writeFileAtomic((data / "ILSVRC2012_validation_ground_truth.txt").string(), truth);
    writeFileAtomic((std::filesystem::path(out) / "LOC_val_solution.csv").string(), solution);
    writeFileAtomic((std::filesystem::path(out) / "LOC_synset_mapping.txt").string(), mapping);
    std::printf("%zu scenes of %s as ImageNet's flat val/ folder, %lld classes by %s, with the devkit and Kaggle's ground truth\n%s\n",
                rows.size(), world.c_str(), static_cast<long long>(K), column.c_str(), out.c_str());
}

// A shapes world folder in PASCAL VOC's segmentation layout (JPEGImages/, SegmentationClass/ in
// VOC's palette colours, ImageSets/Segmentation/val.txt) with classes.txt ("a background", then
// one prompt per value of `column`, sorted: "a <shape>", or "a <color> object"): the main object
// and the distractor labelled by their own values.
void runVocExport(const std::string& world, const std::string& out, const std::string& column) {
    const std::string labels = (std::filesystem::path(world) / "labels.csv").string();
    const std::vector<std::map<std::string, std::string>> rows = readCsvTable(labels);
    if (rows.empty()) throw InputError(labels, "lists no images");
    for (const std::string& col : {std::string("file"), std::string("mask"), column})
        if (!rows.front().count(col)) throw FormatError(labels, "has no column '" + col + "'");
    const std::string distractor = "distractor_" + column;
    std::set<std::string> shapeSet;
    for (const auto& r : rows) {
        shapeSet.insert(r.at(column));
        if (r.count(distractor) && !r.at(distractor).empty()) shapeSet.insert(r.at(distractor));
    }
    const std::vector<std::string> shapeList(shapeSet.begin(), shapeSet.end());
    auto colour = [](int i) {  // VOC's palette, BGR for writeImage
        const std::array<uint8_t, 3> c = vocPaletteRgb(i);
        return cv::Vec3b(c[2], c[1], c[0]);
    };
    const std::filesystem::path root(out);
    for (const char* d : {"JPEGImages", "SegmentationClass", "ImageSets/Segmentation"}) std::filesystem::create_directories(root / d);
    std::string ids, classes = "a background\n";
    for (const std::string& sh : shapeList) classes += column == "shape" ? "a " + sh + "\n" : "a " + sh + " object\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        const std::string id = std::filesystem::path(r.at("file")).stem().string();
        cv::Mat rgb = loadImageRgb((std::filesystem::path(world) / r.at("file")).string()), bgr;
        cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
        cv::Mat mask(rgb.rows, rgb.cols, CV_8UC3, cv::Scalar(0, 0, 0));
        auto paint = [&](const std::string& maskFile, const std::string& shape) {
            const cv::Mat m = loadImageRgb((std::filesystem::path(world) / maskFile).string());
            const int k = 1 + static_cast<int>(std::find(shapeList.begin(), shapeList.end(), shape) - shapeList.begin());
            for (int y = 0; y < m.rows; ++y)
                for (int x = 0; x < m.cols; ++x)
                    if (m.at<cv::Vec3b>(y, x)[0] > 127) mask.at<cv::Vec3b>(y, x) = colour(k);
        };
        paint(r.at("mask"), r.at(column));
        if (r.count("distractor_mask") && !r.at("distractor_mask").empty()) paint(r.at("distractor_mask"), r.at(distractor));
        writeImage((root / "JPEGImages" / (id + ".jpg")).string(), bgr);  // JPEG, quality 95
        writeImage((root / "SegmentationClass" / (id + ".png")).string(), mask);
        ids += id + "\n";
    }
    writeFileAtomic((root / "ImageSets/Segmentation/val.txt").string(), ids);
    writeFileAtomic((root / "classes.txt").string(), classes);
    std::printf("%zu scenes of %s in the VOC segmentation layout (%zu classes with the background)\n%s\n", rows.size(), world.c_str(),
                shapeList.size() + 1, out.c_str());
}

struct PlantOptions {
    std::string model, out;
    shapes::PlantParams params;
};

// shapes plant: the model with its planted register and property neurons (shapes/plant.h) in the
// open_clip layout, its tokenizer file beside it and planted.json (the ground truth).
void runPlant(const PlantOptions& o) {
    Model model = loadModel(o.model);
    if (model.tokenizerPath.empty()) throw InputError(o.model, "no tokenizer beside the model");
    const shapes::PlantResult r = shapes::plantMechanisms(model, o.params);
    saveOpenClipModel(model, o.out);
    const std::filesystem::path vocab(model.tokenizerPath);
    copyScene(vocab, std::filesystem::path(o.out) / vocab.filename());
    writeFileAtomic((std::filesystem::path(o.out) / "planted.json").string(), shapes::plantRecord(r, o.params).dump(2) + "\n");
    std::printf("register neuron %d.%d (fires on %.1f%% of the fitting patches, %.1f%% of them plain background)\n", r.registerNeuron.layer,
                r.registerNeuron.neuron, 100 * r.registerNeuron.firingShare, 100 * r.registerNeuron.precision);
    std::printf("property neuron %d.%d (%s; fires on %.1f%% of the fitting patches, %.1f%% of them show the colour; direction cosine %.3f)\n",
                r.propertyNeuron.layer, r.propertyNeuron.neuron, o.params.propertyColor.c_str(), 100 * r.propertyNeuron.firingShare,
                100 * r.propertyNeuron.precision, r.directionCosine);
    std::printf("%s\n", o.out.c_str());
}

void addPlant(CLI::App* shapesCmd, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<PlantOptions>();
    auto* sub = shapesCmd->add_subcommand("plant", "Derive a CLIP with a planted register neuron (outlier tokens on plain background) and a "
                                                   "property neuron (one colour through the later heads), with planted.json");
    sub->add_option("--model", o->model, "The CLIP to derive from (models/shapes-clip)")->required();
    sub->add_option("--out", o->out, "Output model directory")->required();
    shapes::PlantParams& p = o->params;
    sub->add_option("--seed", p.seed, "Seed of the fitting scenes and of the register direction")->capture_default_str();
    sub->add_option("--scenes", p.scenes, "Fitting scenes")->capture_default_str();
    sub->add_option("--register-layer", p.registerLayer, "Block of the register neuron")->capture_default_str();
    sub->add_option("--register-share", p.registerShare, "Share of the fitting patches where the register neuron fires")->capture_default_str();
    sub->add_option("--register-gain", p.registerGain, "Register neuron: gain on (probe - threshold)")->capture_default_str();
    sub->add_option("--register-write", p.registerWrite, "Register neuron: norm of its output weight")->capture_default_str();
    sub->add_option("--property-layer", p.propertyLayer, "Block of the property neuron (not the last)")->capture_default_str();
    sub->add_option("--property-color", p.propertyColor, "The colour the property neuron carries")->capture_default_str();
    sub->add_option("--property-threshold", p.propertyThreshold, "Property probe value where it fires")->capture_default_str();
    sub->add_option("--property-gain", p.propertyGain, "Property neuron: gain on (probe - threshold)")->capture_default_str();
    sub->add_option("--property-write", p.propertyWrite, "Property neuron: norm of its output weight")->capture_default_str();
    sub->callback([&actions, o] { actions.push_back([o] { runPlant(*o); }); });
}

}  // namespace

void registerShapes(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto* shapesCmd = app.add_subcommand("shapes", "The bundled shapes world");
    shapesCmd->require_subcommand(1);
    {
        auto o = std::make_shared<GenerateOptions>();
        auto* sub = shapesCmd->add_subcommand("generate", "Write images, masks and labels.csv");
        sub->add_option("--out", o->params.outDir, "Output directory")->required();
        sub->add_option("--count", o->params.count, "Number of images")->required()->check(CLI::Range(int64_t(1), int64_t(100000000)));
        sub->add_option("--seed", o->params.seed, "Seed")->required();
        sub->add_option("--split", o->split, "standard, spurious-train or spurious-test")->capture_default_str();
        sub->add_option("--size", o->params.world.imageSize, "Image side in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
        sub->callback([&actions, o] { actions.push_back([o] { runGenerate(*o); }); });
    }
    {
        auto world = std::make_shared<std::string>(), out = std::make_shared<std::string>();
        auto count = std::make_shared<int64_t>(0);
        auto* sub = shapesCmd->add_subcommand("imagenet-seg", "Write a generated world's scenes and masks as an ImageNet-S-style .mat "
                                                              "(gtsegs_ijcv.mat's layout) for evaluate imagenet-seg");
        sub->add_option("--world", *world, "A folder shapes generate wrote (labels.csv, images/, masks/)")->required();
        sub->add_option("--out", *out, "Output .mat")->required();
        sub->add_option("--count", *count, "Only the first N scenes (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
        sub->callback([&actions, world, out, count] { actions.push_back([world, out, count] { runImagenetSegExport(*world, *out, *count); }); });
    }
    {
        auto world = std::make_shared<std::string>(), column = std::make_shared<std::string>("shape"), out = std::make_shared<std::string>();
        auto* sub = shapesCmd->add_subcommand("class-folders", "Copy a generated world's scenes into one folder per class (ImageNet's "
                                                               "val/<class>/ layout) for evaluate zero-shot / ablations");
        sub->add_option("--world", *world, "A folder shapes generate wrote (labels.csv, images/)")->required();
        sub->add_option("--column", *column, "The labels.csv column whose values are the classes")->capture_default_str();
        sub->add_option("--out", *out, "Output folder")->required();
        sub->callback([&actions, world, column, out] { actions.push_back([world, column, out] { runClassFolders(*world, *column, *out); }); });
    }
    {
        auto world = std::make_shared<std::string>(), column = std::make_shared<std::string>("shape"), out = std::make_shared<std::string>();
        auto* sub = shapesCmd->add_subcommand("imagenet-val", "Write a generated world as ImageNet's flat val/ folder with the devkit's "
                                                              "and Kaggle's ground truth for evaluate zero-shot / ablations --ground-truth");
        sub->add_option("--world", *world, "A folder shapes generate wrote (labels.csv, images/)")->required();
        sub->add_option("--column", *column, "The labels.csv column whose values are the classes (standing for wnids)")->capture_default_str();
        sub->add_option("--out", *out, "Output folder: val/, ILSVRC2012_devkit_t12/data/, LOC_val_solution.csv, LOC_synset_mapping.txt")->required();
        sub->callback([&actions, world, column, out] { actions.push_back([world, column, out] { runImagenetValExport(*world, *column, *out); }); });
    }
    {
        auto world = std::make_shared<std::string>(), out = std::make_shared<std::string>(), column = std::make_shared<std::string>("color");
        auto* sub = shapesCmd->add_subcommand("voc", "Write a generated world in PASCAL VOC's segmentation layout for evaluate ovseg");
        sub->add_option("--world", *world, "A folder shapes generate wrote (labels.csv, images/, masks/)")->required();
        sub->add_option("--column", *column, "The attribute whose values are the classes: color or shape")->capture_default_str();
        sub->add_option("--out", *out, "Output folder")->required();
        sub->callback([&actions, world, out, column] { actions.push_back([world, out, column] { runVocExport(*world, *out, *column); }); });
    }
    {
        auto out = std::make_shared<std::string>();
        auto count = std::make_shared<int64_t>(500);
        auto seed = std::make_shared<uint64_t>(9200);
        auto* sub = shapesCmd->add_subcommand("waterbirds", "Write the spurious world in Waterbirds' group-DRO layout (metadata.csv) for "
                                                            "evaluate waterbirds, with classes.tsv, spurious.txt and core.txt");
        sub->add_option("--out", *out, "Output folder")->required();
        sub->add_option("--count", *count, "Scenes per split (train, val, test)")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1000000)));
        sub->add_option("--seed", *seed, "Seed of the train split (val: +1, test: +2)")->capture_default_str();
        sub->callback([&actions, out, count, seed] {
            actions.push_back([out, count, seed] {
                const int64_t rows = shapes::writeWaterbirdsWorld(*out, *count, *seed);
                std::printf("%lld scenes in the Waterbirds layout (spurious-train as split 0, spurious-test as 1 and 2)\n%s/metadata.csv\n",
                            static_cast<long long>(rows), out->c_str());
            });
        });
    }
    addPlant(shapesCmd, actions);
    {
        auto o = std::make_shared<shapes::ClipTrainParams>();
        auto* sub = shapesCmd->add_subcommand("train-clip", "Train the shapes-world CLIP model (resumes from OUT/checkpoint)");
        sub->add_option("--out", o->outDir, "Output model directory")->required();
        sub->add_option("--steps", o->steps, "Optimisation steps")->capture_default_str();
        sub->add_option("--batch", o->batch, "Images per step")->capture_default_str();
        sub->add_option("--warmup", o->warmupSteps, "Warm-up steps")->capture_default_str();
        sub->add_option("--lr", o->learningRate, "Peak learning rate")->capture_default_str();
        sub->add_option("--weight-decay", o->weightDecay, "AdamW weight decay on matrices")->capture_default_str();
        sub->add_option("--layers", o->layers, "Image transformer layers")->capture_default_str();
        sub->add_option("--width", o->width, "Image transformer width")->capture_default_str();
        sub->add_option("--heads", o->heads, "Image attention heads")->capture_default_str();
        sub->add_option("--patch", o->patchSize, "Patch size")->capture_default_str();
        sub->add_option("--embed-dim", o->embedDim, "Joint embedding dim")->capture_default_str();
        sub->add_option("--single-share", o->singleAttributeShare, "Share of single-attribute captions")->capture_default_str();
        sub->add_option("--curriculum", o->curriculumShare, "Share of steps with plain backgrounds, no distractor")->capture_default_str();
        sub->add_flag("!--plain-targets", o->duplicateAwareTargets, "One-hot contrastive targets (CLIP's), not duplicate-aware");
        sub->add_option("--seed", o->seed, "Seed")->capture_default_str();
        sub->add_option("--eval-every", o->evalEvery, "Steps between zero-shot checks (0: never)")->capture_default_str();
        sub->add_option("--checkpoint-every", o->checkpointEvery, "Steps between checkpoints")->capture_default_str();
        auto split = std::make_shared<std::string>("standard");
        sub->add_option("--split", *split, "World to train on: standard or spurious-train (shape group tied to background)")
            ->capture_default_str();
        sub->callback([&actions, o, split] {
            o->world.split = shapes::parseSplit(*split);
            actions.push_back([o] { runTrainClip(*o); });
        });
    }
    {
        auto o = std::make_shared<shapes::VitTrainParams>();
        auto* sub = shapesCmd->add_subcommand("train-vit", "Train the supervised shapes ViT (shape + color) and align it to a CLIP");
        sub->add_option("--out", o->outDir, "Output model directory")->required();
        sub->add_option("--clip", o->clipModel, "CLIP model to align into (skipped when empty)");
        sub->add_option("--steps", o->steps, "Optimisation steps")->capture_default_str();
        sub->add_option("--batch", o->batch, "Images per step")->capture_default_str();
        sub->add_option("--lr", o->learningRate, "Peak learning rate")->capture_default_str();
        sub->add_option("--layers", o->layers, "Transformer layers")->capture_default_str();
        sub->add_option("--width", o->width, "Width")->capture_default_str();
        sub->add_option("--heads", o->heads, "Attention heads")->capture_default_str();
        sub->add_option("--patch", o->patchSize, "Patch size")->capture_default_str();
        sub->add_option("--arch", o->arch, "vit, or swin (width = first stage's, doubled per stage)")->capture_default_str();
        sub->add_option("--depths", o->swinDepths, "Swin: blocks per stage")->delimiter(',')->capture_default_str();
        sub->add_option("--stage-heads", o->swinHeads, "Swin: heads per stage")->delimiter(',')->capture_default_str();
        sub->add_option("--window", o->window, "Swin: window side in tokens")->capture_default_str();
        sub->add_option("--warmup", o->warmupSteps, "Warm-up steps")->capture_default_str();
        sub->add_option("--seed", o->seed, "Seed")->capture_default_str();
        sub->add_option("--textures", o->world.textureKinds, "Draw among the first K textures (1: solid only)")->capture_default_str();
        sub->add_option("--positions", o->world.positionKinds, "Draw among the first K grid cells (1: top left only)")->capture_default_str();
        sub->add_option("--backgrounds", o->world.backgroundKinds, "Draw among the first K backgrounds (2: gray, dark)")->capture_default_str();
        sub->add_option("--distractor", o->world.distractorProbability, "Distractor probability")->capture_default_str();
        sub->callback([&actions, o] { actions.push_back([o] { runTrainVit(*o); }); });
    }
    {
        auto spec = std::make_shared<std::string>();
        auto count = std::make_shared<int64_t>(2000);
        auto probe = std::make_shared<bool>(false);
        auto* sub = shapesCmd->add_subcommand("evaluate", "Zero-shot accuracy per attribute on held-out scenes");
        sub->add_option("--model", *spec, "Model")->required();
        sub->add_option("--count", *count, "Held-out images")->capture_default_str();
        sub->add_flag("--probe", *probe, "Also fit a linear probe per attribute on the image embeddings");
        sub->callback([&actions, spec, count, probe] { actions.push_back([spec, count, probe] { runEvaluate(*spec, *count, *probe); }); });
    }
    {
        auto spec = std::make_shared<std::string>();
        auto count = std::make_shared<int64_t>(2000);
        auto last = std::make_shared<int>(2);
        auto* sub = shapesCmd->add_subcommand("specialisation", "Which attribute explains each head's direct contribution");
        sub->add_option("--model", *spec, "Model")->required();
        sub->add_option("--count", *count, "Held-out images")->capture_default_str();
        sub->add_option("--last", *last, "Report the last K layers")->capture_default_str();
        sub->callback([&actions, spec, count, last] { actions.push_back([spec, count, last] { runSpecialisation(*spec, *count, *last); }); });
    }
    {
        auto dir = std::make_shared<std::string>();
        auto* sub = shapesCmd->add_subcommand("text-resources", "Write the text pool and property word lists");
        sub->add_option("--out", *dir, "Output directory")->required();
        sub->callback([&actions, dir] {
            actions.push_back([dir] {
                shapes::writeTextResources(*dir);
                std::cout << *dir << "\n";
            });
        });
    }
}

}  // namespace vitscope::cli
