#include "engine.h"

#include "error.h"

#include <spdlog/spdlog.h>

#include <QMetaObject>

#include <chrono>

namespace vitscope::ui {

namespace {
enum Status { Ok, Failed, Cancelled };
}

Engine::Engine(const QString& cacheRoot, QObject* parent) : QObject(parent) {
    m_thread.setObjectName("vitscope-worker");
    m_worker = new Worker(cacheRoot, this);
    m_worker->moveToThread(&m_thread);
    connect(&m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    m_thread.start();
}

Engine::~Engine() {
    cancelAll();
    m_thread.quit();
    m_thread.wait();  // shutdown only: the running job stops at its next cancellation check
}

JobHandle Engine::submit(std::type_index key, Work work, Completion completion) {
    Worker::Job job;
    job.id = m_nextId++;
    job.key = key;
    job.work = std::move(work);
    job.cancel = std::make_shared<std::atomic<bool>>(false);
    completion.key = key;
    m_latest[key] = job.id;
    m_pending.insert(job.id, std::move(completion));
    for (quint64 dropped : m_worker->enqueue(std::move(job))) onDropped(dropped);
    QMetaObject::invokeMethod(m_worker, [w = m_worker] { w->runNext(); }, Qt::QueuedConnection);
    return {m_nextId - 1};
}

void Engine::cancel(JobHandle h) {
    if (h) m_worker->cancel(h.id);
}

void Engine::cancelAll() { m_worker->cancelAll(); }

void Engine::onStarted(quint64 id) {
    if (const auto it = m_pending.constFind(id); it != m_pending.constEnd()) emit started(id, it->label);
}

void Engine::onProgress(quint64 id, const JobProgress& p) {
    const auto it = m_pending.constFind(id);
    if (it != m_pending.constEnd() && it->receiver && it->progress) it->progress(p);
}

void Engine::onDropped(quint64 id) { m_pending.remove(id); }

void Engine::onDone(quint64 id, int status, const std::shared_ptr<void>& result, const QString& message) {
    const Completion c = m_pending.take(id);
    if (!c.done && !c.failed) return;  // dropped meanwhile
    emit ended(id, c.label, status == Ok ? QStringLiteral("done") : status == Cancelled ? QStringLiteral("cancelled") : message);
    const auto latest = m_latest.find(c.key);
    if (latest == m_latest.end() || latest->second != id || !c.receiver) return;  // stale, or nobody to tell
    if (status == Ok) c.done(result);
    else if (c.failed) c.failed({message, status == Cancelled});
}

Worker::Worker(const QString& cacheRoot, Engine* engine)
    : m_explorer(std::make_unique<Explorer>(cacheRoot.toStdString())), m_engine(engine) {}
Worker::~Worker() = default;

std::vector<quint64> Worker::enqueue(Job job) {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::vector<quint64> dropped;
    for (auto it = m_queue.begin(); it != m_queue.end();) {
        if (it->key == job.key) {
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
    Engine* engine = m_engine;
    const quint64 id = job.id;
    auto finish = [engine, id](int status, std::shared_ptr<void> result, QString message) {
        QMetaObject::invokeMethod(
            engine, [engine, id, status, result = std::move(result), message] { engine->onDone(id, status, result, message); },
            Qt::QueuedConnection);
    };
    if (job.cancel->load()) {
        finish(Cancelled, {}, {});
    } else {
        QMetaObject::invokeMethod(engine, [engine, id] { engine->onStarted(id); }, Qt::QueuedConnection);
        JobContext ctx;
        ctx.cancel = job.cancel.get();
        auto last = std::make_shared<std::chrono::steady_clock::time_point>();
        ctx.progress = [engine, id, last](const JobProgress& p) {
            const auto now = std::chrono::steady_clock::now();
            if (p.done < p.total && now - *last < std::chrono::milliseconds(100)) return;  // ~10 Hz
            *last = now;
            QMetaObject::invokeMethod(engine, [engine, id, p] { engine->onProgress(id, p); }, Qt::QueuedConnection);
        };
        // The one place that catches: every failure becomes a one-line message.
        try {
            finish(Ok, job.work(*m_explorer, ctx), {});
        } catch (const JobCancelled&) {
            finish(Cancelled, {}, {});
        } catch (const std::exception& e) {
            const QString msg = QString::fromStdString(e.what()).split('\n').first().trimmed();
            spdlog::debug("job {} failed: {}", id, msg.toStdString());
            finish(Failed, {}, msg);
        }
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    m_current.reset();
    m_currentId = 0;
}

}  // namespace vitscope::ui
