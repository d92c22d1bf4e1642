#pragma once
// The GUI's only way to the model: one worker thread that owns the Explorer (model, device,
// image decomposition, caches). Requests are tasks tagged with a job id and a kind; results come
// back as queued signals carrying plain values. A newer request of a kind replaces an older one
// still waiting, and results of a kind older than its latest request are dropped. Long jobs
// report progress (throttled to ~10 Hz) and can be cancelled between batches.
#include "explore/explorer.h"

#include <QHash>
#include <QObject>
#include <QString>
#include <QThread>
#include <QVariant>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace vitscope::ui {

using Task = std::function<QVariant(Explorer&, const JobContext&)>;

class Worker;

class Engine : public QObject {
    Q_OBJECT
public:
    // `cacheRoot`: where dataset caches are built (one folder per model and image folder).
    explicit Engine(const QString& cacheRoot, QObject* parent = nullptr);
    ~Engine() override;  // cancels every job and joins the thread

    // Queues `task` under `kind`; a waiting task of the same kind is dropped (coalescing).
    quint64 submit(const QString& kind, Task task);
    void cancel(quint64 id);
    void cancelAll();
    bool isLatest(quint64 id, const QString& kind) const { return m_latest.value(kind) == id; }

signals:
    void started(quint64 id, const QString& kind);
    void progress(quint64 id, const QString& kind, const QString& stage, qint64 done, qint64 total, double perSecond, double etaSeconds);
    void finished(quint64 id, const QString& kind, const QVariant& result);
    void failed(quint64 id, const QString& kind, const QString& message);
    void cancelled(quint64 id, const QString& kind);
    void dropped(quint64 id, const QString& kind);  // a stale result or a coalesced request

private:
    void onDone(quint64 id, const QString& kind, int status, const QVariant& result, const QString& message);

    QThread m_thread;
    Worker* m_worker = nullptr;
    QHash<QString, quint64> m_latest;
    quint64 m_nextId = 1;
};

// Lives on the engine's thread; owns the Explorer.
class Worker : public QObject {
    Q_OBJECT
public:
    struct Job {
        quint64 id = 0;
        QString kind;
        Task task;
        std::shared_ptr<std::atomic<bool>> cancel;
    };
    explicit Worker(const QString& cacheRoot);
    ~Worker() override;

    // Thread-safe: called from the GUI thread.
    std::vector<quint64> enqueue(Job job);  // returns ids of coalesced (dropped) jobs
    void cancel(quint64 id);
    void cancelAll();

public slots:
    void runNext();

signals:
    void started(quint64 id, const QString& kind);
    void progress(quint64 id, const QString& kind, const QString& stage, qint64 done, qint64 total, double perSecond, double etaSeconds);
    void done(quint64 id, const QString& kind, int status, const QVariant& result, const QString& message);

private:
    std::unique_ptr<Explorer> m_explorer;
    std::mutex m_mutex;
    std::deque<Job> m_queue;
    std::shared_ptr<std::atomic<bool>> m_current;
    quint64 m_currentId = 0;
};

enum JobStatus { JobOk = 0, JobFailed = 1, JobWasCancelled = 2 };

}  // namespace vitscope::ui
