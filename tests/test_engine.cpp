// The GUI's engine alone: typed jobs complete on the receiver's thread with their own result type;
// a waiting job is replaced by a newer one of its struct, a result older than the latest request
// of its struct is dropped before any callback; cancellation, failures, progress; closing during a
// cache build keeps its finished chunks.
#include "engine.h"
#include "error.h"
#include "jobs.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <atomic>
#include <memory>
#include <thread>

using namespace vitscope;
using namespace vitscope::ui;

namespace {

// Holds the worker until `gate` opens, then answers `value`.
struct GateJob {
    static constexpr const char* kLabel = "waiting at the gate";
    using Result = int;
    std::atomic<bool>* gate = nullptr;
    int value = 0;
    Result run(Explorer&, const JobContext&) const {
        while (gate && !gate->load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return value;
    }
};

struct ValueJob {
    static constexpr const char* kLabel = "answering a value";
    using Result = std::string;
    int value = 0;
    Result run(Explorer&, const JobContext&) const { return "value " + std::to_string(value); }
};

// Reports progress every millisecond until cancelled.
struct CountingJob {
    static constexpr const char* kLabel = "counting";
    using Result = int;
    Result run(Explorer&, const JobContext& job) const {
        for (int i = 0; i < 100000; ++i) {
            if (job.cancelled()) throw JobCancelled();
            job.report({i, 100000, 0, 0, "counting"});
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return 100000;
    }
};

}  // namespace

class TestEngine : public QObject {
    Q_OBJECT
private slots:
    void waitingRequestsAreCoalescedByTheirStruct() {
        QTemporaryDir dir;
        Engine engine(dir.path());
        std::atomic<bool> release{false};
        QStringList answers;
        int gateAnswers = 0;
        engine.run(GateJob{&release, 1}, this, [&](int v) { gateAnswers += v; });
        // Three value requests queue behind the gate: the first two never run, the third answers;
        // a gate job's result type (int) and a value job's (string) come to their own callbacks.
        for (int i = 0; i < 3; ++i) engine.run(ValueJob{100 + i}, this, [&](std::string s) { answers << QString::fromStdString(s); });
        release = true;
        QTRY_COMPARE_WITH_TIMEOUT(answers.size(), 1, 10000);
        QCOMPARE(answers.front(), QString("value 102"));
        QCOMPARE(gateAnswers, 1);
        QTest::qWait(0);
        QCOMPARE(answers.size(), 1);
    }

    void aResultOlderThanTheLatestRequestIsDropped() {
        QTemporaryDir dir;
        Engine engine(dir.path());
        std::atomic<bool> go{false}, open{true};
        QSignalSpy started(&engine, &Engine::started);
        QSignalSpy ended(&engine, &Engine::ended);
        QList<int> answers;
        const JobHandle running = engine.run(GateJob{&go, 1}, this, [&](int v) { answers << v; });
        // Wait until it runs (a request still waiting would be coalesced instead, another path).
        QTRY_VERIFY_WITH_TIMEOUT(!started.isEmpty() && started.last().at(0).toULongLong() == running.id, 10000);
        const JobHandle newest = engine.run(GateJob{&open, 2}, this, [&](int v) { answers << v; });
        QVERIFY(!engine.isLatest<GateJob>(running));
        QVERIFY(engine.isLatest<GateJob>(newest));
        go = true;
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 2, 10000);
        QCOMPARE(answers, QList<int>{2});  // the first ran to its end, but a newer request had come
    }

    void callbacksNeverOutliveTheirReceiver() {
        QTemporaryDir dir;
        Engine engine(dir.path());
        std::atomic<bool> go{false};
        QSignalSpy ended(&engine, &Engine::ended);
        auto receiver = std::make_unique<QObject>();
        bool called = false;
        engine.run(GateJob{&go, 7}, receiver.get(), [&](int) { called = true; });
        receiver.reset();
        go = true;
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 1, 10000);
        QVERIFY(!called);
    }

    void cancellationFailuresAndProgress() {
        QTemporaryDir dir;
        Engine engine(dir.path());
        int progress = 0;
        JobFailure failure;
        bool failed = false, done = false;
        const JobHandle h = engine.run(
            CountingJob{}, this, [&](int) { done = true; },
            [&](const JobFailure& f) {
                failure = f;
                failed = true;
            },
            [&](const JobProgress& p) {
                ++progress;
                QCOMPARE(QString::fromStdString(p.stage), QString("counting"));
            });
        QVERIFY(engine.isRunning(h));
        QTRY_VERIFY_WITH_TIMEOUT(progress > 0, 10000);
        QElapsedTimer t;
        t.start();
        QTest::qWait(300);
        engine.cancel(h);
        QTRY_VERIFY_WITH_TIMEOUT(failed, 10000);
        QVERIFY(failure.cancelled);
        QVERIFY(!done);
        QVERIFY(!engine.isRunning(h));
        // Progress is throttled to about 10 Hz (the job reports about a thousand times a second).
        QVERIFY2(progress <= 2 + t.elapsed() / 50, qPrintable(QString("%1 reports in %2 ms").arg(progress).arg(t.elapsed())));
        // A failure becomes its one-line message.
        QString message;
        engine.run(AnalyseImageJob{"/nonexistent.png"}, this, [](ImageResult) {}, [&](const JobFailure& f) { message = f.message; });
        QTRY_VERIFY_WITH_TIMEOUT(!message.isEmpty(), 10000);
        QVERIFY2(message.contains("no model"), qPrintable(message));
    }

    void closingDuringACacheBuildKeepsFinishedChunks() {
        QTemporaryDir dir;
        const std::string world = (dir.path() + "/world").toStdString();
        ensureShapesWorld(world, 3000, 5, "standard", {});
        const std::string model = VITSCOPE_SOURCE_DIR "/models/shapes-clip";
        {
            Engine engine(dir.path() + "/caches");
            bool opened = false;
            qint64 cached = 0;
            engine.run(OpenModelJob{model, "cpu"}, this, [&](ModelSummary) { opened = true; });
            QTRY_VERIFY_WITH_TIMEOUT(opened, 30000);
            engine.run(OpenDatasetJob{world + "/images"}, this, [](DatasetSummary) {}, {}, [&](const JobProgress& p) { cached = p.done; });
            QTRY_VERIFY_WITH_TIMEOUT(cached > 0, 30000);
        }  // the engine's destructor cancels and joins, as closing the window does
        // The build stopped early and its finished chunks are there to resume from.
        QDirIterator it(dir.path() + "/caches", {"progress.json"}, QDir::Files, QDirIterator::Subdirectories);
        QVERIFY(it.hasNext());
        QFile pf(it.next());
        QVERIFY(pf.open(QIODevice::ReadOnly));
        const qint64 rows = QJsonDocument::fromJson(pf.readAll()).object()["rows"].toInteger();
        QVERIFY2(rows > 0 && rows < 3000, qPrintable(QString::number(rows)));
        Engine again(dir.path() + "/caches");
        DatasetSummary summary;
        bool resumed = false;
        again.run(OpenModelJob{model, "cpu"}, this, [](ModelSummary) {});
        again.run(OpenDatasetJob{world + "/images"}, this, [&](DatasetSummary s) {
            summary = s;
            resumed = true;
        });
        QTRY_VERIFY_WITH_TIMEOUT(resumed, 60000);
        QVERIFY(summary.resumed);
        QCOMPARE(summary.count, qint64(3000));
    }
};

QTEST_MAIN(TestEngine)
#include "test_engine.moc"
