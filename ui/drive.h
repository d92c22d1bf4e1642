#pragma once
// Driving the application from code (GUI tests, the latency benchmark, the screenshot tool):
// synthetic file drops, and waiting for a signal or for the session to reach a state while the
// event loop runs.
#include "session.h"

#include <QCoreApplication>
#include <QDropEvent>
#include <QEventLoop>
#include <QMimeData>
#include <QTimer>
#include <QUrl>
#include <QWidget>

#include <functional>

namespace vitscope::ui {

// A drag that enters `target` and drops `path` on it, as a file manager's drag does.
inline void dropFile(QWidget* target, const QString& path) {
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(path)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(target, &enter);
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(target, &drop);
}

// Runs the event loop until `sender` emits `signal` or `ms` pass; false on timeout.
template <typename Sender, typename Signal>
bool waitForSignal(Sender* sender, Signal signal, int ms) {
    QEventLoop loop;
    bool fired = false;
    auto c = QObject::connect(sender, signal, &loop, [&] {
        fired = true;
        loop.quit();
    });
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
    QObject::disconnect(c);
    return fired;
}

// Runs the event loop for `ms`.
inline void settle(int ms) {
    QEventLoop loop;
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
}

// Runs the event loop until `done()` holds, checking it now and whenever the session changes;
// false when `ms` pass first.
inline bool waitUntil(Session& session, const std::function<bool()>& done, int ms) {
    if (done()) return true;
    QEventLoop loop;
    bool ok = false;
    auto c = QObject::connect(&session, &Session::changed, &loop, [&] {
        if (!ok && done()) {
            ok = true;
            loop.quit();
        }
    });
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
    QObject::disconnect(c);
    return ok;
}

}  // namespace vitscope::ui
