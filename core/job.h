#pragma once
// What a long job receives besides its inputs: a cancel flag checked between batches and a
// progress sink. The GUI's worker and the CLI fill it; core never sleeps or prints on its own.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace vitscope {

struct JobProgress {
    int64_t done = 0;
    int64_t total = 0;
    double perSecond = 0;  // items per second since the job (or its resumption) started
    double etaSeconds = 0;
    std::string stage;  // the phase in words, as the status bar shows it ("caching images")
};

struct JobContext {
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(const JobProgress&)> progress;

    bool cancelled() const { return cancel && cancel->load(); }
    void report(const JobProgress& p) const {
        if (progress) progress(p);
    }
    // The same job with its progress reported under `stage` ("caching the reference split"):
    // a job of several phases names each, so a bar starting over says why.
    JobContext staged(const std::string& stage) const {
        JobContext c = *this;
        if (progress)
            c.progress = [inner = progress, stage](const JobProgress& p) {
                JobProgress named = p;
                named.stage = stage;
                inner(named);
            };
        return c;
    }
};

}  // namespace vitscope
