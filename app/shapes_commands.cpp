#include "shapes_commands.h"

#include "shapes/dataset.h"

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
