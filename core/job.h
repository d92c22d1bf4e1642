#pragma once
// What a long job receives besides its inputs: a cancel flag checked between batches and a
// progress sink. The GUI's worker and the CLI fill it; core never sleeps or prints on its own.
#include <atomic>
#include <chrono>
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

// A report's rate and ETA where the job gave none (perSecond 0): measured from the first report of
// its stage (another stage, or the count going back, starts the measurement again). Until a second
// report of the stage has moved on, the rate stays 0: unknown, not "0 per second" (say nothing).
class ProgressRate {
public:
    using Clock = std::chrono::steady_clock;
    JobProgress fill(JobProgress p, Clock::time_point now) {
        if (m_done < 0 || p.done < m_done || p.stage != m_stage) {
            m_when = now;
            m_done = p.done;
            m_stage = p.stage;
        }
        if (p.perSecond > 0) return p;
        const double seconds = std::chrono::duration<double>(now - m_when).count();
        if (seconds <= 0 || p.done <= m_done) return p;
        p.perSecond = static_cast<double>(p.done - m_done) / seconds;
        p.etaSeconds = static_cast<double>(p.total - p.done) / p.perSecond;
        return p;
    }

private:
    Clock::time_point m_when;
    int64_t m_done = -1;
    std::string m_stage;
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
