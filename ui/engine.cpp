#include "engine.h"

#include "error.h"

#include <spdlog/spdlog.h>

#include <QMetaObject>

#include <chrono>

namespace vitscope::ui {

Engine::Engine(const QString& cacheRoot, QObject* parent) : QObject(parent) {
    m_thread.setObjectName("vitscope-worker");
    m_worker = new Worker(cacheRoot);
    m_worker->moveToThread(&m_thread);
    connect(&m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &Worker::started, this, [this](quint64 id, const QString& kind) {
        if (isLatest(id, kind)) emit started(id, kind);
    });
    connect(m_worker, &Worker::progress, this, &Engine::progress);
    connect(m_worker, &Worker::done, this, &Engine::onDone);
    m_thread.start();
}

Engine::~Engine() {
    cancelAll();
    m_thread.quit();
    m_thread.wait();  // shutdown only: the running job stops at its next cancellation check
}

quint64 Engine::submit(const QString& kind, Task task) {
    Worker::Job job;
    job.id = m_nextId++;
    job.kind = kind;
    job.task = std::move(task);
    job.cancel = std::make_shared<std::atomic<bool>>(false);
    m_latest[kind] = job.id;
    for (quint64 droppedId : m_worker->enqueue(job)) emit dropped(droppedId, kind);
    QMetaObject::invokeMethod(m_worker, &Worker::runNext, Qt::QueuedConnection);
    return job.id;
}

void Engine::cancel(quint64 id) { m_worker->cancel(id); }
void Engine::cancelAll() { m_worker->cancelAll(); }

void Engine::onDone(quint64 id, const QString& kind, int status, const QVariant& result, const QString& message) {
    if (!isLatest(id, kind)) {
        emit dropped(id, kind);
        return;
    }
    if (status == JobOk) emit finished(id, kind, result);
    else if (status == JobWasCancelled) emit cancelled(id, kind);
    else emit failed(id, kind, message);
}

Worker::Worker(const QString& cacheRoot) : m_explorer(std::make_unique<Explorer>(cacheRoot.toStdString())) {}
Worker::~Worker() = default;

std::vector<quint64> Worker::enqueue(Job job) {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::vector<quint64> dropped;
    for (auto it = m_queue.begin(); it != m_queue.end();) {
        if (it->kind == job.kind) {
            dropped.push_back(it->id);
            it = m_queue.erase(it);
        } else {
            ++it;
        }
    }
    m_queue.push_back(std::move(job));
    return dropped;
}

void Worker::cancel(quint64 id) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_current && m_currentId == id) m_current->store(true);
    for (Job& j : m_queue)
        if (j.id == id) j.cancel->store(true);
}

void Worker::cancelAll() {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_current) m_current->store(true);
    for (Job& j : m_queue) j.cancel->store(true);
}

void Worker::runNext() {
    Job job;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_queue.empty()) return;
        job = std::move(m_queue.front());
        m_queue.pop_front();
        m_current = job.cancel;
        m_currentId = job.id;
    }
    if (job.cancel->load()) {
        emit done(job.id, job.kind, JobWasCancelled, {}, {});
    } else {
        emit started(job.id, job.kind);
        JobContext ctx;
        ctx.cancel = job.cancel.get();
        auto last = std::make_shared<std::chrono::steady_clock::time_point>();
        const quint64 id = job.id;
        const QString kind = job.kind;
        ctx.progress = [this, id, kind, last](const JobProgress& p) {
            const auto now = std::chrono::steady_clock::now();
            if (p.done < p.total && now - *last < std::chrono::milliseconds(100)) return;  // ~10 Hz
            *last = now;
            emit progress(id, kind, QString::fromStdString(p.stage), p.done, p.total, p.perSecond, p.etaSeconds);
        };
        // The one place that catches: every failure becomes a message.
        try {
            const QVariant result = job.task(*m_explorer, ctx);
            emit done(job.id, job.kind, JobOk, result, {});
        } catch (const JobCancelled&) {
            emit done(job.id, job.kind, JobWasCancelled, {}, {});
        } catch (const std::exception& e) {
            QString msg = QString::fromStdString(e.what()).split('\n').first().trimmed();
            // The window reports the failure (once, in words); here only for debugging.
            spdlog::debug("job {} failed: {}", job.kind.toStdString(), msg.toStdString());
            emit done(job.id, job.kind, JobFailed, {}, msg);
        }
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    m_current.reset();
    m_currentId = 0;
}

}  // namespace vitscope::ui
