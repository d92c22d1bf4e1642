#pragma once
// The GUI's only way to the model: one worker thread that owns the Explorer (model, device, image
// decomposition, caches) and runs typed jobs (jobs.h).
//
//   JobHandle h = engine.run(LedgerJob{text}, this,
//                            [this](Ledger g) { ... },                 // on the receiver's thread
//                            [this](const JobFailure& f) { ... });    // failed or cancelled
//
// A waiting job of the same struct is replaced by a newer one (coalescing), and a result older
// than the latest request of its struct is dropped before any callback runs. Callbacks run on the
// receiver's thread, never after the receiver is gone. Long jobs report progress (throttled to
// ~10 Hz) to their progress callback and can be cancelled between batches through their handle.
#include "explore/explorer.h"

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QThread>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <typeindex>
#include <unordered_map>

namespace vitscope::ui {

struct JobHandle {
    quint64 id = 0;
    explicit operator bool() const { return id != 0; }
    bool operator==(const JobHandle& o) const { return id == o.id; }
};

struct JobFailure {
    QString message;  // one line; empty when cancelled
    bool cancelled = false;
};

class Worker;

class Engine : public QObject {
    Q_OBJECT
public:
    using Progress = std::function<void(const JobProgress&)>;
    // `cacheRoot`: where dataset caches are built (one folder per model and image folder).
    explicit Engine(const QString& cacheRoot, QObject* parent = nullptr);
    ~Engine() override;  // cancels every job and joins the thread

    template <class J>
    JobHandle run(J job, QObject* receiver, std::function<void(typename J::Result)> onDone,
                  std::function<void(const JobFailure&)> onFailed = {}, Progress onProgress = {}) {
        Completion c;
        c.receiver = receiver;
        c.label = QString::fromUtf8(J::kLabel);
        c.done = [onDone = std::move(onDone)](const std::shared_ptr<void>& r) {
            if (onDone) onDone(std::move(*static_cast<typename J::Result*>(r.get())));
        };
        c.failed = std::move(onFailed);
        c.progress = std::move(onProgress);
        Work work = [job = std::move(job)](Explorer& x, const JobContext& ctx) -> std::shared_ptr<void> {
            return std::make_shared<typename J::Result>(job.run(x, ctx));
        };
        return submit(std::type_index(typeid(J)), std::move(work), std::move(c));
    }
    void cancel(JobHandle h);
    void cancelAll();
    bool isRunning(JobHandle h) const { return m_pending.contains(h.id); }
    bool idle() const { return m_pending.isEmpty(); }  // no job waiting, running or with a result on its way
    template <class J>
    bool isLatest(JobHandle h) const {
        const auto it = m_latest.find(std::type_index(typeid(J)));
        return it != m_latest.end() && it->second == h.id;
    }

signals:
    // For the log: every job's start and end, in words.
    void started(quint64 id, const QString& label);
    void ended(quint64 id, const QString& label, const QString& outcome);  // outcome: "done", "cancelled", the error

private:
    friend class Worker;
    using Work = std::function<std::shared_ptr<void>(Explorer&, const JobContext&)>;
    struct Completion {
        QPointer<QObject> receiver;
        QString label;
        std::function<void(const std::shared_ptr<void>&)> done;
        std::function<void(const JobFailure&)> failed;
        Progress progress;
        std::type_index key = std::type_index(typeid(void));
    };
    JobHandle submit(std::type_index key, Work work, Completion completion);
    // From the worker, queued onto this thread.
    void onStarted(quint64 id);
    void onProgress(quint64 id, const JobProgress& p);
    void onDone(quint64 id, int status, const std::shared_ptr<void>& result, const QString& message);
    void onDropped(quint64 id);

    QThread m_thread;
    Worker* m_worker = nullptr;
    QHash<quint64, Completion> m_pending;
    std::unordered_map<std::type_index, quint64> m_latest;
    quint64 m_nextId = 1;
};

// Lives on the engine's thread; owns the Explorer.
class Worker : public QObject {
    Q_OBJECT
public:
    struct Job {
        quint64 id = 0;
        std::type_index key = std::type_index(typeid(void));
        Engine::Work work;
        std::shared_ptr<std::atomic<bool>> cancel;
    };
    Worker(const QString& cacheRoot, Engine* engine);
    ~Worker() override;

    // Thread-safe: called from the GUI thread.
    std::vector<quint64> enqueue(Job job);  // returns ids of coalesced (dropped) jobs
    void cancel(quint64 id);
    void cancelAll();
    void runNext();

private:
    std::unique_ptr<Explorer> m_explorer;
    Engine* m_engine;
    std::mutex m_mutex;
    std::deque<Job> m_queue;
    std::shared_ptr<std::atomic<bool>> m_current;
    quint64 m_currentId = 0;
};

}  // namespace vitscope::ui
