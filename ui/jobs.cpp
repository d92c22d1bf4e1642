#include "jobs.h"

#include "error.h"

namespace vitscope::ui {

namespace {

Explorer& partnerOf(Explorer& x) {
    Explorer* p = x.partner();
    if (!p) throw InputError("vitscope", "no model is open beside this one (compare the heads with one first)");
    return *p;
}

}  // namespace

PartnerAnswer PartnerViewJob::run(Explorer& x, const JobContext&) const {
    Explorer& p = partnerOf(x);
    PartnerAnswer out;
    if (analyse || !p.hasImage()) {
        p.setWholeImage(wholeImage);
        out.image = p.analyseImage(path);
    }
    if (mapped) out.map = p.heatmap(map);
    if (!map.text.empty()) out.ledger = p.ledger(map.text);
    return out;
}

PropertyScores PartnerPropertyJob::run(Explorer& x, const JobContext& job) const {
    Explorer& p = partnerOf(x);
    return {property, componentGrid(p.model(), p.propertyScores(property, job))};
}

RetrievalResult PartnerRetrieveJob::run(Explorer& x, const JobContext& job) const { return query.run(partnerOf(x), job); }

SpuriousDemoLoaded SpuriousDemoJob::run(Explorer& x, const JobContext& job) const {
    ensureShapesWorld(demo.trainDir(), demo.scenesPerSplit, demo.trainSeed, "spurious-train", job.staged("1/4 making the train split"));
    ensureShapesWorld(demo.testDir(), demo.scenesPerSplit, demo.testSeed, "spurious-test", job.staged("2/4 making the test split"));
    shapes::writeSpuriousDemoClasses(demo);
    SpuriousDemoLoaded r;
    r.model = x.openModel(model, device);
    r.dataset = x.openDataset(demo.testDir() + "/images", job.staged("3/4 caching the test split"), convention);
    r.task.labels = demo.testDir() + "/labels.csv";
    r.task.labelColumn = demo.labelColumn;
    r.task.classes = demo.classesFile();
    std::string rest = demo.groupColumns;
    for (std::size_t comma; (comma = rest.find(',')) != std::string::npos; rest = rest.substr(comma + 1))
        r.task.groupColumns.push_back(rest.substr(0, comma));
    if (!rest.empty()) r.task.groupColumns.push_back(rest);
    r.task.referenceImages = demo.trainDir() + "/images";
    x.setAblationTask(r.task, job.staged("4/4 caching the train split (the means)"));
    r.outcome = x.ablate({});
    return r;
}

}  // namespace vitscope::ui
