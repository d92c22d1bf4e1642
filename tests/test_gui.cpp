// The desktop application driven through its real main window (offscreen): the bundled model
// loads, the shapes world is cached, an image is dropped, a text typed, a head clicked, a
// retrieval run, an ablation toggled, figures exported and checked; bad files give messages.
// LibTorch headers before Qt's (its "slots" macro).
#include "analysis/alignment.h"
#include "analysis/cache.h"
#include "analysis/components.h"
#include "analysis/head_matching.h"
#include "analysis/heatmap.h"
#include "analysis/labels.h"
#include "analysis/neurons.h"
#include "analysis/projection.h"
#include "analysis/projection_points.h"
#include "analysis/registers.h"
#include "analysis/retrieval.h"
#include "analysis/sae.h"
#include "analysis/second_order.h"
#include "analysis/splice.h"
#include "analysis/text_embed.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/precision.h"
#include "model/random_weights.h"
#include "resources.h"

#include "ablation_panel.h"
#include "classroom.h"
#include "classroom_mode.h"
#include "colormap.h"
#include "comparison_view.h"
#include "concept_panel.h"
#include "controls.h"
#include "drive.h"
#include "error.h"
#include "export_controller.h"
#include "figure_export.h"
#include "gallery.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "main_window.h"
#include "menus.h"
#include "neuron_tools.h"
#include "projector.h"
#include "partner_view.h"
#include "session.h"
#include "status_line.h"
#include "thumbnails.h"
#include "views.h"
#include "word_completer.h"

#include <qcustomplot.h>

#include <QAction>
#include <QCheckBox>
#include <QAbstractItemModel>
#include <QAbstractItemView>
#include <QComboBox>
#include <QDockWidget>
#include <QCompleter>
#include <QLabel>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QPainter>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QListWidget>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QRegularExpression>
#include <QSet>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolTip>
#include <QUrl>
#include <QDialog>
#include <QScopeGuard>
#include <QTimer>
#include <QHelpEvent>
#include <QApplication>
#include <QStandardItemModel>
#include <QtTest/QtTest>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>

using namespace vitscope;
using namespace vitscope::ui;

namespace {

constexpr int kTimeout = 60000;

uint32_t crc32(const QByteArray& data) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : data) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

// A PNG whose header claims width x height (the data is a stub): the size check must refuse it
// before any decoding.
QByteArray pngHeader(uint32_t width, uint32_t height) {
    auto be = [](uint32_t v) {
        const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
        return QByteArray(b, 4);
    };
    QByteArray ihdr = "IHDR" + be(width) + be(height) + QByteArray("\x08\x02\x00\x00\x00", 5);
    QByteArray png("\x89PNG\r\n\x1a\n", 8);
    png += be(13) + ihdr + be(crc32(ihdr));
    QByteArray idat = QByteArray("IDAT") + QByteArray(16, '\0');
    png += be(16) + idat + be(crc32(idat));
    return png;
}

// Types into the window's text box as a user does, then presses Enter.
void typeText(MainWindow& w, const QString& text) {
    auto* box = w.findChild<QComboBox*>("textBox");
    QVERIFY(box && box->lineEdit());
    box->lineEdit()->clear();
    QTest::keyClicks(box->lineEdit(), text);
    QTest::keyClick(box->lineEdit(), Qt::Key_Return);
}

// The shapes world's colors as a classifier file: "color<TAB>a color object" per line.
bool writeColorClasses(const QString& path) {
    QFile colors(VITSCOPE_SOURCE_DIR "/resources/shapes/color.txt");
    QFile classes(path);
    if (!colors.open(QIODevice::ReadOnly) || !classes.open(QIODevice::WriteOnly)) return false;
    for (const QByteArray& c : colors.readAll().split('\n'))
        if (!c.trimmed().isEmpty()) classes.write(c.trimmed() + "\ta " + c.trimmed() + " object\n");
    return true;
}


// Counts arrivals of one aspect of the session's state: changes that name it while the state has
// it (a map, a ledger, descriptions...), not the clearing that precedes them (a new image clears
// its map). The tests wait on these, never on sleeps.
class Arrivals : public QObject {
public:
    Arrivals(MainWindow& w, Aspect aspect) : m_session(w.session()) {
        connect(&m_session, &Session::changed, this, [this, aspect](Aspects a) {
            if ((a & aspect) && has(m_session.state(), aspect)) ++m_count;
        });
    }
    int count() const { return m_count; }
    bool isEmpty() const { return m_count == 0; }
    bool wait(int ms) {
        const int before = m_count;
        return waitUntil(m_session, [this, before] { return m_count > before; }, ms);
    }

private:
    static bool has(const State& s, Aspect a) {
        switch (a) {
        case Aspect::Map: return !s.map.empty();
        case Aspect::Image: return s.hasImage();
        case Aspect::Ledger: return !s.ledger.rows.empty();
        case Aspect::Descriptions: return !s.descriptions.empty();
        case Aspect::Model: return s.hasModel();
        case Aspect::Dataset: return s.dataset.ready();
        case Aspect::Retrieval: return !s.retrieval.result.query.empty();
        case Aspect::Ablation: return s.ablation.taskSet;
        case Aspect::Focus: return !s.focus.empty();
        default: return true;
        }
    }
    Session& m_session;
    int m_count = 0;
};

// The errors the session reports, in order.
class ErrorLog : public QObject {
public:
    explicit ErrorLog(MainWindow& w) : m_session(w.session()) {
        connect(&m_session, &Session::changed, this, [this](Aspects a) {
            if ((a & Aspect::Message) && m_session.state().message.error) m_errors << m_session.state().message.text;
        });
    }
    int count() const { return m_errors.size(); }
    bool isEmpty() const { return m_errors.isEmpty(); }
    QString first() const { return m_errors.value(0); }
    QString last() const { return m_errors.isEmpty() ? QString() : m_errors.last(); }
    void clear() { m_errors.clear(); }
    bool wait(int ms) {
        const int before = count();
        return waitUntil(m_session, [this, before] { return count() > before; }, ms);
    }

private:
    Session& m_session;
    QStringList m_errors;
};

}  // namespace

// A window's start for a test: its own data folder, no saved settings, the CPU.
// A view's numbers as a 1-D tensor, to compare with core's.
at::Tensor floatTensor(const std::vector<float>& values) { return at::tensor(at::ArrayRef<float>(values)); }

StartOptions testStart(const QString& dataDir) {
    StartOptions o;
    o.dataDir = dataDir;
    o.restoreSettings = false;
    o.device = "cpu";
    return o;
}

// Opens `image` with `text` in the window and waits until its map and ledger are the ones shown
// (an opening view still arriving for another image does not count).
// The open model (any family) compared with the bundled CLIP, which then stays open beside it:
// the assignment one-to-one, the Second model dock's grid, map and ledger for the same image and
// text, the selection carried to its grid through the assignment.
void compareWithBundledClip(MainWindow& w) {
    Session& s = w.session();
    const State& st = s.state();
    s.setText("a red circle");
    s.compareHeads(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
    QVERIFY(waitUntil(s, [&] {
        return st.comparison && !st.comparing && st.partner.open() && st.partner.map.text == "a red circle" && !st.partner.ledger.rows.empty() &&
               st.partner.image.path == st.image.path;
    }, 3 * kTimeout));
    const HeadComparison& c = *st.comparison;
    QCOMPARE(c.cellsA.size(), c.headsA.size());
    QCOMPARE(int(std::count_if(c.assigned.begin(), c.assigned.end(), [](int b) { return b >= 0; })), int(std::min(c.headsA.size(), c.headsB.size())));
    PartnerView* view = w.views().partner;
    QCOMPARE(view->grid()->layers(), 4);
    QTRY_VERIFY_WITH_TIMEOUT(view->canvas()->hasMap() && view->ledger()->ledger().rows.size() == st.partner.ledger.rows.size(), kTimeout);
    QVERIFY(std::abs(st.partner.ledger.residual) < 1e-4 * (1 + std::abs(st.partner.ledger.total)));
    const auto [l, h] = c.cellsA.front();
    s.select({gridHead(l, h, st.model.layers, st.model.poolHeads > 0)});
    const auto b = c.assignedInB({{l, h}});
    if (!b.empty()) QTRY_COMPARE_WITH_TIMEOUT(view->grid()->selection(), (QList<HeadId>{HeadId{b[0].first, b[0].second}}), kTimeout);
    // The projector on the same family: the images through the selected head, and the heads as points.
    s.project("pca", "selected", {});
    QVERIFY(waitUntil(s, [&] { return !st.projection.computing && int64_t(st.projection.result.x.size()) == st.dataset.summary.count; }, 3 * kTimeout));
    QCOMPARE(int(st.projection.result.components.size()), 1);
    s.project("pca", "heads", {});
    QVERIFY(waitUntil(s, [&] { return !st.projection.computing && !st.projection.result.pointNames.empty(); }, 3 * kTimeout));
    QCOMPARE(st.projection.result.pointNames.size(), st.projection.result.x.size());
}

bool showImageAndText(MainWindow& w, const QString& image, const QString& text) {
    w.session().openImage(image);
    if (!waitUntil(w.session(), [&] { return w.state().imagePath() == image; }, kTimeout)) return false;
    w.session().setText(text);
    const std::string t = text.toStdString();
    return waitUntil(w.session(), [&] {
        const State& s = w.state();
        return s.imagePath() == image && s.ledger.text == t && !s.map.empty() && s.map.maps.front().text == t;
    }, kTimeout);
}

// The color-classification ablation task on the window's shapes world (backgrounds as groups),
// means from a reference split of `references` scenes; waits for its first outcome, fails on an error.
void startColorAblation(MainWindow& w, const QString& dataDir, int references, Arrivals& ablation, ErrorLog& errors) {
    QVERIFY(writeColorClasses(dataDir + "/colors.tsv"));
    ensureShapesWorld((dataDir + "/reference").toStdString(), references, 99, "standard", {});
    w.views().ablation->setTaskForm(dataDir + "/shapes-world/labels.csv", "color", dataDir + "/colors.tsv", "background",
                                   dataDir + "/reference/images");
    w.views().ablation->requestTask();
    QTRY_VERIFY_WITH_TIMEOUT(ablation.count() > 0 || errors.count() > 0, kTimeout);
    if (errors.count() > 0) QFAIL(qPrintable(errors.first()));
}

// A grabbed widget's pixel at a point in the widget's own (logical) coordinates: grabs are in
// device pixels (twice as many at a scale factor of 2).
QColor pixelAt(const QImage& shot, const QPoint& logical) {
    return shot.pixelColor((QPointF(logical) * shot.devicePixelRatio()).toPoint());
}

// The height a word-wrapped label's text needs at the label's width (from its font's metrics).
int wrappedHeight(const QLabel* l) {
    return l->fontMetrics().boundingRect(QRect(0, 0, std::max(1, l->contentsRect().width()), 100000), Qt::TextWordWrap, l->text()).height();
}

// What of a chart's text a reader would find cut or run together, or "" when all of it shows:
// legend entries narrower than their text or outside the chart, x labels overlapping each other,
// the x axis title running off the chart, y labels wider than the room left of the axis.
QString chartTextProblem(QCustomPlot* plot) {
    plot->replot();
    if (plot->legend->visible())
        for (int i = 0; i < plot->legend->elementCount(); ++i)
            if (QCPAbstractLegendItem* item = plot->legend->item(i)) {
                auto* entry = qobject_cast<QCPPlottableLegendItem*>(item);
                const QString name = entry ? entry->plottable()->name() : QString::number(i);
                if (item->minimumOuterSizeHint().width() > item->outerRect().width() + 1) return "legend entry " + name + " cut";
                if (!plot->rect().contains(item->outerRect())) return "legend entry " + name + " outside the chart";
            }
    const QFontMetrics xf(plot->xAxis->tickLabelFont());
    double right = -1e9;
    const QVector<double> ticks = plot->xAxis->tickVector();
    const QVector<QString> labels = plot->xAxis->tickVectorLabels();
    for (int i = 0; i < ticks.size() && i < labels.size(); ++i) {
        if (!plot->xAxis->range().contains(ticks[i])) continue;
        const double x = plot->xAxis->coordToPixel(ticks[i]), half = xf.horizontalAdvance(labels[i]) / 2.0;
        if (x - half < right) return "x labels overlap at '" + labels[i] + "'";
        right = x + half;
    }
    const int title = QFontMetrics(plot->xAxis->labelFont()).horizontalAdvance(plot->xAxis->label());
    const int centre = plot->axisRect()->rect().center().x();
    if (centre - title / 2 < 0 || centre + title / 2 > plot->width()) return "x axis title '" + plot->xAxis->label() + "' cut";
    const QFontMetrics yf(plot->yAxis->tickLabelFont());
    for (const QString& l : plot->yAxis->tickVectorLabels())
        if (yf.horizontalAdvance(l) > plot->axisRect()->left()) return "y label '" + l + "' cut";
    return {};
}

// The opening view settled with its dataset: an image, a text, the dataset cached, a map, no job.
bool openedWithDataset(Session& s, int ms) {
    const State& st = s.state();
    return waitUntil(s, [&] { return !st.image.path.empty() && !st.text.isEmpty() && st.dataset.ready() && !st.map.empty() && !st.job.running(); }, ms);
}

// A projector of its own (no main window), shown at w x h, and the state it renders.
struct LoneProjector {
    Thumbnails thumbs{32};
    Projector p{&thumbs};
    State s;
    LoneProjector(int w, int h) {
        p.resize(w, h);
        p.show();
    }
};

class TestGui : public QObject {
    Q_OBJECT
    QTemporaryDir m_data;
    std::unique_ptr<MainWindow> m_window;

    // The first view (issue: "what a newcomer sees"): a single-object scene of the bundled world
    // and its own text, the map lighting that object, the strongest head selected with its panel,
    // the gallery answering the text.
    void checkOpeningView() {
        MainWindow& w = *m_window;
        QTRY_VERIFY_WITH_TIMEOUT(w.views().canvas->hasImage() && !w.views().canvas->map().values.empty(), kTimeout);
        const QString text = w.findChild<QComboBox*>("textBox")->currentText();
        QVERIFY2(QRegularExpression("^a [a-z]+ [a-z]+$").match(text).hasMatch(), qPrintable(text));
        QVERIFY(w.views().canvas->map().caption.endsWith(text));
        // The scene's labels say one object, with that color and shape.
        QFile labels(m_data.path() + "/shapes-world/labels.csv");
        QVERIFY(labels.open(QIODevice::ReadOnly));
        const QStringList head = QString::fromUtf8(labels.readLine()).trimmed().split(',');
        const QString file = "images/" + QFileInfo(w.views().canvas->imagePath()).fileName();
        QString mask;
        while (!labels.atEnd()) {
            const QStringList row = QString::fromUtf8(labels.readLine()).trimmed().split(',');
            if (row.value(head.indexOf("file")) != file) continue;
            QCOMPARE(text, "a " + row.value(head.indexOf("color")) + " " + row.value(head.indexOf("shape")));
            QVERIFY(row.value(head.indexOf("distractor_shape")).isEmpty());
            mask = m_data.path() + "/shapes-world/" + row.value(head.indexOf("mask"));
        }
        QVERIFY(!mask.isEmpty());
        // The map's strongest pixel lies on the object.
        const MapLayer& map = w.views().canvas->map();
        const auto peak = std::max_element(map.values.begin(), map.values.end()) - map.values.begin();
        const QImage m = QImage(mask).scaled(map.cols, map.rows);
        QVERIFY2(qGray(m.pixel(int(peak % map.cols), int(peak / map.cols))) > 127, qPrintable(mask));
        QTRY_VERIFY_WITH_TIMEOUT(!w.views().grid->selection().isEmpty(), kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(w.views().gallery->globalCount() > 0, kTimeout);
        QVERIFY2(w.views().gallery->resultsFor().contains(text), qPrintable(w.views().gallery->resultsFor()));
        QTRY_VERIFY_WITH_TIMEOUT(w.views().head->layer() >= 0, kTimeout);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            QTest::qWait(500);  // thumbnails
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/opening-view.png");
        }
    }

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("vitscope-test");
        QCoreApplication::setApplicationName("vitscope-test");
        QVERIFY(m_data.isValid());
        StartOptions o = testStart(m_data.path());
        m_window = std::make_unique<MainWindow>(o);
        Arrivals model(*m_window, Aspect::Model);
        Arrivals described(*m_window, Aspect::Descriptions);
        m_window->resize(1400, 900);
        m_window->show();
        QVERIFY(model.wait(kTimeout));
        QCOMPARE(m_window->state().model.layers, 4);
        QCOMPARE(m_window->state().model.heads, 4);
        QVERIFY(m_window->state().model.clip);
        // The bundled world is generated and cached in the background, then its heads described.
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0, kTimeout);
        checkOpeningView();
        QVERIFY(m_window->state().dataset.ready());
        QCOMPARE(int(m_window->state().descriptions.size()), 16);
        QVERIFY(QFile::exists(m_data.path() + "/shapes-world/labels.csv"));
    }

    void dropImageTypeTextAndReadTheLedger() {
        const QString image = m_data.path() + "/shapes-world/images/000003.png";
        QVERIFY(QFile::exists(image));
        Arrivals imageReady(*m_window, Aspect::Image);
        Arrivals heat(*m_window, Aspect::Map);
        Arrivals ledger(*m_window, Aspect::Ledger);
        dropFile(m_window->views().canvas, image);
        QVERIFY(imageReady.wait(kTimeout));
        QCOMPARE(m_window->views().canvas->imagePath(), image);
        typeText(*m_window, "a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0 && ledger.count() > 0, kTimeout);
        // The overlay covers the model's input (64 x 64) with a finite, non-constant map.
        const MapLayer& map = m_window->views().canvas->map();
        QCOMPARE(map.rows, 64);
        QCOMPARE(map.cols, 64);
        float lo = map.values.front(), hi = lo;
        for (float v : map.values) {
            QVERIFY(std::isfinite(v));
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        QVERIFY(hi > lo);
        // Completeness: the terms sum to the model's score.
        const Ledger& g = m_window->views().ledger->ledger();
        QCOMPARE(g.text, std::string("a red object"));
        QCOMPARE(int(g.rows.size()), 1 + 16 + 4 + 4 + 1);  // embed, heads, attention biases, MLPs, final bias
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(m_window->views().ledger->summaryText()));
        QVERIFY(std::abs(g.total) > 1e-3);
        QVERIFY(m_window->views().ledger->plot()->plottableCount() == 1 + 4 + 2);
        // Hovering a bar says what it is worth: down the last layer's column every segment
        // names itself with the ledger's own value for it; above the stack, nothing.
        {
            LedgerView* lv = m_window->views().ledger;
            QCustomPlot* plot = lv->plot();
            lv->fitToWidth();
            const int x = qRound(plot->xAxis->coordToPixel(4));  // the key of layer 3
            QSet<QString> seen;
            for (int y = plot->axisRect()->top(); y <= plot->axisRect()->bottom(); ++y) {
                const QString t = lv->valueAt(QPoint(x, y));
                if (!t.isEmpty()) seen.insert(t);
            }
            QStringList expected;
            for (const LedgerRow& r : g.rows)
                if (r.layer == 3 && r.name.rfind("mlp.", 0) == 0)
                    expected << QString("L3, MLP: %1").arg(r.score, 0, 'g', 3);
            QCOMPARE(expected.size(), 1);
            bool found = false;
            for (const QString& t : seen) found = found || t.startsWith(expected.front() + " (");
            QVERIFY2(found, qPrintable(QStringList(seen.values()).join(" | ")));
            QVERIFY2(seen.size() >= 2, qPrintable(QStringList(seen.values()).join(" | ")));  // heads and the MLP in the column
            QCOMPARE(lv->valueAt(QPoint(x, plot->axisRect()->top() + 1)), QString());
            QVERIFY(plot->hasMouseTracking());  // the values come on hover, no button held
        }
        // Every method draws.
        for (const QString& method : {"surgery", "raw", "attention", "rollout", "gradcam", "chefer", "legrad", "decomposition"}) {
            const int before = heat.count();
            m_window->session().setMethod(method);
            QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before, kTimeout);
            QVERIFY(m_window->views().canvas->map().caption.startsWith(method));
            const std::vector<float>& values = m_window->views().canvas->map().values;
            QVERIFY(std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); }));
            QVERIFY2(*std::max_element(values.begin(), values.end()) > *std::min_element(values.begin(), values.end()), qPrintable(method));
        }
    }

    void referenceTextsAreSubtracted() {
        // Analysis > Reference texts: the map becomes the text's map minus the references' mean,
        // and the caption says so; switching it off restores the text's own map.
        Arrivals heat(*m_window, Aspect::Map);
        m_window->session().setMethod("decomposition");
        typeText(*m_window, "a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().canvas->map().caption.endsWith("a red object"), kTimeout);
        const std::vector<float> own = m_window->views().canvas->map().values;
        const QString refs = m_data.path() + "/colors.txt";
        QFile f(refs);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("a red object\na green object\na blue object\na yellow object\n");
        f.close();
        m_window->session().loadReferenceTexts(refs);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().canvas->map().caption.contains("mean of 4 reference texts (colors.txt)"), kTimeout);
        const std::vector<float> subtracted = m_window->views().canvas->map().values;
        QCOMPARE(subtracted.size(), own.size());
        double diff = 0;
        for (std::size_t i = 0; i < own.size(); ++i) diff = std::max(diff, double(std::abs(own[i] - subtracted[i])));
        QVERIFY(diff > 1e-4);
        const int before = heat.count();
        m_window->session().setSubtractReference(false);
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before && !m_window->views().canvas->map().caption.contains("reference"), kTimeout);
        QVERIFY(m_window->views().canvas->map().values == own);
        // An unreadable reference file: a message naming it, and heatmaps stay the text's own.
        ErrorLog errors(*m_window);
        m_window->session().loadReferenceTexts(m_data.path() + "/no-such-texts.txt");
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
        QVERIFY(errors.last().contains("no-such-texts.txt"));
        m_window->session().setSubtractReference(true);
        const int again = heat.count();
        typeText(*m_window, "a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > again, kTimeout);
        QVERIFY(!m_window->views().canvas->map().caption.contains("reference"));
    }

    void pngTextScalesOnceWithDpi() {
        // A 10 pt text in a PNG at 300 dpi is 300 / 96 times as tall as at 96 dpi (it was scaled
        // twice: ~3x too large), and the file records its resolution.
        QTemporaryDir out;
        const FigurePainter paint = [](QPainter& p, const QRect& r) {
            p.fillRect(r, Qt::white);
            QFont f = p.font();
            f.setPointSizeF(10);
            p.setFont(f);
            p.setPen(Qt::black);
            p.drawText(QPoint(10, 40), "Hxg");
        };
        auto inkHeight = [](const QString& file) {
            const QImage img = QImage(file).convertToFormat(QImage::Format_RGB32);
            int top = img.height(), bottom = -1;
            for (int y = 0; y < img.height(); ++y)
                for (int x = 0; x < img.width(); ++x)
                    if (qGray(img.pixel(x, y)) < 128) {
                        top = std::min(top, y);
                        bottom = std::max(bottom, y);
                    }
            return bottom - top + 1;
        };
        QCOMPARE(exportFigure(paint, QSize(200, 80), out.path() + "/a96.png", 96, {}, "t"), QString());
        QCOMPARE(exportFigure(paint, QSize(200, 80), out.path() + "/a300.png", 300, {}, "t"), QString());
        const double ratio = double(inkHeight(out.path() + "/a300.png")) / inkHeight(out.path() + "/a96.png");
        QVERIFY2(std::abs(ratio - 300.0 / 96.0) < 0.35, qPrintable(QString::number(ratio)));
        QCOMPARE(qRound(QImage(out.path() + "/a300.png").dotsPerMeterX() * 0.0254), 300);
    }

    void errorsStayBesideTheLastGoodMap() {
        // An unknown word: the last good map stays under its own caption, the error sits in a strip
        // of its own below the view (never over the image or colorbar) and says what is shown; the
        // next good map clears it.
        Arrivals heat(*m_window, Aspect::Map);
        ErrorLog errors(*m_window);
        m_window->session().setMethod("decomposition");
        typeText(*m_window, "a blue object");
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().canvas->map().caption.endsWith("a blue object"), kTimeout);
        const QString caption = m_window->views().canvas->map().caption;
        typeText(*m_window, "a photo of a dog");
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().canvas->message().contains("still the one for \"a blue object\""), kTimeout);
        // The log says it once, in words (no internal job names).
        auto* log = m_window->findChild<QPlainTextEdit*>();
        QVERIFY(log);
        QTRY_VERIFY_WITH_TIMEOUT(log->toPlainText().contains("'photo'"), kTimeout);
        // Both jobs (the map's and the ledger's) have ended, and their log lines are delivered.
        QTRY_VERIFY_WITH_TIMEOUT(m_window->session().engine().idle(), kTimeout);
        QCoreApplication::sendPostedEvents();
        const QStringList mentions = log->toPlainText().split('\n').filter("'photo'");
        QVERIFY2(mentions.size() == 1, qPrintable(mentions.join(" || ")));
        QVERIFY2(!log->toPlainText().contains("job heatmap"), qPrintable(log->toPlainText().right(400)));
        QCOMPARE(m_window->views().canvas->map().caption, caption);
        // The message says what the model knows: its vocabulary, listed when small (no word is
        // close to "photo" in the shapes world's 38).
        QVERIFY2(m_window->views().canvas->message().contains("vocabulary of 38 words (it knows: ") &&
                     m_window->views().canvas->message().contains(" circle "),
                 qPrintable(m_window->views().canvas->message()));
        const QColor strip(253, 236, 234);
        auto stripRows = [&](const QImage& img) {
            QList<int> rows;
            for (int y = 0; y < img.height(); ++y)
                for (int x = 0; x < img.width(); ++x)
                    if (img.pixelColor(x, y) == strip) {
                        rows << y;
                        break;
                    }
            return rows;
        };
        const QImage withError = m_window->views().canvas->grab().toImage().convertToFormat(QImage::Format_RGB32);
        const QList<int> rows = stripRows(withError);
        QVERIFY(rows.size() > 10);
        QCOMPARE(rows.last(), withError.height() - 1);                    // the strip ends at the bottom
        QCOMPARE(rows.last() - rows.first() + 1, int(rows.size()));       // one block, nothing above it
        const int before = heat.count();
        typeText(*m_window, "a green object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before && m_window->views().canvas->map().caption.endsWith("a green object"), kTimeout);
        QVERIFY(m_window->views().canvas->message().isEmpty());
        QVERIFY(stripRows(m_window->views().canvas->grab().toImage().convertToFormat(QImage::Format_RGB32)).isEmpty());
    }

    // The bundled model reads a word vocabulary: the text box completes the word being typed from
    // it, and a pick replaces only that word.
    void textBoxCompletesKnownWords() {
        WordCompleter* words = m_window->views().text->wordCompleter();
        QVERIFY(words->wordCount() > 20);
        QLineEdit* edit = m_window->findChild<QComboBox*>("textBox") ? m_window->findChild<QComboBox*>("textBox")->lineEdit() : nullptr;
        if (!edit) edit = qobject_cast<QLineEdit*>(words->completer()->widget());
        QVERIFY(edit);
        edit->setFocus();
        edit->clear();
        QTest::keyClicks(edit, "a gre");
        QTRY_VERIFY_WITH_TIMEOUT(words->completer()->popup()->isVisible(), kTimeout);
        QCOMPARE(words->completer()->completionPrefix(), QString("gre"));
        QCOMPARE(words->completer()->currentCompletion(), QString("green"));
        QTest::keyClick(words->completer()->popup(), Qt::Key_Return);
        QCOMPARE(edit->text(), QString("a green"));
        QTest::keyClicks(edit, " objxq");  // no known word starts so: no list
        QVERIFY(!words->completer()->popup()->isVisible());
        edit->clear();
    }

    void textSpanOnTheReferenceConvention() {
        // Analysis > TextSpan settings > Cached terms: textspan rebuilds the dataset's cache under the
        // reference's convention; the descriptions say which convention they ran on.
        QCOMPARE(QString::fromStdString(m_window->state().descriptions.front().convention), QString("exact"));
        Arrivals described(*m_window, Aspect::Descriptions);
        // Whatever happens below, the window goes back to the default convention for other tests.
        auto restore = qScopeGuard([this] {
            if (m_window->state().textspan.convention != "exact") {
                m_window->session().setTextSpanSettings({10, 80, "exact"});
                waitUntil(m_window->session(), [this] { return !m_window->state().descriptions.empty() && m_window->state().descriptions.front().convention == "exact"; }, kTimeout);
            }
        });
        m_window->session().setTextSpanSettings({10, 80, "textspan"});
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0, kTimeout);
        QCOMPARE(QString::fromStdString(m_window->state().descriptions.front().convention), QString("textspan"));
        QCOMPARE(int(m_window->state().descriptions.size()), 16);
        QVERIFY2(m_window->statusLine().text().contains("16 heads described"), qPrintable(m_window->statusLine().text()));
        m_window->session().setTextSpanSettings({10, 80, "exact"});
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 1, kTimeout);
        QCOMPARE(QString::fromStdString(m_window->state().descriptions.front().convention), QString("exact"));
    }

    void clickHeadShowsItsPanel() {
        Arrivals panel(*m_window, Aspect::Focus);
        HeadGrid* grid = m_window->views().grid;
        const QRect cell = grid->cellRect(3, 1);
        QVERIFY(!cell.isEmpty());
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, cell.center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(m_window->views().head->layer(), 3);
        QCOMPARE(m_window->views().head->head(), 1);
        QCOMPARE(m_window->views().head->barCount(), 1);
        QCOMPARE(m_window->views().head->imageCount(), 12);
        // ctrl-click adds, shift-click extends a rectangle.
        QTest::mouseClick(grid, Qt::LeftButton, Qt::ControlModifier, grid->cellRect(2, 2).center());
        QCOMPARE(grid->selection().size(), 2);
        QTest::mouseClick(grid, Qt::LeftButton, Qt::ShiftModifier, grid->cellRect(3, 3).center());
        QCOMPARE(grid->selection().size(), 5);  // 3.1, 2.2, and the rectangle 2.2..3.3 adds 2.3, 3.2, 3.3
        // A layer's label selects the layer.
        const QRect row = grid->cellRect(1, 0);
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, QPoint(row.left() - 8, row.center().y()));
        QCOMPARE(grid->selection(), (QList<HeadId>{{1, 0}, {1, 1}, {1, 2}, {1, 3}}));
        // Arrow keys move the selection from the head clicked last, and its panel follows.
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, grid->cellRect(2, 1).center());
        QVERIFY(panel.wait(kTimeout));
        grid->setFocus();
        QTest::keyClick(grid, Qt::Key_Right);
        QCOMPARE(grid->selection(), (QList<HeadId>{{2, 2}}));
        QTest::keyClick(grid, Qt::Key_Down);
        QCOMPARE(grid->selection(), (QList<HeadId>{{3, 2}}));
        QTest::keyClick(grid, Qt::Key_Down);  // stays in the last row
        QCOMPARE(grid->selection(), (QList<HeadId>{{3, 2}}));
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().head->layer() == 3 && m_window->views().head->head() == 2, kTimeout);
        // The MLP column has tooltips too.
        const QRect mlpCell(grid->cellRect(2, 3).right() + 12, grid->cellRect(2, 3).top(), grid->cellRect(2, 3).width(), grid->cellRect(2, 3).height());
        QHelpEvent tip(QEvent::ToolTip, mlpCell.center(), grid->mapToGlobal(mlpCell.center()));
        QApplication::sendEvent(grid, &tip);
        QTRY_VERIFY_WITH_TIMEOUT(QToolTip::isVisible(), kTimeout);
        QVERIFY2(QToolTip::text().contains("mlp.2"), qPrintable(QToolTip::text()));
        QToolTip::hideText();
        // Clicking it shows the MLP in the panel with the images where it writes the most; the
        // heads' selection stays and "Retrieve with this head" is off.
        const QList<HeadId> selected = grid->selection();
        Arrivals mlpPanel(*m_window, Aspect::Focus);
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, mlpCell.center());
        QTRY_VERIFY_WITH_TIMEOUT(mlpPanel.count() > 0 && m_window->views().head->imageCount() == 12, kTimeout);
        QVERIFY2(m_window->views().head->titleText().startsWith("mlp.2:"), qPrintable(m_window->views().head->titleText()));
        QCOMPARE(grid->selection(), selected);
        QCOMPARE(m_window->views().head->barCount(), 0);
        for (QPushButton* b : m_window->views().head->findChildren<QPushButton*>())
            if (b->text() == "Retrieve with this head") QVERIFY(!b->isEnabled());
        auto* images = m_window->views().head->findChild<QListWidget*>();
        for (int i = 1; i < images->count(); ++i)  // strongest first
            QVERIFY(images->item(i - 1)->text().toDouble() >= images->item(i)->text().toDouble());
        // Per-head maps of two heads: named, on one colour scale (their joint range), one
        // colorbar after them (the colormap's own colours in the row's part of the canvas).
        m_window->session().setMethod("decomposition");
        typeText(*m_window, "a red object");
        grid->setSelection({HeadId{3, 1}, HeadId{2, 2}});
        Arrivals heat(*m_window, Aspect::Map);
        QCheckBox* perHead = nullptr;
        for (QCheckBox* b : m_window->findChildren<QCheckBox*>())
            if (b->text() == "Per-head maps") perHead = b;
        QVERIFY(perHead);
        ImageCanvas* canvas = m_window->views().canvas;
        QSet<QRgb> ramp;  // a colorbar's pixels are the colormap's own colours (the maps are blended)
        for (int i = 0; i < 256; ++i) ramp.insert(colormapColor(canvas->colormap(), i / 255.0).rgb() & 0xffffff);
        auto barPixelsInRow = [&] {
            const QImage im = canvas->grab().toImage();
            int n = 0;
            for (int y = im.height() * 7 / 8; y < im.height(); ++y)  // inside the maps' row
                for (int x = 0; x < im.width(); ++x) n += ramp.contains(im.pixel(x, y) & 0xffffff);
            return n;
        };
        perHead->setChecked(true);
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0 && canvas->smallMultiples().size() == 2, kTimeout);
        const std::vector<MapLayer>& maps = canvas->smallMultiples();
        // In head order (layer, then head), whatever order they were selected in.
        QCOMPARE(maps[0].caption, QString("head 2.2"));
        QCOMPARE(maps[1].caption, QString("head 3.1"));
        float lo = maps[0].values.front(), hi = lo;
        for (const MapLayer& m : maps)
            for (float v : m.values) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
        QVERIFY(lo < hi);
        for (const MapLayer& m : maps) QVERIFY(m.lo == lo && m.hi == hi);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) canvas->grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/per-head.png");
        QVERIFY2(barPixelsInRow() > 100, qPrintable(QString::number(barPixelsInRow())));
        perHead->setChecked(false);
        QTRY_VERIFY_WITH_TIMEOUT(canvas->smallMultiples().empty(), kTimeout);
    }

    void retrievalGlobalAndThroughHeads() {
        m_window->views().grid->setSelection({HeadId{3, 1}, HeadId{1, 1}});
        Arrivals ready(*m_window, Aspect::Retrieval);
        m_window->session().retrieveText("a blue object");
        QVERIFY(ready.wait(kTimeout));
        Gallery* g = m_window->views().gallery;
        QCOMPARE(g->globalCount(), 20);
        QCOMPARE(g->restrictedCount(), 20);
        QCOMPARE(int(g->result().components.size()), 2);
        // Every result is a thumbnail-sized cell at once (thumbnails arrive later), not a strip.
        for (QListWidget* list : g->findChildren<QListWidget*>()) {
            QVERIFY(list->count() > 0);
            const QRect cell = list->visualItemRect(list->item(0));
            QVERIFY2(cell.width() >= list->iconSize().width() && cell.height() >= list->iconSize().height(),
                     qPrintable(QString("%1 x %2").arg(cell.width()).arg(cell.height())));
        }
        // Scores are sorted, and a result opens in the canvas.
        for (std::size_t i = 1; i < g->result().global.size(); ++i) QVERIFY(g->result().global[i - 1].score >= g->result().global[i].score);
        Arrivals imageReady(*m_window, Aspect::Image);
        emit g->imageActivated(g->restrictedPath(0));
        QVERIFY(imageReady.wait(kTimeout));
        QCOMPARE(m_window->views().canvas->imagePath(), g->restrictedPath(0));
        // Results always answer the query and heads shown: the box and the caption name the query,
        // a new head selection runs it again through the new heads, and Ctrl+R's text shows in the box.
        auto* box = g->findChild<QLineEdit*>("galleryQuery");
        QVERIFY(box);
        QCOMPARE(box->text(), QString("a blue object"));
        QCOMPARE(g->resultsFor(), QString("Results for \"a blue object\""));
        const int n = ready.count();
        m_window->views().grid->setSelection({HeadId{2, 0}});
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() > n && g->result().components == std::vector<std::string>{"2.0"}, kTimeout);
        QCOMPARE(g->result().query, std::string("a blue object"));
        m_window->session().setText("a red object");
        const int m = ready.count();
        m_window->session().retrieveText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() > m && g->result().query == "a red object", kTimeout);
        QCOMPARE(box->text(), QString("a red object"));
        // By image: the caption names the image.
        const int k = ready.count();
        emit g->imageQuery(g->globalPath(0));
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() > k && g->result().byImage, kTimeout);
        QCOMPARE(g->resultsFor(), QString("Results for images like %1").arg(QFileInfo(g->result().query.c_str()).fileName()));
    }

    void propertyScoresByName() {
        // The property box offers this model's word lists; an unknown name is refused with them
        // and the grid keeps its label; a known one ranks the heads under its own name.
        auto* box = m_window->findChild<QLineEdit*>("propertyBox");
        QVERIFY(box && box->completer());
        QStringList offered;
        for (int i = 0; i < box->completer()->model()->rowCount(); ++i) offered << box->completer()->model()->index(i, 0).data().toString();
        QVERIFY2(offered.contains("color") && offered.contains("shape"), qPrintable(offered.join(",")));
        ErrorLog errors(*m_window);
        box->setText("colour");
        QTest::keyClick(box, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
        const QString said = errors.last();
        QVERIFY2(said.contains("'colour'") && said.contains("color") && !said.contains("--"), qPrintable(said));
        QVERIFY(!m_window->views().grid->metricName().contains("colour"));
        box->setText("color");
        QTest::keyClick(box, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().grid->metricName() == "property score: color", kTimeout);
        int finite = 0;
        for (int l = 0; l < m_window->views().grid->layers(); ++l)
            for (int h = 0; h < m_window->views().grid->heads(); ++h) finite += std::isfinite(m_window->views().grid->value(l, h));
        QCOMPARE(finite, m_window->views().grid->layers() * m_window->views().grid->heads());
        m_window->findChild<QComboBox*>("metricBox")->setCurrentIndex(0);  // back to the direct-effect norm
        QCOMPARE(m_window->views().grid->metricName(), QString("direct-effect norm"));
    }

    void exportsHoldTheirContent() {
        QTemporaryDir out;
        // PNG at a chosen DPI: the pixel size follows.
        const QString png = out.path() + "/canvas.png";
        QCOMPARE(m_window->exporter().exportView("canvas", png, 192), QString());
        const QImage img(png);
        QVERIFY(!img.isNull());
        QCOMPARE(img.height(), std::max(420, m_window->views().canvas->height()) * 2);
        // As wide as its content: the image, colorbar and labels reach the right edge (no empty band).
        int lastInk = 0;
        for (int x = 0; x < img.width(); ++x)
            for (int y = 0; y < img.height(); ++y)
                if (qGray(img.pixel(x, y)) < 200) {
                    lastInk = x;
                    break;
                }
        QVERIFY2(lastInk >= img.width() * 9 / 10, qPrintable(QString("ink ends at %1 of %2").arg(lastInk).arg(img.width())));
        QVERIFY(std::abs(img.dotsPerMeterX() - 192 / 0.0254) < 2);
        // SVG: vector elements and the texts of the chart.
        m_window->views().grid->setSelection({HeadId{3, 1}});
        emit m_window->views().grid->headActivated(HeadId{3, 1});
        const QString svg = out.path() + "/head.svg";
        // From a dock too narrow for the chart's texts: the figure has them whole all the same.
        auto* headDock = m_window->findChild<QDockWidget*>("headDock");
        const int headDockWidth = headDock->width();
        m_window->resizeDocks({headDock}, {headDock->minimumSizeHint().width()}, Qt::Horizontal);
        QTest::qWait(50);
        QCOMPARE(m_window->exporter().exportView("head", svg, 96), QString());
        m_window->resizeDocks({headDock}, {headDockWidth}, Qt::Horizontal);
        QFile f(svg);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray s = f.readAll();
        QVERIFY(s.startsWith("<?xml") && s.contains("<svg"));
        QVERIFY(s.contains("variance explained"));
        const HeadDescription* d = nullptr;
        for (const HeadDescription& x : m_window->state().descriptions)
            if (x.layer == 3 && x.index == 1) d = &x;
        QVERIFY(d && !d->picks.empty());
        for (const auto& pick : d->picks)
            QVERIFY2(s.contains(QByteArray::fromStdString(pick.text)), ("the SVG lacks '" + pick.text + "' whole").c_str());
        QVERIFY(s.count("<path") + s.count("<rect") + s.count("<polyline") >= 5);
        QVERIFY2(s.contains("Head 3.1:") && s.contains("texts explain"), "the head chart does not say which head it is");
        // The ledger chart says its text, the model's score and the residual.
        Arrivals ledgerSpy(*m_window, Aspect::Ledger);
        m_window->session().setText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(ledgerSpy.count() > 0 && m_window->views().ledger->ledger().text == "a red object", kTimeout);
        const QString ledgerSvg = out.path() + "/ledger.svg";
        QCOMPARE(m_window->exporter().exportView("ledger", ledgerSvg, 96), QString());
        QFile lf(ledgerSvg);
        QVERIFY(lf.open(QIODevice::ReadOnly));
        const QString ls = QString::fromUtf8(lf.readAll());
        const Ledger& lg = m_window->views().ledger->ledger();
        QVERIFY2(ls.contains("a red object") && ls.contains("residual") && ls.contains(QString::number(lg.total, 'g', 6)),
                 "the ledger chart lacks its text, score or residual");
        const QString gridSvg = out.path() + "/grid.svg";
        QCOMPARE(m_window->exporter().exportView("grid", gridSvg, 96), QString());
        QFile gf(gridSvg);
        QVERIFY(gf.open(QIODevice::ReadOnly));
        const QByteArray gs = gf.readAll();
        QVERIFY(gs.contains("MLP") && gs.contains("direct-effect norm"));
        // The grid as a picture: the widget's own aspect (cells stay square), without the
        // selection's outline, which the screen shows.
        HeadGrid* grid = m_window->views().grid;
        grid->setSelection({HeadId{3, 1}});
        const QRgb outline = grid->palette().highlight().color().rgb();
        auto outlinePixels = [outline](const QImage& im) {
            int n = 0;
            for (int y = 0; y < im.height(); ++y)
                for (int x = 0; x < im.width(); ++x) n += (im.pixel(x, y) & 0xffffff) == (outline & 0xffffff);
            return n;
        };
        QVERIFY(outlinePixels(grid->grab().toImage()) > 0);
        const QString gridPng = out.path() + "/grid.png";
        QCOMPARE(m_window->exporter().exportView("grid", gridPng, 96), QString());
        const QImage gridImage(gridPng);
        // The grid as tall as its rows and colorbar (a tall dock once left its lower half empty),
        // with its own aspect: the last row of cells ends near the bottom.
        const QSize hint = grid->sizeHint();
        const double aspect = hint.width() / double(hint.height()), exported = gridImage.width() / double(gridImage.height());
        QVERIFY2(std::abs(exported / aspect - 1) < 0.02, qPrintable(QString("aspect %1 exported as %2").arg(aspect).arg(exported)));
        int lastRow = 0;
        for (int y = 0; y < gridImage.height(); ++y)
            for (int x = 0; x < gridImage.width(); ++x)
                if (qGray(gridImage.pixel(x, y)) < 200) lastRow = y;
        QVERIFY2(lastRow > gridImage.height() * 8 / 10, qPrintable(QString("ink ends at row %1 of %2").arg(lastRow).arg(gridImage.height())));
        QCOMPARE(outlinePixels(gridImage), 0);
        // PDF: a real document with one page.
        const QString pdf = out.path() + "/ledger.pdf";
        QCOMPARE(m_window->exporter().exportView("ledger", pdf, 96), QString());
        QFile pf(pdf);
        QVERIFY(pf.open(QIODevice::ReadOnly));
        const QByteArray p = pf.readAll();
        QVERIFY(p.startsWith("%PDF-"));
        QVERIFY(p.size() > 2000);
        QVERIFY(p.contains("/Type /Page") || p.contains("/Type/Page"));
        // The canvas's PDF holds its pixel images losslessly (no JPEG) and uninterpolated.
        const QString canvasPdf = out.path() + "/canvas.pdf";
        QCOMPARE(m_window->exporter().exportView("canvas", canvasPdf, 96), QString());
        QFile cf(canvasPdf);
        QVERIFY(cf.open(QIODevice::ReadOnly));
        const QByteArray cp = cf.readAll();
        QVERIFY(cp.count("/Subtype /Image") >= 2);  // the crop and the map
        QVERIFY2(!cp.contains("DCTDecode"), "the canvas PDF embeds JPEG images");
        QVERIFY2(!cp.contains("/Interpolate true"), "the canvas PDF asks readers to interpolate its pixels");
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) QFile::copy(canvasPdf, qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/canvas.pdf");
        // Reproducibility record beside every export.
        for (const QString& path : {png, svg, pdf}) {
            QFile r(path + ".json");
            QVERIFY2(r.open(QIODevice::ReadOnly), qPrintable(path));
            const QJsonObject o = QJsonDocument::fromJson(r.readAll()).object();
            QCOMPARE(o["model_fingerprint"].toString(), QString::fromStdString(m_window->state().model.fingerprint));
            QVERIFY(!o["method"].toString().isEmpty());
            QVERIFY(!o["text"].toString().isEmpty());
        }
        // Numbers: the heatmap as .npy / .csv, the ledger as .json.
        QCOMPARE(m_window->exporter().exportData("heatmap", out.path() + "/map.npy"), QString());
        QFile npy(out.path() + "/map.npy");
        QVERIFY(npy.open(QIODevice::ReadOnly));
        const QByteArray nb = npy.readAll();
        QVERIFY(nb.startsWith("\x93NUMPY") && nb.contains("(8, 8)"));
        QCOMPARE(m_window->exporter().exportData("grid", out.path() + "/grid.csv"), QString());
        QFile csv(out.path() + "/grid.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QList<QByteArray> gridLines = csv.readAll().trimmed().split('\n');
        QCOMPARE(gridLines.size(), 1 + m_window->views().grid->layers());
        QVERIFY2(gridLines[0].startsWith("name,head 0") && gridLines[1].startsWith("layer 0,"), gridLines[0].constData());
        QCOMPARE(m_window->exporter().exportData("ledger", out.path() + "/ledger.json"), QString());
        // The ledger's CSV: each term by name, its layer and head only where it has them, the
        // scores adding up to the sum of terms.
        QCOMPARE(m_window->exporter().exportData("ledger", out.path() + "/ledger.csv"), QString());
        QFile lc(out.path() + "/ledger.csv");
        QVERIFY(lc.open(QIODevice::ReadOnly));
        const QList<QByteArray> ledgerLines = lc.readAll().trimmed().split('\n');
        const Ledger& written = m_window->views().ledger->ledger();
        QCOMPARE(ledgerLines.front(), QByteArray("name,layer,head,score"));
        QCOMPARE(ledgerLines.size(), int(written.rows.size()) + 1);
        double sum = 0;
        for (int i = 1; i < ledgerLines.size(); ++i) {
            const QList<QByteArray> cells = ledgerLines[i].split(',');
            const LedgerRow& row = written.rows[std::size_t(i - 1)];
            QCOMPARE(cells.size(), 4);
            QCOMPARE(cells[0].toStdString(), row.name);
            QCOMPARE(cells[1], row.layer >= 0 ? QByteArray::number(row.layer) : QByteArray());
            QCOMPARE(cells[2], row.head >= 0 ? QByteArray::number(row.head) : QByteArray());
            sum += cells[3].toDouble();
        }
        QVERIFY2(std::abs(sum - written.sumOfTerms) <= 1e-4 * std::max(1.0, std::abs(written.sumOfTerms)), qPrintable(QString::number(sum)));
        QVERIFY(!m_window->exporter().exportView("canvas", out.path() + "/x.bmp", 96).isEmpty());  // unknown format: a message
        // The multi-panel figure of several texts.
        QSignalSpy fig(&(*m_window).exporter(), &ExportController::figureWritten);
        QCOMPARE(m_window->exporter().exportPanelFigure({"a red object", "a blue object", "a circle"}, {}, out.path() + "/figure.svg", 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0 && fig.last().at(0).toString().endsWith("figure.svg"), kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QFile ff(out.path() + "/figure.svg");
        QVERIFY(ff.open(QIODevice::ReadOnly));
        const QByteArray fs = ff.readAll();
        QVERIFY(fs.contains("a blue object") && fs.contains("a circle") && fs.contains("<image"));
        // Texts x heads: 2 rows, the input + 2 head columns, captions name the heads.
        const int before = fig.count();
        QCOMPARE(m_window->exporter().exportPanelFigure({"a red object", "a square"}, {HeadId{3, 1}, HeadId{1, 2}}, out.path() + "/heads.svg", 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > before, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QFile hf(out.path() + "/heads.svg");
        QVERIFY(hf.open(QIODevice::ReadOnly));
        const QByteArray hs = hf.readAll();
        QVERIFY(hs.contains("head 3.1: a red object") && hs.contains("head 1.2: a square"));
        QCOMPARE(int(hs.count("<image")), 14);  // 2 rows x (the input + 2 maps of crop, overlay and colorbar each)
        QVERIFY(!m_window->exporter().exportPanelFigure({"a red object"}, {HeadId{9, 0}}, out.path() + "/bad.svg", 96).isEmpty());
        // A figure whose text has a word the model does not know fails with a message and writes
        // nothing; the next figure is written under its own name with its own texts (the failed
        // one's composition once outlived its job and took the next result: a crash).
        {
            const int n = fig.count();
            // Refused before any job: the word and its line are named.
            const QString refused = m_window->exporter().exportPanelFigure({"a photo of a dog"}, {}, out.path() + "/unknown.svg", 96);
            QVERIFY2(refused.contains("line 1: 'photo'"), qPrintable(refused));
            QCOMPARE(m_window->exporter().exportPanelFigure({"a green object", "a star"}, {}, out.path() + "/after.svg", 96), QString());
            QTRY_VERIFY_WITH_TIMEOUT(fig.count() > n, kTimeout);
            QCOMPARE(fig.count(), n + 1);
            QVERIFY(fig.last().at(0).toString().endsWith("after.svg"));
            QCOMPARE(fig.last().at(1).toString(), QString());
            QVERIFY(!QFile::exists(out.path() + "/unknown.svg"));
            QFile af(out.path() + "/after.svg");
            QVERIFY(af.open(QIODevice::ReadOnly));
            const QByteArray as = af.readAll();
            QVERIFY(as.contains("a green object") && as.contains("a star") && !as.contains("dog"));
        }
        // One colour scale: every colorbar shows the same range, recorded beside the figure.
        const int beforeShared = fig.count();
        QCOMPARE(m_window->exporter().exportPanelFigure({"a red object", "a square"}, {HeadId{3, 1}, HeadId{1, 2}}, out.path() + "/shared.svg", 96, true), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > beforeShared && fig.last().at(0).toString().endsWith("shared.svg"), kTimeout);
        QFile rf(out.path() + "/shared.svg.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        QVERIFY(QJsonDocument::fromJson(rf.readAll()).object()["shared_colour_scale"].toBool());
        // The colorbars' range labels: one bar for all four maps (two labels) when they share a
        // scale, against a bar per map with different ranges otherwise.
        auto rangeLabels = [](const QString& file) {
            QFile f(file);
            if (!f.open(QIODevice::ReadOnly)) return QStringList();
            QStringList values;
            const QRegularExpression number(">\\s*(-?[0-9][0-9.]*(e[-+]?[0-9]+)?)\\s*</text>");
            auto it = number.globalMatch(QString::fromUtf8(f.readAll()));
            while (it.hasNext()) values << it.next().captured(1);
            return values;
        };
        QCOMPARE(rangeLabels(out.path() + "/shared.svg").size(), 2);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
            for (const char* name : {"/shared.svg", "/heads.svg"}) QFile::copy(out.path() + name, qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + name);
        const QStringList own = rangeLabels(out.path() + "/heads.svg");
        QCOMPARE(own.size(), 8);
        QVERIFY(QSet<QString>(own.begin(), own.end()).size() > 2);
    }

    void badFilesGiveMessages() {
        QTemporaryDir dir;
        ErrorLog errors(*m_window);
        const QString text = dir.path() + "/notes.png";
        QFile t(text);
        QVERIFY(t.open(QIODevice::WriteOnly));
        t.write("these are notes, not an image\n");
        t.close();
        dropFile(m_window->views().canvas, text);
        QVERIFY(errors.wait(kTimeout));
        QVERIFY2(errors.last().contains("notes.png"), qPrintable(errors.last()));
        const QString corrupt = dir.path() + "/corrupt.png";
        QFile c(corrupt);
        QVERIFY(c.open(QIODevice::WriteOnly));
        c.write(pngHeader(64, 64));
        c.close();
        dropFile(m_window->views().canvas, corrupt);
        QVERIFY(errors.wait(kTimeout));
        QVERIFY(errors.last().contains("corrupt.png"));
        const QString huge = dir.path() + "/huge.png";
        QFile h(huge);
        QVERIFY(h.open(QIODevice::WriteOnly));
        h.write(pngHeader(20000, 20000));
        h.close();
        dropFile(m_window->views().canvas, huge);
        QVERIFY(errors.wait(kTimeout));
        const QString msg = errors.last();
        QVERIFY2(msg.contains("huge.png") && msg.contains("20000 x 20000"), qPrintable(msg));
        QVERIFY(!msg.contains('\n'));
        dropFile(m_window->views().canvas, dir.path() + "/missing.png");
        QVERIFY(errors.wait(kTimeout));
        QVERIFY(errors.last().contains("missing.png"));
        // Still responsive: a good image loads afterwards.
        Arrivals imageReady(*m_window, Aspect::Image);
        m_window->session().openImage(m_data.path() + "/shapes-world/images/000001.png");
        QVERIFY(imageReady.wait(kTimeout));
    }

    void layoutHoldsAt1024x700() {
        // At 1024 x 700 the window is that size and no control of the view bar is cut.
        const QSize before = m_window->size();
        m_window->resize(1024, 700);
        QTRY_COMPARE_WITH_TIMEOUT(m_window->size(), QSize(1024, 700), 5000);
        QVERIFY(m_window->minimumSizeHint().width() <= 1024 && m_window->minimumSizeHint().height() <= 700);
        for (QWidget* w : m_window->centralWidget()->findChildren<QWidget*>()) {
            if (!w->isVisible()) continue;
            if (qobject_cast<QCheckBox*>(w) || qobject_cast<QComboBox*>(w) || qobject_cast<QLabel*>(w))
                QVERIFY2(w->width() >= w->minimumSizeHint().width(), qPrintable(w->objectName() + " " + w->metaObject()->className()));
        }
        auto* method = m_window->findChild<QComboBox*>("methodBox");
        QVERIFY(method);
        QVERIFY(method->width() >= method->sizeHint().width());  // "decomposition" in full
        // Shrunk from 1400 x 900, the docks kept their share: the canvas is not a strip.
        QTRY_VERIFY2_WITH_TIMEOUT(m_window->centralWidget()->height() >= m_window->height() / 2,
                                  qPrintable(QString::number(m_window->centralWidget()->height())), 5000);
        // The head panel in its narrower dock: texts elided to half the chart, bars visible, no
        // label or title cut; the same at the narrowest the dock allows.
        HeadPanel* panel = m_window->views().head;
        QVERIFY(panel->barCount() > 0);
        auto* dock = m_window->findChild<QDockWidget*>("headDock");
        const int dockWidth = dock->width();
        for (int width : {0, 1}) {
            if (width == 1) m_window->resizeDocks({dock}, {dock->minimumSizeHint().width()}, Qt::Horizontal);
            QTest::qWait(50);
            QCustomPlot* plot = panel->plot();
            QCOMPARE(chartTextProblem(plot), QString());
            QVERIFY2(plot->axisRect()->width() >= plot->width() * 2 / 5, qPrintable(QString("%1 of %2").arg(plot->axisRect()->width()).arg(plot->width())));
        }
        m_window->resizeDocks({dock}, {dockWidth}, Qt::Horizontal);
        m_window->resize(before);
    }

    // Made smaller and larger again, the docks come back to their share of the window (they kept
    // the squeezed size, ~190 px, and the head dock's tabs read "He...").
    void docksKeepTheirShareWhenTheWindowGrowsBack() {
        const QSize before = m_window->size();
        m_window->resize(1400, 900);
        QTRY_COMPARE_WITH_TIMEOUT(m_window->size(), QSize(1400, 900), 5000);
        auto* head = m_window->findChild<QDockWidget*>("headDock");
        auto* gallery = m_window->findChild<QDockWidget*>("galleryDock");
        QVERIFY(head && gallery);
        // The user sets the docks' sizes (a share each is taken from this).
        m_window->resizeDocks({head}, {400}, Qt::Horizontal);
        m_window->resizeDocks({gallery}, {330}, Qt::Vertical);
        QTRY_VERIFY_WITH_TIMEOUT(head->width() > 300 && gallery->height() > 250, 5000);
        QCoreApplication::sendPostedEvents();
        const int headWidth = head->width(), galleryHeight = gallery->height();
        m_window->resize(1024, 700);
        QTRY_COMPARE_WITH_TIMEOUT(m_window->size(), QSize(1024, 700), 5000);
        QTRY_VERIFY_WITH_TIMEOUT(head->width() < headWidth, 5000);
        m_window->resize(1400, 900);
        QTRY_COMPARE_WITH_TIMEOUT(m_window->size(), QSize(1400, 900), 5000);
        QTRY_VERIFY2_WITH_TIMEOUT(std::abs(head->width() - headWidth) <= 12 && std::abs(gallery->height() - galleryHeight) <= 12,
                                  qPrintable(QString("head %1 (was %2), gallery %3 (was %4)").arg(head->width()).arg(headWidth).arg(gallery->height()).arg(galleryHeight)), 5000);
        m_window->resize(before);
    }

    void wholeImageOnDemand() {
        // A wide photo: the canvas says the model sees its centre square, and View > Whole image
        // analyses all of it (squashed), remembered, and says so; then back to the crop.
        const QString previous = m_window->views().canvas->imagePath();
        QImage wide(96, 64, QImage::Format_RGB888);
        wide.fill(QColor(30, 160, 40));
        const QString path = m_data.path() + "/wide.png";
        QVERIFY(wide.save(path));
        Arrivals imageReady(*m_window, Aspect::Image);
        m_window->session().openImage(path);
        QVERIFY(imageReady.wait(kTimeout));
        QVERIFY2(m_window->views().canvas->inputNote().contains("the centre 64 x 64 of the 96 x 64 image (16 px cut at the left and right)"),
                 qPrintable(m_window->views().canvas->inputNote()));
        auto* whole = m_window->findChild<QAction*>("wholeImageAction");
        QVERIFY(whole && !whole->isChecked());
        whole->trigger();
        QVERIFY(imageReady.wait(kTimeout));
        QVERIFY2(m_window->views().canvas->inputNote().contains("the whole 96 x 64 image, squashed to 64 x 64"), qPrintable(m_window->views().canvas->inputNote()));
        QVERIFY(m_window->state().view.wholeImage);
        QVERIFY(whole->isChecked());
        whole->trigger();
        QVERIFY(imageReady.wait(kTimeout));
        QVERIFY(m_window->views().canvas->inputNote().contains("centre"));
        QVERIFY(!m_window->state().view.wholeImage);
        m_window->session().openImage(previous);
        QVERIFY(imageReady.wait(kTimeout));
        QCOMPARE(m_window->views().canvas->inputNote(), QString());  // a square image: all of it
    }

    void helpListsShortcutsAndViews() {
        // Help's texts come from the menus themselves and name every view and the README.
        const QString keys = m_window->menus().shortcutsText();
        for (const QString& k : {QString("Ctrl+E"), QString("Ctrl+Shift+E"), QString("Ctrl+R"), QString("F11"), QString("F1")})
            QVERIFY2(keys.contains("<b>" + k + "</b>"), qPrintable(k));
        QVERIFY(keys.contains("Figure builder") && keys.contains("Classroom mode"));
        const QString guide = m_window->menus().guideText();
        for (const char* view : {"Head grid", "Canvas", "Head panel", "Completeness ledger", "Retrieval", "Ablation", "Export"})
            QVERIFY2(guide.contains(view), view);
        QVERIFY(guide.contains("README.md"));
    }

    void classroomWalkthrough() {
        Arrivals heat(*m_window, Aspect::Map);
        m_window->session().setText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0 && !m_window->views().canvas->map().values.empty(), kTimeout);
        const double tickPoints = m_window->views().ledger->plot()->xAxis->tickLabelFont().pointSizeF();
        m_window->classroomMode().setOn(true);
        Classroom* c = m_window->views().classroom;
        QVERIFY(c->isVisible());
        QCOMPARE(c->step(), 0);
        // Scaled as a whole for a projector: the layers chart's ticks, axis title and legend, the
        // summary; the view settings leave the toolbar; the titles wrap instead of being cut.
        QCustomPlot* chart = m_window->views().ledger->plot();
        QVERIFY(chart->xAxis->tickLabelFont().pointSizeF() >= 1.5 * tickPoints);
        QVERIFY(chart->yAxis->labelFont().pointSizeF() >= 1.5 * tickPoints);
        QVERIFY(chart->legend->font().pointSizeF() >= 1.5 * 0.9 * QApplication::font().pointSizeF());
        QVERIFY(QToolTip::font().pointSizeF() >= 1.5 * QApplication::font().pointSizeF());  // tooltips too
        // The ledger's dock widened for it: a third of the screen, or all the centre leaves.
        auto* ledgerDock = m_window->findChild<QDockWidget*>("ledgerDock");
        auto room = [&] { return std::min(m_window->width() / 3, m_window->width() - m_window->centralWidget()->minimumSizeHint().width() - 8); };
        QTRY_VERIFY2_WITH_TIMEOUT(ledgerDock->width() >= room(), qPrintable(QString("%1 < %2").arg(ledgerDock->width()).arg(room())), 5000);
        for (const char* name : {"onlySelectedHeads", "opacityLabel"}) QVERIFY(!m_window->findChild<QWidget*>(name)->isVisible());
        for (QLabel* l : c->findChildren<QLabel*>()) QVERIFY(l->wordWrap());
        QTest::qWait(50);
        for (QLabel* l : c->findChildren<QLabel*>()) {  // not clipped, by its own size or by the panel's
            QVERIFY2(l->contentsRect().height() >= wrappedHeight(l), qPrintable(l->text()));
            QVERIFY2(c->rect().contains(l->geometry()), qPrintable(l->text()));
        }
        // The layers chart in its classroom dock: every legend name, layer label and title whole.
        QCOMPARE(chartTextProblem(chart), QString());
        QVERIFY(c->body().contains("8 x 8 patches"));
        QVERIFY(!m_window->views().canvas->hasMap());  // the patches step shows the bare patches
        ImageCanvas* canvas = m_window->views().canvas;
        canvas->repaint();
        const QRect picture = canvas->shownPicture();
        QVERIFY(picture.width() > 0 && picture.width() == picture.height());
        QTest::keyClick(c, Qt::Key_Right);
        QCOMPARE(c->step(), 1);
        canvas->repaint();
        QCOMPARE(canvas->shownPicture(), picture);  // the picture keeps its place and size through the steps
        QTest::keyClick(c, Qt::Key_Right);
        // Step 3 names the strongest head and highlights it in the grid.
        const QRegularExpression named("strongest head for this image is ([0-9]+\\.[0-9]+)");
        const QRegularExpressionMatch match = named.match(c->body());
        QVERIFY2(match.hasMatch(), qPrintable(c->body()));
        QCOMPARE(m_window->views().grid->selection().size(), qsizetype(1));
        QCOMPARE(m_window->views().grid->selection().front().name(), match.captured(1));
        QTest::keyClick(c, Qt::Key_Right);
        QTest::keyClick(c, Qt::Key_Right);  // stays at the last step
        QCOMPARE(c->step(), 3);
        // Reading the map: it is where it was, and the largest thing on screen (larger than the
        // ledger's plot).
        canvas->repaint();
        QCOMPARE(canvas->shownPicture(), picture);
        QVERIFY(canvas->hasMap());
        const QRect plotArea = chart->axisRect()->rect();
        QVERIFY2(picture.width() * picture.height() > plotArea.width() * plotArea.height(),
                 qPrintable(QString("map %1 px square, ledger plot %2 x %3 (window %4 x %5)").arg(picture.width()).arg(plotArea.width()).arg(plotArea.height()).arg(m_window->width()).arg(m_window->height())));
        QTest::keyClick(c, Qt::Key_Left);
        QCOMPARE(c->step(), 2);
        // In the text box the arrows edit the text, even at its end.
        auto* box = m_window->findChild<QComboBox*>("textBox");
        box->lineEdit()->setFocus();
        box->lineEdit()->end(false);
        QTest::keyClick(box->lineEdit(), Qt::Key_Right);
        QTest::keyClick(box->lineEdit(), Qt::Key_Left);
        QCOMPARE(c->step(), 2);
        QCOMPARE(box->lineEdit()->cursorPosition(), box->lineEdit()->text().size() - 1);
        // Esc leaves and the heatmap comes back.
        m_window->views().classroom->setStep(0);
        QVERIFY(!m_window->views().canvas->hasMap());
        QTest::keyClick(m_window.get(), Qt::Key_Escape);
        QVERIFY(!c->isVisible());
        QCOMPARE(m_window->views().ledger->plot()->xAxis->tickLabelFont().pointSizeF(), tickPoints);
        QVERIFY(QToolTip::font().pointSizeF() < 1.5 * QApplication::font().pointSizeF());
        QVERIFY(m_window->findChild<QWidget*>("onlySelectedHeads")->isVisible());
        QVERIFY(m_window->views().canvas->hasMap());  // the map was kept, not asked for again
        QVERIFY(!m_window->classroomMode().isOn());
        QVERIFY(!m_window->findChild<QAction*>("classroomAction")->isChecked());
    }

    // Any labelled dataset: the task form (labels.csv, classes, groups, reference split).
    void ablationOnAnyLabelledDataset() {
        ErrorLog errors(*m_window);
        AblationPanel* panel = m_window->views().ablation;
        // The open dataset's labels.csv was offered as the task's labels.
        QCOMPARE(QFileInfo(panel->labelsField()), QFileInfo(m_data.path() + "/shapes-world/labels.csv"));
        panel->setTaskForm(m_data.path() + "/shapes-world/labels.csv", "color", "", "background", "");
        panel->requestTask();
        QCOMPARE(errors.count(), 1);  // checked before any job starts
        QVERIFY(errors.last().contains("reference"));
        // Classes: the world's colors, one prompt each.
        const QString classes = m_data.path() + "/colors.tsv";
        QVERIFY(writeColorClasses(classes));
        ensureShapesWorld((m_data.path() + "/reference").toStdString(), 300, 99, "standard", {});
        Arrivals ablation(*m_window, Aspect::Ablation);
        panel->setTaskForm(m_data.path() + "/shapes-world/labels.csv", "color", classes, "background", m_data.path() + "/reference/images");
        panel->requestTask();
        QTRY_VERIFY_WITH_TIMEOUT(ablation.count() > 0, kTimeout);
        const AblationOutcome before = panel->outcome();
        QCOMPARE(int(before.groups.size()), 4);  // the four backgrounds
        QVERIFY2(before.accuracyBefore > 0.9, qPrintable(panel->tableText()));
        // The table says what its groups are: the group column's name heads it, the tooltip spells one out.
        auto* table = panel->findChild<QTableWidget*>();
        QCOMPARE(table->horizontalHeaderItem(0)->text(), QString("background"));
        for (int r = 0; r < table->rowCount(); ++r)  // the names are whole
            QVERIFY2(table->fontMetrics().horizontalAdvance(table->item(r, 0)->text()) < table->horizontalHeader()->sectionSize(0),
                     qPrintable(table->item(r, 0)->text()));
        QVERIFY2(table->toolTip().contains("background " + QString::fromStdString(before.groups.front().group)), qPrintable(table->toolTip()));
        // Every head of layers 1-3 mean-ablated: color accuracy drops.
        for (int l = 1; l < 4; ++l)
            for (int h = 0; h < 4; ++h) panel->setHeadTicked(QString("%1.%2").arg(l).arg(h), true);
        QTRY_VERIFY_WITH_TIMEOUT(panel->outcome().ablated.size() == 12, kTimeout);
        const AblationOutcome after = panel->outcome();
        QCOMPARE(after.accuracyBefore, before.accuracyBefore);
        QVERIFY2(after.accuracyAfter < after.accuracyBefore - 0.02, qPrintable(panel->tableText()));
        m_window->session().ablate({});
    }

    // A task set on one model is that model's: after a switch the form offers only the
    // dataset's labels again, no head stays ticked, the table and chart are gone and the chart's
    // export is refused.
    void ablationFormClearsOnAModelSwitch() {
        QTemporaryDir data;
        ensureShapesWorld((data.path() + "/world").toStdString(), 60, 7171, "standard", {});
        ensureShapesWorld((data.path() + "/reference").toStdString(), 60, 7272, "standard", {});
        const QString classes = data.path() + "/colors.tsv", labels = data.path() + "/world/labels.csv";
        QVERIFY(writeColorClasses(classes));
        StartOptions o = testStart(data.path());
        o.dataset = data.path() + "/world/images";
        MainWindow w(o);
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == o.dataset && st.hasImage(); }, kTimeout));
        AblationPanel* panel = w.views().ablation;
        panel->setTaskForm(labels, "color", classes, "background", data.path() + "/reference/images");
        panel->requestTask();
        QVERIFY(waitUntil(s, [&] { return st.ablation.taskSet; }, kTimeout));
        panel->setHeadTicked("1.2", true);
        QVERIFY(waitUntil(s, [&] { return panel->outcome().ablated.size() == 1; }, kTimeout));
        QVERIFY(!panel->plot()->isHidden());
        QVERIFY(!panel->tableText().isEmpty());
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && st.dataset.folder == o.dataset; }, kTimeout));
        QVERIFY(!st.ablation.taskSet);
        QVERIFY(panel->ticked().isEmpty());
        QVERIFY(panel->outcome().groups.empty());
        QVERIFY(panel->plot()->isHidden());
        QCOMPARE(QFileInfo(panel->labelsField()), QFileInfo(labels));  // offered again, for the new model
        for (const QLineEdit* field : panel->findChildren<QLineEdit*>())
            QVERIFY2(!field->text().contains("colors.tsv") && !field->text().contains("reference"), qPrintable(field->text()));
        const QString refused = w.exporter().exportView("ablation", data.path() + "/ablation.png");
        QVERIFY2(refused.contains("no ablation outcome"), qPrintable(refused));
        QVERIFY(!QFileInfo::exists(data.path() + "/ablation.png"));
    }

    // Last: the demo replaces the model and dataset.
    void ablationUpdatesAtOnce() {
        Arrivals ablation(*m_window, Aspect::Ablation);
        // Its phases are named in order, so a bar that starts over says why.
        QStringList stages;
        QObject watching;
        connect(&m_window->session(), &Session::changed, &watching, [&](Aspects a) {
            const LongJob& j = m_window->state().job;
            if ((a & Aspect::Job) && j.running() && j.label.contains("demo") && !j.stage.isEmpty() && (stages.isEmpty() || stages.last() != j.stage))
                stages << j.stage;
        });
        m_window->session().loadSpuriousDemo();
        const State& st = m_window->state();
        QVERIFY(waitUntil(m_window->session(), [&] { return st.model.name == "shapes-clip-spurious" && st.ablation.taskSet; }, 2 * kTimeout));
        QVERIFY2(stages.size() >= 2, qPrintable(stages.join(" | ") + " / last job: " + m_window->state().job.label));
        for (int i = 0; i < stages.size(); ++i) QVERIFY2(QRegularExpression("^[1-4]/4 ").match(stages[i]).hasMatch(), qPrintable(stages.join(" | ")));
        QVERIFY2(std::is_sorted(stages.begin(), stages.end()), qPrintable(stages.join(" | ")));
        const AblationOutcome before = m_window->views().ablation->outcome();
        QVERIFY(before.ablated.empty());
        QCOMPARE(int(before.groups.size()), 4);  // group x background
        // The legend sits below the bars, not over them.
        QCustomPlot* plot = m_window->views().ablation->plot();
        plot->replot();
        QVERIFY(plot->legend->visible());
        QVERIFY2(!plot->legend->outerRect().intersects(plot->axisRect()->outerRect()), "the ablation legend covers the chart");
        QCOMPARE(before.accuracyBefore, before.accuracyAfter);
        m_window->views().ablation->setHeadTicked("2.3", true);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().ablation->outcome().ablated.size() == 1, kTimeout);
        const AblationOutcome after = m_window->views().ablation->outcome();
        QCOMPARE(after.ablated, std::vector<std::string>{"2.3"});
        QCOMPARE(after.accuracyBefore, before.accuracyBefore);
        QVERIFY(after.accuracyAfter != after.accuracyBefore);
        // The discovered heads raise the worst group (the model leans on the background).
        emit m_window->views().ablation->discoverRequested(6);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->views().ablation->outcome().ablated.size() == 6, kTimeout);
        const AblationOutcome discovered = m_window->views().ablation->outcome();
        QCOMPARE(int(discovered.ablated.size()), 6);
        QVERIFY2(discovered.worstAfter > discovered.worstBefore + 0.05, qPrintable(m_window->views().ablation->tableText()));
    }

    // A second window: a model that does not load falls back to the bundled one; the non-CLIP
    // bundled model is read through its aligner (descriptions, heatmap, ledger).
    void missingModelFallsBackAndNonClipModelsUseTheirAligner() {
        QTemporaryDir data;
        StartOptions o = testStart(data.path());
        o.model = data.path() + "/no-such-model";
        MainWindow w(o);
        ErrorLog errors(w);
        Arrivals model(w, Aspect::Model);
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(model.count() > 0, kTimeout);
        QVERIFY(errors.count() >= 1);
        QVERIFY2(errors.first().contains("no-such-model"), qPrintable(errors.first()));
        QVERIFY2(!w.statusLine().text().contains("opening " + o.model), qPrintable(w.statusLine().text()));  // not left after the failure
        QCOMPARE(QFileInfo(QString::fromStdString(w.state().model.spec)).fileName(), QString("shapes-clip"));
        Arrivals described(w, Aspect::Descriptions);
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0, kTimeout);
        w.session().openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QTRY_VERIFY_WITH_TIMEOUT(model.count() > 1, kTimeout);
        QVERIFY(!w.state().model.clip);
        QVERIFY(QString::fromStdString(w.state().model.aligner).endsWith("aligner.safetensors"));
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 1, kTimeout);
        QCOMPARE(int(w.state().descriptions.size()), 16);
        Arrivals ledger(w, Aspect::Ledger);
        Arrivals image(w, Aspect::Image);
        QVERIFY(showImageAndText(w, data.path() + "/shapes-world/images/000002.png", "a green object"));
        const Ledger& g = w.views().ledger->ledger();
        // Through a per-component aligner: the aligned output is the sum of the aligned terms
        // plus the aligner's bias, so the residual is rounding only.
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.views().ledger->summaryText()));
        QVERIFY(std::any_of(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name == "aligner_bias"; }));
        // Switching the model keeps what the user has open and analyses it again with the new model;
        // nothing of the previous model stays on screen.
        const QString shown = w.views().canvas->imagePath();
        w.session().retrieveText("a green object");
        QTRY_VERIFY_WITH_TIMEOUT(w.views().gallery->globalCount() > 0, kTimeout);
        const int images = image.count(), ledgers = ledger.count(), descriptions = described.count();
        w.session().openModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        QTRY_VERIFY_WITH_TIMEOUT(model.count() > 2, kTimeout);
        QCOMPARE(w.views().gallery->globalCount(), 0);
        QVERIFY(w.views().gallery->resultsFor().isEmpty());
        QTRY_VERIFY_WITH_TIMEOUT(image.count() > images, kTimeout);
        QCOMPARE(w.views().canvas->imagePath(), shown);  // the same image, decomposed by the new model
        QTRY_VERIFY_WITH_TIMEOUT(ledger.count() > ledgers, kTimeout);
        const Ledger& h = w.views().ledger->ledger();
        QVERIFY(std::none_of(h.rows.begin(), h.rows.end(), [](const LedgerRow& r) { return r.name == "aligner_bias"; }));
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > descriptions, kTimeout);  // the same dataset, described again
        QVERIFY(w.state().dataset.ready());
        QCOMPARE(w.views().gallery->globalCount(), 0);  // no stale results reappear
    }

    // A SigLIP checkpoint (random weights, Hugging Face layout with its SentencePiece model) in
    // the application: the grid gets a pooling row, the pooling heads are described, clicked and
    // mapped, and the ledger stays complete with pool.mlp.
    void siglipModelHasAPoolingRow() {
        QTemporaryDir data;
        const std::string dir = data.path().toStdString() + "/siglip";
        QVERIFY(QDir().mkpath(QString::fromStdString(dir)));
        RandomVitSpec s;
        s.layout = RandomLayout::HfSiglip, s.imageSize = 32, s.patchSize = 8, s.width = 64, s.layers = 3, s.textWidth = 64;
        s.textLayers = 1, s.contextLength = 16, s.vocabSize = 90, s.seed = 51;
        writeSafetensorsTensors(dir + "/model.safetensors", randomVitStateDict(s));
        QFile config(QString::fromStdString(dir + "/config.json"));
        QVERIFY(config.open(QIODevice::WriteOnly));
        config.write(R"({"model_type": "siglip", "vision_config": {"num_attention_heads": 2}, "text_config": {"num_attention_heads": 2}})");
        config.close();
        QVERIFY(QFile::copy(VITSCOPE_SOURCE_DIR "/tests/data/siglip-spm/spiece.model", QString::fromStdString(dir + "/spiece.model")));
        StartOptions o = testStart(data.path());
        o.model = QString::fromStdString(dir);
        MainWindow w(o);
        Arrivals model(w, Aspect::Model);
        Arrivals described(w, Aspect::Descriptions);
        ErrorLog errors(w);
        w.resize(1400, 900);
        w.show();
        QVERIFY(model.wait(kTimeout));
        QCOMPARE(w.state().model.family, std::string("siglip"));
        QCOMPARE(w.state().model.poolHeads, 2);
        QCOMPARE(w.views().grid->layers(), 4);  // 3 layers + the pooling row
        QVERIFY(w.views().grid->poolRow());
        w.session().openDataset(data.path() + "/shapes-world/images");  // generated on first use, cached, described
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0 || errors.count() > 0, kTimeout);
        if (errors.count() > 0) QFAIL(qPrintable(errors.first()));
        QCOMPARE(int(w.state().descriptions.size()), 3 * 2 + 2);
        QVERIFY(std::any_of(w.state().descriptions.begin(), w.state().descriptions.end(),
                            [](const HeadDescription& d) { return d.head == "pool.h1" && d.layer == 3 && !d.picks.empty(); }));
        Arrivals ledger(w, Aspect::Ledger);
        Arrivals image(w, Aspect::Image);
        Arrivals heat(w, Aspect::Map);
        QVERIFY(showImageAndText(w, data.path() + "/shapes-world/images/000002.png", "a red circle"));
        const Ledger& g = w.views().ledger->ledger();
        QCOMPARE(g.text, std::string("a red circle"));
        QVERIFY(std::any_of(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name == "pool.mlp"; }));
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.views().ledger->summaryText()));
        QCOMPARE(g.headScores.rows, 4);
        // The pooling row: a click selects pool.h1 and shows its panel; its map is the pooling
        // head's own (another decomposition than the encoder's heads).
        Arrivals panel(w, Aspect::Focus);
        QTest::mouseClick(w.views().grid, Qt::LeftButton, Qt::NoModifier, w.views().grid->cellRect(3, 1).center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(w.views().grid->selection().front().name(), QString("pool.h1"));
        QCOMPARE(w.views().head->layer(), 3);
        const QString title = w.views().head->findChild<QLabel*>("headTitle")->text();
        QVERIFY2(title.contains("pool.h1") && title.contains("not projected"), qPrintable(title));
        const std::vector<float> before = w.views().canvas->map().values;
        auto* only = w.findChild<QCheckBox*>("onlySelectedHeads");
        QVERIFY(only);
        const int maps = heat.count();
        only->setChecked(true);
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > maps, kTimeout);
        QVERIFY(w.views().canvas->map().values != before);
        QVERIFY(std::all_of(w.views().canvas->map().values.begin(), w.views().canvas->map().values.end(), [](float v) { return std::isfinite(v); }));
        for (const QString& method : {"surgery", "raw", "attention", "rollout", "gradcam", "chefer", "legrad"}) {
            const int n = heat.count();
            w.session().setMethod(method);
            QTRY_VERIFY_WITH_TIMEOUT(heat.count() > n, kTimeout);
        }
        // Exports: a pooling head's panel names it; the grid's rows say which is the pooling row.
        QSignalSpy fig(&(w).exporter(), &ExportController::figureWritten);
        const QString svg = data.path() + "/pool-heads.svg";
        QCOMPARE(w.exporter().exportPanelFigure({"a red circle"}, {gridHead(3, 1, 3, true), HeadId{2, 0}}, svg, 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QFile sf(svg);
        QVERIFY(sf.open(QIODevice::ReadOnly));
        const QByteArray sb = sf.readAll();
        QVERIFY(sb.contains("head pool.h1: a red circle") && sb.contains("head 2.0: a red circle"));
        QCOMPARE(w.exporter().exportData("grid", data.path() + "/grid.json"), QString());
        QFile gj(data.path() + "/grid.json");
        QVERIFY(gj.open(QIODevice::ReadOnly));
        const QByteArray gb = gj.readAll();
        QVERIFY2(gb.contains("\"pool\"") && gb.contains("layer 2"), gb.constData());
        QCOMPARE(errors.count(), 0);
        // The classroom walkthrough tells of the probe, not of a class token.
        w.views().classroom->setStep(0);
        QVERIFY2(w.views().classroom->body().contains("no class token") && !w.views().classroom->body().contains("class token is added"),
                 qPrintable(w.views().classroom->body()));
        // Its longer text still fits the panel at the offscreen screen's 800 x 800, step after step.
        w.classroomMode().setOn(true);
        for (int step = 0; step < Classroom::StepCount; ++step) {
            w.views().classroom->setStep(step);
            QTest::qWait(50);
            for (QLabel* l : w.views().classroom->findChildren<QLabel*>()) {
                QVERIFY2(l->contentsRect().height() >= wrappedHeight(l), qPrintable(QString("step %1: %2").arg(step).arg(l->text())));
                QVERIFY2(w.views().classroom->rect().contains(l->geometry()), qPrintable(l->text()));
            }
        }
        w.classroomMode().setOn(false);
        compareWithBundledClip(w);
        if (QTest::currentTestFailed()) return;
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            const QString dir = qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS");
            w.grab().save(dir + "/siglip-window.png");
            QFile::copy(svg, dir + "/siglip-pool-heads.svg");
            w.resize(1024, 700);
            w.classroomMode().setOn(true);
            QTest::qWait(300);
            w.grab().save(dir + "/siglip-classroom-1024.png");
        }
    }

    // The bundled Swin (shapes-swin, through its aligner): stage rows with only the heads each
    // block has, the attention-only methods disabled, heatmaps over the first stage's patches, a
    // complete ledger, clicks on empty cells ignored, exports naming the stages.
    void swinModelHasStageRows() {
        QTemporaryDir data;
        StartOptions o = testStart(data.path());
        o.model = VITSCOPE_SOURCE_DIR "/models/shapes-swin";
        MainWindow w(o);
        Arrivals model(w, Aspect::Model);
        Arrivals described(w, Aspect::Descriptions);
        ErrorLog errors(w);
        w.resize(1400, 900);
        w.show();
        QVERIFY(model.wait(kTimeout));
        const ModelSummary& s = w.state().model;
        QCOMPARE(s.family, std::string("swin"));
        QCOMPARE(s.headsPerLayer, (std::vector<int>{2, 2, 4, 4, 8, 8}));
        QCOMPARE(w.views().grid->layers(), 6);
        QCOMPARE(w.views().grid->heads(), 8);
        QCOMPARE(w.views().grid->headsIn(0), 2);
        QCOMPARE(w.views().grid->rowLabel(2), QString("s1.b0"));
        auto* methods = qobject_cast<QStandardItemModel*>(w.findChild<QComboBox*>("methodBox")->model());
        QVERIFY(methods);
        for (int i : {1, 3, 4, 5, 6, 7}) QVERIFY2(!methods->item(i)->isEnabled(), qPrintable(methods->item(i)->text()));
        QVERIFY(methods->item(0)->isEnabled() && methods->item(2)->isEnabled());
        w.session().openDataset(data.path() + "/shapes-world/images");
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0 || errors.count() > 0, kTimeout);
        if (errors.count() > 0) QFAIL(qPrintable(errors.first()));
        QCOMPARE(int(w.state().descriptions.size()), 28);  // every head the blocks have, no more
        Arrivals ledger(w, Aspect::Ledger);
        Arrivals image(w, Aspect::Image);
        Arrivals heat(w, Aspect::Map);
        QVERIFY(showImageAndText(w, data.path() + "/shapes-world/images/000002.png", "a red circle"));
        const Ledger& g = w.views().ledger->ledger();
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.views().ledger->summaryText()));
        QVERIFY(std::isnan(g.headScores.at(0, 5)) && std::isfinite(g.headScores.at(5, 7)));
        QCOMPARE(int(std::count_if(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.head >= 0; })), 28);
        // The map covers the first stage's 16 x 16 patches.
        auto patchRows = [&](const QString& file) {
            if (!w.exporter().exportData("heatmap", file).isEmpty()) return -1;
            QFile f(file);
            if (!f.open(QIODevice::ReadOnly)) return -2;
            return QJsonDocument::fromJson(f.readAll()).object()["shape"].toArray().at(0).toInt();
        };
        QCOMPARE(patchRows(data.path() + "/map.json"), 16);
        QVERIFY(std::all_of(w.views().canvas->map().values.begin(), w.views().canvas->map().values.end(), [](float v) { return std::isfinite(v); }));
        // An empty cell (layer 0 has 2 heads) takes no click; a real one opens its panel.
        Arrivals panel(w, Aspect::Focus);
        const QList<HeadId> before = w.views().grid->selection();
        QTest::mouseClick(w.views().grid, Qt::LeftButton, Qt::NoModifier, w.views().grid->cellRect(0, 5).center());
        QCOMPARE(w.views().grid->selection(), before);
        QTest::mouseClick(w.views().grid, Qt::LeftButton, Qt::NoModifier, w.views().grid->cellRect(4, 7).center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(w.views().grid->selection().front().name(), QString("4.7"));
        // The panel names the head as the grid's rows do too.
        QVERIFY2(w.views().head->titleText().startsWith("Head 4.7 (s2.b0, head 7)"), qPrintable(w.views().head->titleText()));
        // ... and an MLP as the grid's row (s2.b1), never "mlp.5", in the panel and its neuron heading.
        w.session().focusMlp(5);
        QTRY_VERIFY_WITH_TIMEOUT(w.views().head->neuronsText().contains("plain ViTs"), kTimeout);
        QVERIFY2(w.views().head->titleText().startsWith("s2.b1.mlp"), qPrintable(w.views().head->titleText()));
        QVERIFY(!w.views().head->titleText().contains("mlp.5") && !w.views().head->neuronsText().contains("mlp.5"));
        QCOMPARE(w.state().mlpLabel(5), QString("s2.b1.mlp"));
        w.session().focusHead(HeadId{4, 7});
        // The empty cells are drawn as background, the real ones in the colormap.
        const QImage shot = w.views().grid->grab().toImage();
        const QColor empty = pixelAt(shot, w.views().grid->cellRect(0, 5).center());
        QCOMPARE(empty, w.views().grid->palette().base().color());
        QVERIFY(pixelAt(shot, w.views().grid->cellRect(5, 5).center()) != empty);
        const int maps = heat.count();
        w.session().setMethod("raw");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > maps, kTimeout);
        QCOMPARE(patchRows(data.path() + "/raw.json"), 4);  // the last stage's tokens
        w.session().setMethod("decomposition");
        QCOMPARE(w.exporter().exportData("grid", data.path() + "/grid.json"), QString());
        QFile gj(data.path() + "/grid.json");
        QVERIFY(gj.open(QIODevice::ReadOnly));
        const QByteArray gb = gj.readAll();
        QVERIFY2(gb.contains("layer 2 (s1.b0)") && gb.contains("null"), gb.constData());
        QSignalSpy fig(&(w).exporter(), &ExportController::figureWritten);
        const QString svg = data.path() + "/swin-heads.svg";
        QCOMPARE(w.exporter().exportPanelFigure({"a red circle"}, {HeadId{0, 1}, HeadId{5, 7}}, svg, 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        // Retrieval through a stage-2 head, and an ablation of a whole stage's heads.
        w.views().grid->setSelection({HeadId{4, 2}, HeadId{5, 3}});
        w.session().retrieveText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(w.views().gallery->globalCount() > 0 && w.views().gallery->restrictedCount() > 0, kTimeout);
        Arrivals ablation(w, Aspect::Ablation);
        startColorAblation(w, data.path(), 200, ablation, errors);
        if (QTest::currentTestFailed()) return;
        AblationPanel* abl = w.views().ablation;
        const AblationOutcome baseline = abl->outcome();
        QVERIFY2(baseline.accuracyBefore > 0.9, qPrintable(abl->tableText()));
        for (int l = 4; l < 6; ++l)
            for (int h = 0; h < 8; ++h) abl->setHeadTicked(QString("%1.%2").arg(l).arg(h), true);
        QTRY_VERIFY_WITH_TIMEOUT(abl->outcome().ablated.size() == 16, kTimeout);
        QVERIFY2(abl->outcome().accuracyAfter < baseline.accuracyBefore - 0.02, qPrintable(abl->tableText()));
        QCOMPARE(errors.count(), 0);
        w.views().classroom->setStep(0);
        QVERIFY2(w.views().classroom->body().contains("windows"), qPrintable(w.views().classroom->body()));
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            const QString dir = qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS");
            w.grab().save(dir + "/swin-window.png");
            QFile::copy(svg, dir + "/swin-heads.svg");
            w.resize(1024, 700);
            w.classroomMode().setOn(true);
            QTest::qWait(300);
            w.grab().save(dir + "/swin-classroom-1024.png");
        }
    }

    // MaxViT in the application: the oracle's timm MaxViT with an aligner into shapes-clip fitted
    // here on 64 scenes (a reference model, not a trained one: the test checks the views, not
    // what they say). Rows per attention unit labelled block / grid, the ledger complete with the
    // MBConv branches, a heatmap on the first stage's grid.
    void maxvitModelInTheApplication() {
        QTemporaryDir data;
        const std::string dir = data.path().toStdString() + "/maxvit";
        QVERIFY(QDir().mkpath(QString::fromStdString(dir)));
        for (const char* f : {"model.safetensors", "config.json"})
            QVERIFY(QFile::copy(QString::fromStdString(VITSCOPE_SOURCE_DIR "/../shared/oracle/maxvit-timm/" + std::string(f)), QString::fromStdString(dir + "/" + f)));
        {
            at::NoGradGuard guard;
            const Model maxvit = loadModel(dir);
            const Model clip = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
            ensureShapesWorld(data.path().toStdString() + "/fit", 64, 77, "standard", {});
            std::vector<std::string> images;
            for (int i = 0; i < 64; ++i) images.push_back(data.path().toStdString() + "/fit/images/" + QString("%1.png").arg(i, 6, 10, QChar('0')).toStdString());
            std::vector<std::string> names;
            const at::Tensor terms = stackedTerms(decomposeImages(maxvit, loadAndPreprocess(images, maxvit.preprocess)), &names);
            const at::Tensor target = encodeImages(clip, loadAndPreprocess(images, clip.preprocess)).output;
            ComponentAlignParams params;
            params.steps = 20;
            at::GradMode::set_enabled(true);
            Aligner aligner = fitComponentAligner(terms, names, target, params);
            at::GradMode::set_enabled(false);
            aligner.settings["clip_model"] = VITSCOPE_SOURCE_DIR "/models/shapes-clip";
            saveAligner(aligner, dir + "/aligner.safetensors");
        }
        StartOptions o = testStart(data.path());
        o.model = QString::fromStdString(dir);
        MainWindow w(o);
        Arrivals model(w, Aspect::Model);
        Arrivals described(w, Aspect::Descriptions);
        ErrorLog errors(w);
        w.resize(1400, 900);
        w.show();
        QVERIFY(model.wait(kTimeout));
        QCOMPARE(w.state().model.family, std::string("maxvit"));
        QCOMPARE(w.views().grid->layers(), 6);
        QCOMPARE(w.views().grid->rowLabel(0), QString("s0.b0.block"));
        QCOMPARE(w.views().grid->rowLabel(5), QString("s1.b1.grid"));
        QCOMPARE(w.views().grid->headsIn(0), 1);
        QCOMPARE(w.views().grid->headsIn(5), 2);
        w.session().openDataset(data.path() + "/shapes-world/images");
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0 || errors.count() > 0, kTimeout);
        if (errors.count() > 0) QFAIL(qPrintable(errors.first()));
        QCOMPARE(int(w.state().descriptions.size()), 2 * 1 + 4 * 2);
        Arrivals ledger(w, Aspect::Ledger);
        Arrivals image(w, Aspect::Image);
        Arrivals heat(w, Aspect::Map);
        QVERIFY(showImageAndText(w, data.path() + "/shapes-world/images/000002.png", "a red circle"));
        const Ledger& g = w.views().ledger->ledger();
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.views().ledger->summaryText()));
        QCOMPARE(int(std::count_if(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name.rfind("conv.", 0) == 0; })), 3);
        QVERIFY(std::all_of(w.views().canvas->map().values.begin(), w.views().canvas->map().values.end(), [](float v) { return std::isfinite(v); }));
        // The MBConv column: a cell on each block's first row (0, 2, 4), none between.
        const QImage shot = w.views().grid->grab().toImage();
        for (int row = 0; row < 6; ++row) {
            QVERIFY(!w.views().grid->sideRect(row).isEmpty());
            const bool filled = pixelAt(shot, w.views().grid->sideRect(row).center()) != w.views().grid->palette().base().color();
            QCOMPARE(filled, row % 2 == 0);
        }
        Arrivals panel(w, Aspect::Focus);
        QTest::mouseClick(w.views().grid, Qt::LeftButton, Qt::NoModifier, w.views().grid->cellRect(3, 1).center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(w.views().grid->selection().front().name(), QString("3.1"));
        // Gallery through a grid-attention head, a figure, and an ablation that takes conv.K too.
        w.session().retrieveText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(w.views().gallery->globalCount() > 0 && w.views().gallery->restrictedCount() > 0, kTimeout);
        QSignalSpy fig(&(w).exporter(), &ExportController::figureWritten);
        QCOMPARE(w.exporter().exportPanelFigure({"a red circle"}, {HeadId{3, 1}, HeadId{5, 0}}, data.path() + "/maxvit-heads.svg", 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        Arrivals ablation(w, Aspect::Ablation);
        startColorAblation(w, data.path(), 100, ablation, errors);
        if (QTest::currentTestFailed()) return;
        AblationPanel* abl = w.views().ablation;
        abl->setHeadTicked("3.1", true);
        QTRY_VERIFY_WITH_TIMEOUT(abl->outcome().ablated.size() == 1, kTimeout);
        QVERIFY(std::isfinite(abl->outcome().accuracyAfter));
        QCOMPARE(errors.count(), 0);
        compareWithBundledClip(w);
        if (QTest::currentTestFailed()) return;
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/maxvit-window.png");
    }

    // After a model switch every export carries the new model's values or refuses; nothing of the
    // previous model is written under the new model's fingerprint.
    void exportsFollowAModelSwitch() {
        QTemporaryDir data, out;
        StartOptions o = testStart(data.path());
        MainWindow w(o);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return !st.map.empty() && !st.ledger.rows.empty() && !st.descriptions.empty(); }, kTimeout));
        const std::string clipPrint = st.model.fingerprint;
        const QString image = st.imagePath(), text = st.text;
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.hasModel() && st.model.fingerprint != clipPrint; }, kTimeout));
        // At once: the old model's map, ledger and image are gone, so their exports refuse.
        QVERIFY(st.map.empty() && st.ledger.rows.empty());
        QVERIFY(!w.exporter().exportData("heatmap", out.path() + "/h0.csv").isEmpty());
        QVERIFY(!w.exporter().exportData("ledger", out.path() + "/l0.csv").isEmpty());
        QVERIFY(!w.exporter().exportView("canvas", out.path() + "/c0.svg").isEmpty());
        QVERIFY(!QFile::exists(out.path() + "/h0.csv") && !QFile::exists(out.path() + "/l0.csv"));
        // Then the same image and text, analysed by the new model: its values, its fingerprint.
        QVERIFY(waitUntil(s, [&] { return st.imagePath() == image && !st.map.empty() && !st.ledger.rows.empty(); }, kTimeout));
        QCOMPARE(st.text, text);
        auto record = [&](const QString& file) {
            QFile f(file + ".json");
            return f.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(f.readAll()).object() : QJsonObject();
        };
        const QString newPrint = QString::fromStdString(st.model.fingerprint);
        QCOMPARE(w.exporter().exportData("ledger", out.path() + "/ledger.json"), QString());
        QCOMPARE(record(out.path() + "/ledger.json")["model_fingerprint"].toString(), newPrint);
        QCOMPARE(record(out.path() + "/ledger.json")["total"].toDouble(), st.ledger.total);
        QVERIFY(std::any_of(st.ledger.rows.begin(), st.ledger.rows.end(), [](const LedgerRow& r) { return r.name == "aligner_bias"; }));
        QCOMPARE(w.exporter().exportData("heatmap", out.path() + "/heatmap.csv"), QString());
        QCOMPARE(record(out.path() + "/heatmap.csv")["model_fingerprint"].toString(), newPrint);
        QCOMPARE(w.exporter().exportData("grid", out.path() + "/grid.csv"), QString());
        QCOMPARE(record(out.path() + "/grid.csv")["model_fingerprint"].toString(), newPrint);
        QCOMPARE(w.exporter().exportView("canvas", out.path() + "/canvas.svg"), QString());
        QCOMPARE(record(out.path() + "/canvas.svg")["model_fingerprint"].toString(), newPrint);
        // The grid's numbers are the new model's direct-effect norms, with the MLP column.
        QFile gf(out.path() + "/grid.csv");
        QVERIFY(gf.open(QIODevice::ReadOnly));
        const QStringList lines = QString::fromUtf8(gf.readAll()).trimmed().split('\n');
        QVERIFY2(lines.front().endsWith(",mlp"), qPrintable(lines.front()));
        QCOMPARE(lines.size(), 1 + st.model.gridLayers());
        const QStringList first = lines[1].split(',');  // the row's name, then its heads
        QCOMPARE(first.value(0), QString("layer 0"));
        QVERIFY2(std::abs(first.value(1).toDouble() - st.image.norms.heads.at(0, 0)) <= 1e-4 * std::abs(st.image.norms.heads.at(0, 0)), qPrintable(lines[1]));
    }

    // An error never describes a map that is not shown: with no map, the message is the cause
    // alone; with one, it names the map's text, and that map is on the canvas.
    void errorsDescribeOnlyTheMapShown() {
        QTemporaryDir data;
        StartOptions o = testStart(data.path());
        o.text = "a photo of a dog";  // unknown words from the start: no map ever drawn
        MainWindow w(o);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        ErrorLog errors(w);
        QVERIFY(waitUntil(s, [&] { return st.hasModel(); }, kTimeout));
        // The dataset's first image opens under the text typed: its map fails.
        QVERIFY(waitUntil(s, [&] { return st.hasImage() && errors.count() > 0; }, kTimeout));
        QVERIFY(st.map.empty());
        QVERIFY2(!errors.last().contains("still the one"), qPrintable(errors.last()));
        QVERIFY2(!w.views().canvas->message().contains("still the one"), qPrintable(w.views().canvas->message()));
        QVERIFY(!w.views().canvas->hasMap());
        s.setText("a red object");
        QVERIFY(waitUntil(s, [&] { return !st.map.empty() && st.map.maps.front().text == "a red object"; }, kTimeout));
        // The map asked for came: the error about the earlier one is gone from the status line too.
        QVERIFY2(!st.message.error, qPrintable(st.message.text));
        QCOMPARE(w.statusLine().message(), QString());
        s.setText("a photo of a cat");
        QVERIFY(waitUntil(s, [&] { return errors.last().contains("cat"); }, kTimeout));
        QVERIFY2(w.views().canvas->message().contains("still the one for \"a red object\""), qPrintable(w.views().canvas->message()));
        QVERIFY(w.views().canvas->map().caption.endsWith("a red object"));
    }

    // A failed "open image folder as dataset" leaves the open dataset open and in use.
    void aFailedDatasetOpenKeepsTheDataset() {
        Session& s = m_window->session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.descriptions.empty(); }, kTimeout));
        const QString folder = st.dataset.folder;
        const std::size_t described = st.descriptions.size();
        QTemporaryDir empty;
        ErrorLog errors(*m_window);
        s.openDataset(empty.path());
        QVERIFY(errors.wait(kTimeout));
        QVERIFY2(errors.last().contains(empty.path()) || errors.last().contains("no image"), qPrintable(errors.last()));
        QCOMPARE(st.dataset.folder, folder);
        QCOMPARE(st.descriptions.size(), described);
        QVERIFY(!st.job.running());
        // And the dataset still answers: retrieval and a head's top images.
        s.retrieveText("a red object");
        QVERIFY(waitUntil(s, [&] { return st.retrieval.result.query == "a red object" && !st.retrieval.result.global.empty(); }, kTimeout));
        s.focusHead(HeadId{3, 1});
        QVERIFY(waitUntil(s, [&] { return !st.focus.topImages.empty(); }, kTimeout));
        QCOMPARE(errors.count(), 1);
    }

    // Nothing shown = nothing drawn: the head panel has no chart without a described head (after a
    // model switch, for an MLP), and keeps no other head's texts.
    void theHeadPanelDrawsOnlyWhatItShows() {
        QTemporaryDir data;
        StartOptions o = testStart(data.path());
        MainWindow w(o);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        HeadPanel* panel = w.views().head;
        QVERIFY(waitUntil(s, [&] { return !st.descriptions.empty() && !st.focus.empty(); }, kTimeout));
        QTRY_VERIFY_WITH_TIMEOUT(panel->barCount() > 0 && panel->plot()->isVisible(), kTimeout);
        s.focusMlp(2);
        QCOMPARE(panel->barCount(), 0);
        // (an MLP keeps the chart's place for its neurons' texts: a note, no axes)
        QVERIFY(!panel->plot()->isVisible() || (!panel->plot()->xAxis->visible() && !panel->plot()->yAxis->visible()));
        QVERIFY2(panel->titleText().startsWith("mlp.2"), qPrintable(panel->titleText()));
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit"; }, kTimeout));
        QVERIFY(!panel->plot()->isVisible());
        QCOMPARE(panel->barCount(), 0);
        QCOMPARE(panel->titleText(), QString("Click a head in the grid"));
    }

    // An MLP in the panel lists its neurons by second-order effect on the open image (the core
    // lens's ranking and scores), says why where there are none (the last block), and follows a
    // new image.
    void mlpCellListsItsNeurons() {
        QTemporaryDir data;
        StartOptions o = testStart(data.path());
        MainWindow w(o);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        HeadPanel* panel = w.views().head;
        QVERIFY(waitUntil(s, [&] { return !st.image.path.empty() && !st.text.isEmpty(); }, kTimeout));
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronList()->isVisible() && panel->neuronList()->count() == 12, kTimeout);
        QVERIFY2(panel->neuronsText().contains("512 neurons") && panel->neuronsText().contains(st.text), qPrintable(panel->neuronsText()));
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const at::Tensor pixels = preprocessImage(loadImageRgb(st.image.path), model.preprocess).unsqueeze(0);
        SecondOrderSettings so;
        so.layer = 1;
        const SecondOrderEffects e = SecondOrderLens(model, so).compute(pixels);
        const at::Tensor norms = e.norms[0];
        QCOMPARE(panel->neuronList()->item(0)->data(Qt::UserRole).toLongLong(), norms.argmax().item<int64_t>());
        const NeuronRow first = st.focus.neurons.rows.front();  // (a copy: the state moves on)
        QVERIFY(std::abs(first.norm - norms.max().item<double>()) < 1e-4 * first.norm);
        const at::Tensor text = TextEncoder(model).encode({st.text.toStdString()})[0];
        QVERIFY(std::abs(first.textScore - at::dot(e.effects[0][first.neuron], text).item<double>()) < 1e-4 * std::max(1.0, std::abs(first.textScore)));
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neurons.png");
        // Another text: the same neurons (the image's), scored for the new text.
        s.setText("a blue square");
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.neurons.text == "a blue square" && panel->neuronsText().contains("a blue square"), kTimeout);
        const NeuronRow rescored = st.focus.neurons.rows.front();
        QCOMPARE(rescored.neuron, first.neuron);
        const at::Tensor blue = TextEncoder(model).encode({"a blue square"})[0];
        QVERIFY(std::abs(rescored.textScore - at::dot(e.effects[0][rescored.neuron], blue).item<double>()) < 1e-4 * std::max(1.0, std::abs(rescored.textScore)));
        // The last block: no attention head reads it.
        s.focusMlp(3);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronsText().contains("last block"), kTimeout);
        QVERIFY(!panel->neuronList()->isVisible());
        // A new image: the list is the new image's (never the last one's while it computes).
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronList()->count() == 12, kTimeout);
        QTemporaryDir imgs;
        const std::string next = (imgs.path() + "/scene.png").toStdString();
        cv::Mat red(64, 64, CV_8UC3, cv::Scalar(0, 0, 220));
        writeImage(next, red);
        Arrivals arrived(w, Aspect::Image);
        s.openImage(QString::fromStdString(next));
        QTRY_VERIFY_WITH_TIMEOUT(arrived.count() > 0, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.neurons.layer == 1 && panel->neuronList()->count() == 12, kTimeout);
        const at::Tensor redPixels = preprocessImage(loadImageRgb(next), model.preprocess).unsqueeze(0);
        QCOMPARE(panel->neuronList()->item(0)->data(Qt::UserRole).toLongLong(),
                 SecondOrderLens(model, so).compute(redPixels).norms[0].argmax().item<int64_t>());
        // Another dataset in the middle: the list is the image's, it stays (the top images follow).
        QTemporaryDir other;
        ensureShapesWorld((other.path() + "/w").toStdString(), 40, 5151, "standard", {});
        s.focusMlp(2);
        s.openDataset(other.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == other.path() + "/w/images" && !st.focus.topImages.empty(); }, kTimeout));
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.neurons.layer == 2 && panel->neuronList()->count() == 12, kTimeout);
        // Another model asked for while the neurons compute: nothing of the old model's stays.
        s.focusMlp(1);
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty(); }, kTimeout));
        QCOMPARE(panel->titleText(), QString("Click a head in the grid"));
        QVERIFY(!panel->neuronList()->isVisible() && st.focus.neurons.layer == -1);
        // A classifier through its aligner: sizes only (no text score in its own space).
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronList()->count() == 12, kTimeout);
        QVERIFY2(!panel->neuronsText().contains("score for"), qPrintable(panel->neuronsText()));
        const Model vit = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        const at::Tensor vitPixels = preprocessImage(loadImageRgb(st.image.path), vit.preprocess).unsqueeze(0);
        QCOMPARE(panel->neuronList()->item(0)->data(Qt::UserRole).toLongLong(),
                 SecondOrderLens(vit, so).compute(vitPixels).norms[0].argmax().item<int64_t>());
        // Swin: no second-order lens; the panel says so.
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-swin");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-swin" && !st.image.path.empty(); }, kTimeout));
        s.focusMlp(0);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronsText().contains("plain ViTs"), kTimeout);
        QVERIFY(!panel->neuronList()->isVisible());
    }

    // The token-norm view: the norms of a block's output tokens (the register reference's
    // detection block, then the focused row's), keyboard-reachable in the method box; the bundled
    // model has no outlier token, so no map warns; Swin has no such view.
    void tokenNormView() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return !st.image.path.empty() && !st.map.empty(); }, kTimeout));
        QVERIFY(st.map.maps.front().warning.empty());
        auto* box = w.findChild<QComboBox*>("methodBox");
        QVERIFY(box);
        box->setFocus();
        const int row = box->findText("token-norms");
        QVERIFY(row >= 0);
        box->setCurrentIndex(row);
        QTRY_VERIFY_WITH_TIMEOUT(!st.map.empty() && st.map.maps.front().method == "token-norms", kTimeout);
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const at::Tensor pixels = preprocessImage(loadImageRgb(st.image.path), model.preprocess).unsqueeze(0);
        const RegisterFindParams p = registerFindDefaults(model);
        const TokenNormReport t = tokenNorms(model, pixels, p);
        const auto shownPatches = [&] {
            const FloatGrid& g = st.map.maps.front().patches;
            return floatTensor(g.values);
        };
        const int64_t grid = int64_t(t.gridH) * t.gridW;
        const int detection = p.detectionLayer(model.vision.layers());
        QVERIFY(QString::fromStdString(st.map.maps.front().text).startsWith(QString("block %1 output").arg(detection)));
        QVERIFY((shownPatches() - t.norms[detection].narrow(0, t.prefix, grid)).abs().max().item<double>() < 1e-4);
        // A row in focus: that block's norms.
        s.focusHead(HeadId{1, 2});
        QTRY_VERIFY_WITH_TIMEOUT(QString::fromStdString(st.map.maps.front().text).startsWith("block 1 output"), kTimeout);
        QVERIFY((shownPatches() - t.norms[1].narrow(0, t.prefix, grid)).abs().max().item<double>() < 1e-4);
        const QImage first = w.views().canvas->grab().toImage();
        s.focusMlp(2);
        QTRY_VERIFY_WITH_TIMEOUT(QString::fromStdString(st.map.maps.front().text).startsWith("block 2 output"), kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(w.views().canvas->grab().toImage() != first, kTimeout);
        // Swin: the method is off and the map falls back to the decomposition.
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-swin");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-swin" && !st.image.path.empty() && !st.map.empty(); }, kTimeout));
        QVERIFY(st.map.maps.front().method != "token-norms");
        QVERIFY(std::find(st.model.heatmapMethods.begin(), st.model.heatmapMethods.end(), "token-norms") == st.model.heatmapMethods.end());
    }

    // View > Test-time registers beside the map. A model without outlier tokens: refused, said,
    // nothing changed. The bundled model: the register neurons found over the dataset give a second
    // map, the same text's map of the intervened model computed here in one piece; off again, and
    // another model, take it away.
    void registersBesideTheMap() {
        QTemporaryDir data;
        // A copy of the bundled model with every write into the residual stream scaled down: no token
        // reaches the reference's norm threshold.
        const auto copyModel = [&](const QString& name, const std::function<void(StateDict&)>& change) {
            const QString dir = data.path() + "/" + name;
            if (!QDir().mkpath(dir)) return QString();
            for (const char* f : {"open_clip_config.json", "vocab.txt"})
                if (!QFile::copy(QString(VITSCOPE_SOURCE_DIR "/models/shapes-clip/") + f, dir + "/" + f)) return QString();
            StateDict weights = readSafetensorsFloat(VITSCOPE_SOURCE_DIR "/models/shapes-clip/open_clip_model.safetensors");
            change(weights);
            writeSafetensorsTensors((dir + "/open_clip_model.safetensors").toStdString(), weights);
            return dir;
        };
        const QString quiet = copyModel("shapes-clip-quiet", [](StateDict& w) {
            for (auto& [name, t] : w)
                if (name.rfind("visual.", 0) == 0 && (name.find("c_proj") != std::string::npos || name.find("out_proj") != std::string::npos ||
                                                      name.find("conv1") != std::string::npos || name.find("embedding") != std::string::npos))
                    t = t * 0.01;
        });
        QVERIFY(!quiet.isEmpty());
        {
            StartOptions o = testStart(data.path());
            o.model = quiet;
            MainWindow w(o);
            w.show();
            Session& s = w.session();
            const State& st = s.state();
            QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-clip-quiet" && st.dataset.ready() && !st.map.empty() && !st.job.running(); }, kTimeout));
            ErrorLog errors(w);
            auto* action = w.findChild<QAction*>("registersAction");
            QVERIFY(action && action->isEnabled());
            action->trigger();
            QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, 3 * kTimeout);
            QVERIFY2(errors.first().contains("Test-time registers") && errors.first().contains("threshold"), qPrintable(errors.first()));
            QVERIFY(!st.view.registersBeside && !st.registers && !action->isChecked() && st.map.maps.size() == 1);
        }
        // The bundled model: its last block's tokens sit near the reference's threshold (norm 30, set
        // for ViT-B), so most images have tokens above it and the search finds register neurons.
        const QString dir = VITSCOPE_SOURCE_DIR "/models/shapes-clip";
        StartOptions o = testStart(data.path());
        o.model = dir;
        MainWindow w(o);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-clip" && st.dataset.ready() && !st.map.empty() && !st.text.isEmpty() && !st.job.running(); }, kTimeout));
        const std::vector<HeatmapResult> before = st.map.maps;
        const QImage plain = w.views().canvas->grab().toImage();
        auto* action = w.findChild<QAction*>("registersAction");
        action->trigger();
        QVERIFY(waitUntil(s, [&] { return st.registers.has_value() && st.map.withRegisters && st.map.maps.size() == 2; }, 5 * kTimeout));
        QVERIFY(action->isChecked() && !st.registers->neurons.empty());
        // In process: the register neurons over the dataset's images, the intervened model's map.
        const Model model = loadModel(dir.toStdString());
        std::vector<std::string> paths = DatasetCache(st.dataset.summary.cacheDir).paths();
        const RegisterFindParams find = registerFindDefaults(model);
        if (static_cast<int>(paths.size()) > find.processedImageCnt) paths.resize(static_cast<std::size_t>(find.processedImageCnt));
        Model intervened = model;
        const auto used = applyTestTimeRegisters(intervened, testTimeRegisterDefaults(model), findRegisterNeurons(model, paths, find, {}));
        QCOMPARE(QString::fromStdString(st.registers->neurons.front()), QString("%1.%2").arg(used.front().layer).arg(used.front().neuron));
        const at::Tensor pixels = preprocessImage(loadImageRgb(st.image.path), model.preprocess).unsqueeze(0);
        const Heatmap expected = computeHeatmap(intervened, pixels, TextEncoder(model).encode({st.text.toStdString()})[0], HeatmapParams{});
        const FloatGrid& got = st.map.maps[1].patches;
        QCOMPARE(int64_t(got.values.size()), expected.patches.numel());
        const at::Tensor gotT = floatTensor(got.values);
        QVERIFY((gotT - expected.patches.flatten()).abs().max().item<double>() < 1e-4 * std::max(1.0, expected.patches.abs().max().item<double>()));
        QVERIFY(st.map.maps[0].patches.values == before.front().patches.values);  // the model's own map is unchanged
        QVERIFY(st.map.maps[1].patches.values != before.front().patches.values);
        QTRY_VERIFY_WITH_TIMEOUT(w.views().canvas->grab().toImage() != plain, kTimeout);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/registers.png");
        // Off: the one map again; on again: no second search.
        action->trigger();
        QVERIFY(waitUntil(s, [&] { return !st.map.withRegisters && st.map.maps.size() == 1; }, kTimeout));
        action->trigger();
        QVERIFY(waitUntil(s, [&] { return st.map.withRegisters && st.map.maps.size() == 2; }, kTimeout));
        QVERIFY(!st.job.running());
        // Another model: the intervened model goes with the old one.
        s.openModel(quiet);
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-clip-quiet" && !st.map.empty(); }, kTimeout));
        QVERIFY(!st.registers && !st.view.registersBeside && !action->isChecked() && st.map.maps.size() == 1);
    }

    // The projector: PCA of the dataset as core lays it out, coloured by the text's scores (again
    // for a new text); a click on a point opens its image; a rectangle picks the images inside
    // it; through the selected heads (again when they change); text axes equal to the scores'
    // differences; another dataset is laid out again, another model clears it.
    void projectorLaysOutTheDataset() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1400, 1000);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.text.isEmpty() && !st.map.empty() && !st.job.running(); }, kTimeout));
        Projector* p = w.views().projector;
        raiseDockOf(p);
        auto* method = p->findChild<QComboBox*>("projectorMethod");
        method->setCurrentText("pca");
        QTest::mouseClick(p->findChild<QPushButton*>("projectorLayOut"), Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return !st.projection.result.x.empty() && !st.projection.computing; }, kTimeout));
        const DatasetCache cache(st.dataset.summary.cacheDir);
        const CacheView view(cache, nullptr);
        const Layout pca = pcaLayout(imagePoints(view, {}, {}));
        const ProjectionResult r = st.projection.result;
        QCOMPARE(int64_t(r.x.size()), int64_t(pca.rows()));
        for (Eigen::Index i = 0; i < pca.rows(); ++i)
            QVERIFY(std::abs(r.x[std::size_t(i)] - pca(i, 0)) < 1e-4 && std::abs(r.y[std::size_t(i)] - pca(i, 1)) < 1e-4);
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const TextEncoder encoder(model);
        const auto scoresOf = [&](const std::string& text, const std::vector<Component>& set) {
            return textScores(view, encoder.encode({text})[0], set);
        };
        const at::Tensor colour = scoresOf(st.text.toStdString(), {});
        QCOMPARE(int64_t(r.color.size()), colour.numel());
        QVERIFY((floatTensor(r.color) - colour).abs().max().item<double>() < 1e-5);
        // A click on the rightmost point opens its image.
        const int right = int(std::max_element(r.x.begin(), r.x.end()) - r.x.begin());
        QPointF at;
        QVERIFY(p->pointPosition(right, &at));
        QTest::mouseClick(p->plot(), Qt::LeftButton, {}, at.toPoint());
        QVERIFY(waitUntil(s, [&] { return st.image.path == r.paths[std::size_t(right)]; }, kTimeout));
        // Select, and a rectangle over the left half of the plot: the images left of its middle.
        QTest::mouseClick(p->findChild<QPushButton*>("projectorSelect"), Qt::LeftButton);
        const QRect area = p->plot()->axisRect()->rect();
        const QPoint from(area.left() + 2, area.top() + 2), to(area.center().x(), area.bottom() - 2);
        QTest::mousePress(p->plot(), Qt::LeftButton, {}, from);
        QMouseEvent move(QEvent::MouseMove, QPointF(to), p->plot()->mapToGlobal(QPointF(to)), Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(p->plot(), &move);
        QTest::mouseRelease(p->plot(), Qt::LeftButton, {}, to);
        QVERIFY(waitUntil(s, [&] { return !st.projection.picked.isEmpty(); }, kTimeout));
        // The points inside the dragged rectangle (a pixel's slack at its edges either way).
        const auto inside = [&](std::size_t i, double slack) {
            const double px = p->plot()->xAxis->coordToPixel(r.x[i]), py = p->plot()->yAxis->coordToPixel(r.y[i]);
            return px >= from.x() - slack && px <= to.x() + slack && py >= from.y() - slack && py <= to.y() + slack;
        };
        for (std::size_t i = 0; i < r.x.size(); ++i) {
            const bool picked = st.projection.picked.contains(int(i));
            QVERIFY2(!inside(i, -1.5) || picked, qPrintable(QString("row %1 inside the rectangle, not picked").arg(i)));
            QVERIFY2(inside(i, 1.5) || !picked, qPrintable(QString("row %1 outside the rectangle, picked").arg(i)));
        }
        QCOMPARE(p->picked()->count(), std::min<int>(200, st.projection.picked.size()));
        // A lasso: a triangle over the right of the plot picks the points inside it.
        {
            // Over the points as drawn now (the picked strip took some of the plot's height, and the
            // equal axis scales may leave empty bands beside them).
            QRectF now;
            for (std::size_t i = 0; i < r.x.size(); ++i)
                now |= QRectF(p->plot()->xAxis->coordToPixel(r.x[i]), p->plot()->yAxis->coordToPixel(r.y[i]), 1, 1);
            now &= QRectF(p->plot()->axisRect()->rect()).adjusted(2, 2, -2, -2);
            const QCPRange xBefore = p->plot()->xAxis->range();
            const QPolygonF triangle{QPointF(now.center().x(), now.top()), QPointF(now.right(), now.top()), QPointF(now.right(), now.bottom())};
            QTest::mousePress(p->plot(), Qt::LeftButton, {}, triangle[0].toPoint());
            for (const QPointF& corner : {triangle[1], triangle[2]}) {
                QMouseEvent drag(QEvent::MouseMove, corner, p->plot()->mapToGlobal(corner), Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
                QCoreApplication::sendEvent(p->plot(), &drag);
            }
            QTest::mouseRelease(p->plot(), Qt::LeftButton, {}, triangle[2].toPoint());
            QVERIFY(waitUntil(s, [&] { return !st.projection.picked.isEmpty() && st.projection.picked != QVector<int>{}; }, kTimeout));
            const QCPRange xShown = p->plot()->xAxis->range();
            int inTriangle = 0;
            for (std::size_t i = 0; i < r.x.size(); ++i) {
                const QPointF at(p->plot()->xAxis->coordToPixel(r.x[i]), p->plot()->yAxis->coordToPixel(r.y[i]));
                const bool picked = st.projection.picked.contains(int(i));
                const bool inside = triangle.containsPoint(at, Qt::OddEvenFill);
                inTriangle += inside;
                // (a pixel's slack at its edges either way)
                double edge = 1e9;
                for (int k = 0; k < 3; ++k) {
                    const QPointF a = triangle[k], b = triangle[(k + 1) % 3], ab = b - a;
                    const double t = std::clamp(QPointF::dotProduct(at - a, ab) / QPointF::dotProduct(ab, ab), 0.0, 1.0);
                    const QPointF d = at - (a + t * ab);
                    edge = std::min(edge, std::hypot(d.x(), d.y()));
                }
                QVERIFY2(picked == inside || edge < 1.5, qPrintable(QString("row %1 at (%2, %3): picked %4, inside %5").arg(i).arg(at.x()).arg(at.y()).arg(picked).arg(inside)));
            }
            QVERIFY(inTriangle > 0);
            QCOMPARE(xShown, xBefore);  // a pick leaves the view as it was
            QCOMPARE(p->plot()->plottableCount(), p->plot()->graphCount());  // the lasso's outline is gone
        }
        // Another text: the colours are its scores.
        s.setText("a blue square");
        QVERIFY(waitUntil(s, [&] { return st.projection.result.request.colorText == "a blue square"; }, kTimeout));
        const at::Tensor blue = scoresOf("a blue square", {});
        QCOMPARE(int64_t(st.projection.result.color.size()), blue.numel());
        QVERIFY((floatTensor(st.projection.result.color) - blue).abs().max().item<double>() < 1e-5);
        // Through the selected heads, laid out again when the selection changes.
        s.select({HeadId{3, 1}});
        p->findChild<QComboBox*>("projectorPoints")->setCurrentIndex(1);
        QTest::mouseClick(p->findChild<QPushButton*>("projectorLayOut"), Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return st.projection.result.components == std::vector<std::string>{"3.1"}; }, kTimeout));
        const Layout through = pcaLayout(imagePoints(view, view.parseList("3.1"), {}));
        QVERIFY(std::abs(st.projection.result.x[0] - through(0, 0)) < 1e-4 && std::abs(st.projection.result.y[5] - through(5, 1)) < 1e-4);
        s.select({HeadId{2, 0}});
        QVERIFY(waitUntil(s, [&] { return st.projection.result.components == std::vector<std::string>{"2.0"}; }, kTimeout));
        // Text axes: x = score(A) - score(B), y = score(C) - score(D), through the heads.
        method->setCurrentText("text-axes");
        const char* texts[4] = {"a red circle", "a blue circle", "a star", "a square"};
        for (int i = 0; i < 4; ++i) p->findChild<QLineEdit*>(QString("projectorAxis%1").arg(i))->setText(texts[i]);
        QTest::mouseClick(p->findChild<QPushButton*>("projectorLayOut"), Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return st.projection.result.request.method == "text-axes" && !st.projection.computing; }, kTimeout));
        const std::vector<Component> head = view.parseList("2.0");
        const at::Tensor ax = scoresOf(texts[0], head) - scoresOf(texts[1], head), ay = scoresOf(texts[2], head) - scoresOf(texts[3], head);
        QVERIFY(std::abs(st.projection.result.x[7] - ax[7].item<double>()) < 1e-4 && std::abs(st.projection.result.y[7] - ay[7].item<double>()) < 1e-4);
        // Coloured by a labels.csv column: each point's value is its image's row, one legend entry per value.
        auto* colourBox = p->findChild<QComboBox*>("projectorColour");
        const int colourAt = colourBox->findData(QString("color"));
        QVERIFY2(colourAt > 0, "the dataset's labels.csv columns are offered");
        colourBox->setCurrentIndex(colourAt);
        emit colourBox->activated(colourAt);
        QVERIFY(waitUntil(s, [&] { return st.projection.result.labels.size() == st.projection.result.x.size(); }, kTimeout));
        {
            const ProjectionResult& now = st.projection.result;
            const QString labelsFile = QFileInfo(st.dataset.folder).dir().filePath("labels.csv");
            std::map<QString, QString> colourOf;
            for (const auto& row : readCsvTable(labelsFile.toStdString()))
                colourOf[QFileInfo(QFileInfo(labelsFile).dir().filePath(QString::fromStdString(row.at("file")))).canonicalFilePath()] = QString::fromStdString(row.at("color"));
            std::set<std::string> values;
            for (std::size_t i = 0; i < now.paths.size(); ++i) {
                QCOMPARE(QString::fromStdString(now.labels[i]), colourOf.at(QFileInfo(QString::fromStdString(now.paths[i])).canonicalFilePath()));
                values.insert(now.labels[i]);
            }
            QVERIFY(now.color.empty());
            QCOMPARE(p->plot()->graphCount(), int(std::min<std::size_t>(values.size(), 10)));
            QVERIFY(p->plot()->legend->visible());
            int counted = 0;
            std::set<QRgb> colours;
            for (int g = 0; g < p->plot()->graphCount(); ++g) {
                counted += p->plot()->graph(g)->dataCount();
                colours.insert(p->plot()->graph(g)->scatterStyle().pen().color().rgb());
                const QString name = p->plot()->graph(g)->name();
                QVERIFY2(name.endsWith(QString("(%1)").arg(p->plot()->graph(g)->dataCount())), qPrintable(name));
            }
            QCOMPARE(counted, int(now.x.size()));
            QCOMPARE(int(colours.size()), p->plot()->graphCount());
            QVERIFY(p->statusText().contains("labels column \"color\""));
            // Hovering a point shows its image, name and value.
            const QString tip = p->hoverText(3);
            QVERIFY2(tip.contains("<img src=") && tip.contains(QFileInfo(QString::fromStdString(now.paths[3])).fileName()) &&
                         tip.contains("color: " + QString::fromStdString(now.labels[3])),
                     qPrintable(tip));
            // Another text leaves the labels' colours; the figure export says what colours it.
            s.setText("a green heart");
            QVERIFY(waitUntil(s, [&] { return !st.map.empty() && st.map.maps.front().text == "a green heart" && !st.job.running(); }, kTimeout));
            QVERIFY(st.projection.result.color.empty() && st.projection.result.labels.size() == now.x.size());
            QTemporaryDir out;
            const QString svg = out.path() + "/projector.svg";
            p->plot()->setFocus();  // the keyboard's cursor on a point: on screen, not in the figure
            QTest::keyClick(p->plot(), Qt::Key_Right);
            QVERIFY(p->cursorRow() >= 0);
            QCOMPARE(w.exporter().exportView("projector", svg, 96), QString());
            {
                QFile figure(svg);
                QVERIFY(figure.open(QIODevice::ReadOnly));
                QVERIFY(!figure.readAll().toLower().contains("#c81e1e"));
            }
            QVERIFY(p->plot()->graph(p->plot()->graphCount() - 1)->visible());  // back on screen
            QFile record(svg + ".json");
            QVERIFY(record.open(QIODevice::ReadOnly));
            const QJsonObject proj = QJsonDocument::fromJson(record.readAll()).object().value("projection").toObject();
            QCOMPARE(proj.value("colour").toString(), QString("color"));
            QCOMPARE(proj.value("method").toString(), QString("text-axes"));
        }
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            raiseDockOf(p);
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/projector.png");
        }
        // Another dataset: laid out again (its images, still coloured by the column); another model: cleared.
        QTemporaryDir other;
        ensureShapesWorld((other.path() + "/w").toStdString(), 30, 7171, "standard", {});
        s.openDataset(other.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == other.path() + "/w/images" && st.projection.result.x.size() == 30; }, kTimeout));
        QVERIFY(st.projection.picked.isEmpty());
        QCOMPARE(st.projection.result.labels.size(), std::size_t(30));
        // Heads as points: each head's unit mean direction over the images (core's headPoints), laid
        // out and labelled; a click focuses a head, picked points become the grid's selection.
        method->setCurrentText("pca");
        p->findChild<QComboBox*>("projectorPoints")->setCurrentIndex(2);
        QTest::mouseClick(p->findChild<QPushButton*>("projectorLayOut"), Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return st.projection.result.pointNames.size() == 16 && !st.projection.computing; }, kTimeout));
        {
            const ProjectionResult hr = st.projection.result;
            const DatasetCache otherCache(st.dataset.summary.cacheDir);
            const CacheView otherView(otherCache, nullptr);
            const Layout heads = pcaLayout(headPoints(otherView, {}, {}));
            for (Eigen::Index i = 0; i < heads.rows(); ++i) {
                QCOMPARE(hr.pointNames[std::size_t(i)], otherView.heads()[std::size_t(i)].name());
                QVERIFY(std::abs(hr.x[std::size_t(i)] - heads(i, 0)) < 1e-4 && std::abs(hr.y[std::size_t(i)] - heads(i, 1)) < 1e-4);
            }
            QCOMPARE(hr.labels[5], std::string("layer 1"));
            QVERIFY(p->statusText().startsWith("16 heads"));
            QVERIFY(!p->findChild<QComboBox*>("projectorColour")->isEnabled());
            QTest::mouseClick(p->findChild<QPushButton*>("projectorSelect"), Qt::LeftButton);  // Select off: a click opens
            QVERIFY(!p->findChild<QPushButton*>("projectorSelect")->isChecked());
            QPointF at5;
            QVERIFY(p->pointPosition(5, &at5));
            QTest::mouseClick(p->plot(), Qt::LeftButton, {}, at5.toPoint());
            QVERIFY(waitUntil(s, [&] { return st.focus.head.name() == QString::fromStdString(hr.pointNames[5]); }, kTimeout));
            QCOMPARE(st.selection.size(), 1);  // the clicked head is selected too
            QCOMPARE(st.selection.front().name(), QString::fromStdString(hr.pointNames[5]));
            emit p->rowsPicked({2, 9});
            QCOMPARE(st.selection, (QList<HeadId>{HeadId{0, 2}, HeadId{2, 1}}));
            QVERIFY(p->picked()->isHidden());
            if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) p->grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/projector-heads.png");
        }
        // Heads' principal directions: three points a head (core's headDirectionPoints), named
        // "L.H #k"; a click on a head's second direction focuses that head, picks select each head once.
        p->findChild<QComboBox*>("projectorPoints")->setCurrentIndex(3);
        QTest::mouseClick(p->findChild<QPushButton*>("projectorLayOut"), Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return st.projection.result.pointNames.size() == 48 && !st.projection.computing; }, kTimeout));
        {
            const ProjectionResult dr = st.projection.result;
            const DatasetCache dirCache(st.dataset.summary.cacheDir);
            const CacheView dirView(dirCache, nullptr);
            const Layout dirs = pcaLayout(headDirectionPoints(dirView, {}, 3, {}));
            for (Eigen::Index i = 0; i < dirs.rows(); ++i)
                QVERIFY(std::abs(dr.x[std::size_t(i)] - dirs(i, 0)) < 1e-4 && std::abs(dr.y[std::size_t(i)] - dirs(i, 1)) < 1e-4);
            QCOMPARE(dr.pointNames[16], std::string("1.1 #2"));
            QVERIFY2(p->statusText().contains("principal directions"), qPrintable(p->statusText()));
            // A second direction with no other point within 5 px: a click there is unambiguous.
            int row = -1;
            QPointF at;
            for (int i = 1; i < 48 && row < 0; i += 3) {
                QPointF pi, pj;
                QVERIFY(p->pointPosition(i, &pi));
                bool alone = true;
                for (int j = 0; j < 48; ++j) alone = alone && (j == i || !p->pointPosition(j, &pj) || QLineF(pi, pj).length() > 5);
                if (alone) row = i, at = pi;
            }
            QVERIFY(row >= 0);
            const QString head = QString::fromStdString(dr.pointNames[std::size_t(row)]).section(' ', 0, 0);
            QTest::mouseClick(p->plot(), Qt::LeftButton, {}, at.toPoint());
            QVERIFY(waitUntil(s, [&] { return st.focus.head.name() == head; }, kTimeout));
            emit p->rowsPicked({15, 16, 17, 0});
            QCOMPARE(st.selection, (QList<HeadId>{HeadId{1, 1}, HeadId{0, 0}}));
            if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
                p->grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/projector-head-directions.png");
        }
        auto* select = p->findChild<QPushButton*>("projectorSelect");
        if (!select->isChecked()) QTest::mouseClick(select, Qt::LeftButton);
        QVERIFY(select->isChecked());
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty(); }, kTimeout));
        QVERIFY(st.projection.result.x.empty() && !st.projection.made);
        QCOMPARE(p->plot()->graphCount(), 0);
        QVERIFY(!select->isChecked());  // nothing to pick in the new model's empty projector
    }

    // Many points (above 20,000) are drawn as pixels of the graphs' colours: a synthetic layout of
    // two colour groups, each point's pixel in its group's colour, the legend with both.
    void projectorDrawsManyPointsAsPixels() {
        LoneProjector lone(900, 600);
        Projector& p = lone.p;
        State& s = lone.s;
        ProjectionResult& r = s.projection.result;
        r.request.method = "pca";
        r.request.colorColumn = "color";
        for (int i = 0; i < 30000; ++i) {  // two bands: red on the left, blue on the right
            const bool red = i % 2 == 0;
            r.x.push_back(float((red ? 0 : 10) + (i % 97) / 97.0));
            r.y.push_back(float((i / 97) % 50));
            r.paths.push_back("p" + std::to_string(i) + ".png");
            r.labels.push_back(red ? "red" : "blue");
        }
        p.render(s, Aspect::Projection);
        QCOMPARE(p.plot()->graphCount(), 2);
        QVERIFY(p.plot()->legend->visible());
        const QImage img = p.plot()->grab().toImage();
        for (int i : {727, 824, 1212, 1309}) {  // points off the grid lines (drawn over the points)
            QPointF at;
            QVERIFY(p.pointPosition(i, &at));
            const QColor c = img.pixelColor(at.toPoint());
            const QColor want = i % 2 == 0 ? QColor("red") : QColor("blue");
            QVERIFY2(c == want, qPrintable(QString("point %1 at (%2, %3): %4, not %5").arg(i).arg(at.x()).arg(at.y()).arg(c.name(), want.name())));
        }
        // The raster is kept between frames of the same view; a pan (from the keyboard) draws the
        // points where they are now, not where they were.
        p.plot()->setFocus();
        const double before = p.plot()->xAxis->range().lower;
        QTest::keyClick(p.plot(), Qt::Key_Right, Qt::ShiftModifier);
        QVERIFY(p.plot()->xAxis->range().lower > before);
        const QImage panned = p.plot()->grab().toImage();
        int checked = 0;
        for (int i : {727, 824, 1212, 1309, 2001, 2002}) {
            QPointF at;
            QVERIFY(p.pointPosition(i, &at));
            if (!p.plot()->axisRect()->rect().adjusted(2, 2, -2, -2).contains(at.toPoint())) continue;
            ++checked;
            const QColor want = i % 2 == 0 ? QColor("red") : QColor("blue");
            QVERIFY2(panned.pixelColor(at.toPoint()) == want, qPrintable(QString("point %1 after the pan: %2").arg(i).arg(panned.pixelColor(at.toPoint()).name())));
        }
        QVERIFY(checked >= 4);
    }

    // A labels column's legend on a short plot (a bottom dock at 1024 x 768): every entry inside
    // the plot's axis rect, in as many columns as that takes.
    void projectorLegendFitsAShortPlot() {
        LoneProjector lone(900, 250);
        Projector& p = lone.p;
        QVERIFY(QTest::qWaitForWindowExposed(&p));
        State& s = lone.s;
        ProjectionResult& r = s.projection.result;
        r.request.method = "umap";
        r.request.colorColumn = "value";
        for (int i = 0; i < 600; ++i) {
            r.x.push_back(float(i % 30));
            r.y.push_back(float(i / 30));
            r.paths.push_back("p" + std::to_string(i) + ".png");
            r.labels.push_back("value " + std::to_string(i % 12));  // 12 values: 9 named, "other"
        }
        p.render(s, Aspect::Projection);
        QCustomPlot* plot = p.plot();
        QVERIFY(plot->legend->visible() && plot->graphCount() == 10);
        const QRect inside = plot->axisRect()->rect();
        int entries = 0;
        for (int i = 0; i < plot->legend->itemCount(); ++i) {
            if (!plot->legend->item(i)) continue;  // an empty cell of the last column
            ++entries;
            const QRect item = plot->legend->item(i)->outerRect();
            QVERIFY2(inside.contains(item), qPrintable(QString("entry %1 at %2,%3 %4x%5 outside the plot %6,%7 %8x%9").arg(i).arg(item.x()).arg(item.y())
                                                           .arg(item.width()).arg(item.height()).arg(inside.x()).arg(inside.y()).arg(inside.width()).arg(inside.height())));
        }
        QCOMPARE(entries, 10);
        QVERIFY(plot->legend->wrap() < 10);  // more than one column
        // Picks show their strip under the plot, which gets shorter: the legend follows.
        p.resize(900, 330);
        QTRY_VERIFY(plot->legend->wrap() == 10);  // one column fits the taller plot
        const int tall = plot->axisRect()->height();
        for (int i = 0; i < 30; ++i) s.projection.picked << i;
        p.render(s, Aspect::Projection);
        QTRY_VERIFY(plot->axisRect()->height() < tall);
        const auto allInside = [&] {
            for (int i = 0; i < plot->legend->itemCount(); ++i)
                if (plot->legend->item(i) && !plot->axisRect()->rect().contains(plot->legend->item(i)->outerRect())) return false;
            return true;
        };
        QTRY_VERIFY(allInside());
    }

    // The projector from the keyboard: Tab reaches the plot, arrows move a cursor from point to
    // point (the nearest one in the arrow's direction), Space picks and unpicks, Enter opens,
    // Escape clears, Ctrl+A picks the points in view, + zooms around the cursor.
    void projectorFromTheKeyboard() {
        LoneProjector lone(700, 600);
        Projector& p = lone.p;
        QVERIFY(QTest::qWaitForWindowExposed(&p));
        State& s = lone.s;
        ProjectionResult& r = s.projection.result;
        r.request.method = "pca";
        for (int i = 0; i < 25; ++i) {  // a 5 x 5 grid, row i at (i % 5, i / 5)
            r.x.push_back(float(i % 5));
            r.y.push_back(float(i / 5));
            r.paths.push_back("p" + std::to_string(i) + ".png");
        }
        p.render(s, Aspect::Projection);
        QVector<int> picked;
        QString opened;
        connect(&p, &Projector::rowsPicked, &p, [&](const QVector<int>& rows) {
            picked = rows;
            s.projection.picked = rows;
            p.render(s, Aspect::Projection);
        });
        connect(&p, &Projector::imageActivated, &p, [&](const QString& path) { opened = path; });
        p.activateWindow();  // (focus moves only in the active window)
        QVERIFY(QTest::qWaitForWindowActive(&p));
        auto* select = p.findChild<QPushButton*>("projectorSelect");
        select->setFocus();
        QTest::keyClick(select, Qt::Key_Tab);
        QCOMPARE(QApplication::focusWidget(), static_cast<QWidget*>(p.plot()));
        QCOMPARE(p.cursorRow(), -1);
        QTest::keyClick(p.plot(), Qt::Key_Right);  // the first step: the point nearest the middle
        QCOMPARE(p.cursorRow(), 12);
        QTest::keyClick(p.plot(), Qt::Key_Right);
        QCOMPARE(p.cursorRow(), 13);
        QTest::keyClick(p.plot(), Qt::Key_Up);  // up the screen: a larger y
        QCOMPARE(p.cursorRow(), 18);
        QTest::keyClick(p.plot(), Qt::Key_Space);
        QCOMPARE(picked, QVector<int>({18}));
        QCOMPARE(p.highlighted(), 1);
        QTest::keyClick(p.plot(), Qt::Key_Left);
        QCOMPARE(p.cursorRow(), 17);
        QTest::keyClick(p.plot(), Qt::Key_Space);
        QCOMPARE(picked, QVector<int>({18, 17}));
        QTest::keyClick(p.plot(), Qt::Key_Space);  // again: unpicked
        QCOMPARE(picked, QVector<int>({18}));
        for (int i = 0; i < 4; ++i) QTest::keyClick(p.plot(), Qt::Key_Left);  // stops at the edge
        QCOMPARE(p.cursorRow(), 15);
        QTest::keyClick(p.plot(), Qt::Key_Return);
        QCOMPARE(opened, QString("p15.png"));
        // The cursor is drawn: a red ring around its point, and nowhere else.
        QPointF at;
        QVERIFY(p.pointPosition(15, &at));
        const QImage img = p.plot()->grab().toImage();
        const auto reddish = [&](const QPoint& c, int radius) {
            int n = 0;
            for (int y = c.y() - radius; y <= c.y() + radius; ++y)
                for (int x = c.x() - radius; x <= c.x() + radius; ++x) {
                    const QColor q = img.pixelColor(x, y);
                    n += q.red() > 150 && q.green() < 90 && q.blue() < 90;
                }
            return n;
        };
        QVERIFY(reddish(at.toPoint(), 9) > 10);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) img.save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/projector-cursor.png");
        QPointF other;
        QVERIFY(p.pointPosition(13, &other));
        QCOMPARE(reddish(other.toPoint(), 9), 0);
        QTest::keyClick(p.plot(), Qt::Key_Escape);
        QVERIFY(picked.isEmpty());
        QTest::keyClick(p.plot(), Qt::Key_A, Qt::ControlModifier);
        QCOMPARE(picked.size(), 25);
        const double width = p.plot()->xAxis->range().size();
        QTest::keyClick(p.plot(), Qt::Key_Plus);
        QVERIFY(std::abs(p.plot()->xAxis->range().size() - width / 1.25) < 1e-9);
        QPointF zoomed;  // around the cursor: its point stays where it was
        QVERIFY(p.pointPosition(15, &zoomed));
        QVERIFY2((zoomed - at).manhattanLength() < 1.5, qPrintable(QString("(%1, %2) -> (%3, %4)").arg(at.x()).arg(at.y()).arg(zoomed.x()).arg(zoomed.y())));
        for (int i = 0; i < 3; ++i) QTest::keyClick(p.plot(), Qt::Key_Plus);
        QTest::keyClick(p.plot(), Qt::Key_Escape);
        QTest::keyClick(p.plot(), Qt::Key_A, Qt::ControlModifier);  // fewer points in a closer view
        QVERIFY2(picked.size() > 0 && picked.size() < 25 && picked.contains(15), qPrintable(QString::number(picked.size())));
    }

    // The Comparison dock: the model against itself assigns every head to itself (CKA 1); against
    // shapes-vit (through its aligner) the matrix is core's matchHeads over the two caches; the
    // focused head names its matches; a model that does not load leaves the comparison; another
    // dataset compares again, another model clears it.
    void comparisonMatchesHeads() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.map.empty() && !st.job.running(); }, kTimeout));
        // Before any comparison: an empty state saying what to do, no axes (of 0-15 ticks) drawn.
        QCustomPlot* plot = w.views().comparison->plot();
        QVERIFY(!plot->xAxis->visible() && !plot->yAxis->visible() && plot->plottableCount() == 0);
        QCOMPARE(plot->itemCount(), 1);
        auto* note = qobject_cast<QCPItemText*>(plot->item(0));
        QVERIFY2(note && note->text().contains("Compare with a model..."), qPrintable(note ? note->text() : QString()));
        {
            plot->resize(400, 240);
            plot->replot();
            const QImage shot = plot->grab().toImage();
            int dark = 0, darkLow = 0;  // text pixels: in the middle band, none along the bottom (an axis' labels)
            for (int y = 0; y < shot.height(); ++y)
                for (int x = 0; x < shot.width(); ++x)
                    if (qGray(shot.pixel(x, y)) < 200) (y > shot.height() * 3 / 10 && y < shot.height() * 7 / 10 ? dark : darkLow)++;
            QVERIFY2(dark > 30 && darkLow == 0, qPrintable(QString("%1 %2").arg(dark).arg(darkLow)));
            if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) shot.save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/comparison-empty.png");
        }
        s.compareHeads(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        QVERIFY(waitUntil(s, [&] { return st.comparison.has_value() && !st.comparing; }, 3 * kTimeout));
        QVERIFY(plot->xAxis->visible() && plot->yAxis->visible() && plot->plottableCount() == 1);
        {
            const HeadComparison c = *st.comparison;
            QCOMPARE(c.headsA, c.headsB);
            QCOMPARE(int(c.headsA.size()), 16);
            for (std::size_t i = 0; i < c.headsA.size(); ++i) {
                QCOMPARE(c.assigned[i], int(i));
                QVERIFY2(c.ckaAt(i, i) > 0.9999, qPrintable(QString::number(c.ckaAt(i, i))));
            }
        }
        s.compareHeads(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.comparison && st.comparison->modelB == "shapes-vit" && !st.comparing; }, 3 * kTimeout));
        const HeadComparison c = *st.comparison;
        // In process: both caches (the explorer built shapes-vit's beside the open one's), core's matching.
        const Model vit = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        const DatasetCache cacheA(st.dataset.summary.cacheDir);
        const std::string dirB = (QFileInfo(QString::fromStdString(st.dataset.summary.cacheDir)).dir().path() + "/../" +
                                  QString::fromStdString(modelFingerprint(vit).substr(0, 16)) + "/" +
                                  QFileInfo(QString::fromStdString(st.dataset.summary.cacheDir)).fileName()).toStdString();
        const DatasetCache cacheB(dirB);
        const Aligner aligner = loadAligner(VITSCOPE_SOURCE_DIR "/models/shapes-vit/aligner.safetensors");
        const HeadMatching m = matchHeads(CacheView(cacheA, nullptr), CacheView(cacheB, &aligner), HeadMatchParams{}, {});
        QCOMPARE(c.cka.size(), m.cka.size());
        for (std::size_t i = 0; i < c.cka.size(); ++i) QVERIFY(std::abs(c.cka[i] - m.cka[i]) < 1e-9);
        for (const HeadPair& p : m.assignment) QCOMPARE(c.assigned[std::size_t(p.a)], p.b);
        ComparisonView* view = w.views().comparison;
        QTRY_COMPARE_WITH_TIMEOUT(view->pairs()->count(), int(m.assignment.size()), kTimeout);
        s.focusHead(HeadId{3, 1});
        QTRY_VERIFY_WITH_TIMEOUT(view->focusText().startsWith("Head 3.1: best match in shapes-vit is "), kTimeout);
        const std::size_t row = std::size_t(std::find(c.headsA.begin(), c.headsA.end(), "3.1") - c.headsA.begin());
        QVERIFY(view->focusText().contains(QString("assigned %1").arg(QString::fromStdString(c.headsB[std::size_t(c.assigned[row])]))));
        // Every cell names its pair and CKA (the axes thin their labels).
        QCOMPARE(view->cellText(1, 2), QString("%1 (shapes-clip) vs %2 (shapes-vit): CKA %3")
                                           .arg(QString::fromStdString(c.headsA[1]), QString::fromStdString(c.headsB[2]))
                                           .arg(c.ckaAt(1, 2), 0, 'f', 3));
        {  // File > Export figure > Head comparison: the matrix with its heading, and its record
            QTemporaryDir out;
            const QString png = out.path() + "/comparison.png";
            QCOMPARE(w.exporter().exportView("comparison", png, 96), QString());
            QVERIFY(QImage(png).width() >= 600);
            QFile record(png + ".json");
            QVERIFY(record.open(QIODevice::ReadOnly));
            const QJsonObject cmp = QJsonDocument::fromJson(record.readAll()).object().value("comparison").toObject();
            QCOMPARE(cmp.value("model_b").toString(), QString::fromStdString(c.specB));
            QCOMPARE(cmp.value("images").toInt(), int(c.images));
        }
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            raiseDockOf(view);
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/comparison.png");
        }
        // A folder that is no model: said, the comparison stays.
        ErrorLog errors(w);
        s.compareHeads(data.path() + "/no-model-here");
        QVERIFY(errors.wait(kTimeout));
        QVERIFY(st.comparison && st.comparison->modelB == "shapes-vit" && !st.comparing);
        // Another dataset: compared again over its images; another model: cleared.
        QTemporaryDir other;
        ensureShapesWorld((other.path() + "/w").toStdString(), 30, 8181, "standard", {});
        s.openDataset(other.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == other.path() + "/w/images" && st.comparison && st.comparison->images == 30; }, 3 * kTimeout));
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty(); }, kTimeout));
        QVERIFY(!st.comparison);
        QCOMPARE(view->pairs()->count(), 0);
    }

    // Points picked in the projector are ringed in the plot, and the grid turns to what separates
    // them from the other images: per head and MLP, the distance of the two groups' mean terms over
    // the terms' root-mean-square spread (a port here, in loops); a new layout drops both.
    void projectorPicksColourTheGrid() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.map.empty() && !st.job.running(); }, kTimeout));
        s.project("pca", "whole", {});
        QVERIFY(waitUntil(s, [&] { return !st.projection.result.x.empty() && !st.projection.computing; }, kTimeout));
        QVector<int> rows;
        for (int i = 0; i < 40; ++i) rows << 3 * i + 1;
        s.pickProjected(rows);
        QVERIFY(waitUntil(s, [&] { return st.metric == GridMetric::Separation && st.projection.separationOf == 40; }, kTimeout));
        QCOMPARE(w.views().projector->highlighted(), 40);
        QTRY_COMPARE_WITH_TIMEOUT(w.views().grid->metricName(), QString("separates the 40 picked images"), kTimeout);
        const DatasetCache cache(st.dataset.summary.cacheDir);
        const CacheView view(cache, nullptr);
        const auto port = [&](const Component& c) {
            const at::Tensor t = view.terms(c).to(at::kDouble).contiguous();
            const int64_t n = t.size(0), e = t.size(1);
            const double* x = t.data_ptr<double>();
            std::vector<double> in(std::size_t(e), 0), out(std::size_t(e), 0), all(std::size_t(e), 0);
            for (int64_t r = 0; r < n; ++r) {
                const bool picked = rows.contains(int(r));
                for (int64_t d = 0; d < e; ++d) (picked ? in : out)[std::size_t(d)] += x[r * e + d] / (picked ? 40.0 : double(n - 40));
                for (int64_t d = 0; d < e; ++d) all[std::size_t(d)] += x[r * e + d] / double(n);
            }
            double diff = 0, spread = 0;
            for (int64_t d = 0; d < e; ++d) diff += (in[std::size_t(d)] - out[std::size_t(d)]) * (in[std::size_t(d)] - out[std::size_t(d)]);
            for (int64_t r = 0; r < n; ++r)
                for (int64_t d = 0; d < e; ++d) spread += (x[r * e + d] - all[std::size_t(d)]) * (x[r * e + d] - all[std::size_t(d)]) / double(n);
            return std::sqrt(diff) / std::sqrt(spread);
        };
        const GridValues g = st.projection.separation;
        QCOMPARE(g.heads.rows, 4);
        for (int l = 0; l < 4; ++l) {
            for (int h = 0; h < 4; ++h) {
                const double expected = port(Component{Component::Kind::Head, l, h});
                QVERIFY2(std::abs(g.heads.at(l, h) - expected) < 1e-5 * (1 + expected), qPrintable(QString("%1.%2: %3 vs %4").arg(l).arg(h).arg(g.heads.at(l, h)).arg(expected)));
            }
            QVERIFY(std::abs(g.mlp[std::size_t(l)] - port(Component{Component::Kind::Mlp, l, -1})) < 1e-5);
        }
        // None or every image is refused by the core function (the session asks for neither).
        QVERIFY_EXCEPTION_THROWN(selectionSeparation(view, {}, {}, {}), InputError);
        QVERIFY_EXCEPTION_THROWN(selectionSeparation(view, {int64_t(cache.size())}, {}, {}), InputError);
        // Another layout: the picks and what separated them go.
        s.project("umap", "whole", {});
        QVERIFY(waitUntil(s, [&] { return st.projection.request.method == "umap" && !st.projection.result.x.empty() && !st.projection.computing; }, 3 * kTimeout));
        QVERIFY(st.projection.picked.isEmpty() && st.projection.separationOf == 0);
        QCOMPARE(w.views().projector->highlighted(), 0);
        QTRY_COMPARE_WITH_TIMEOUT(w.views().grid->metricName(), QString("separates the picked images (pick some in the Projector)"), kTimeout);
        // Picks on another dataset's layout, then that dataset replaced in the middle: the picks and
        // their separation go with it; another model goes back to the direct effect.
        s.pickProjected({0, 1, 2, 3, 4});
        QVERIFY(waitUntil(s, [&] { return st.projection.separationOf == 5; }, kTimeout));
        QTemporaryDir other;
        ensureShapesWorld((other.path() + "/w").toStdString(), 30, 8383, "standard", {});
        s.openDataset(other.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == other.path() + "/w/images" && !st.job.running(); }, 3 * kTimeout));
        QVERIFY(st.projection.picked.isEmpty() && st.projection.separationOf == 0 && st.projection.separation.heads.values.empty());
        QTRY_COMPARE_WITH_TIMEOUT(w.views().projector->highlighted(), 0, kTimeout);
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty(); }, kTimeout));
        QVERIFY(st.metric == GridMetric::DirectEffect);
        QTRY_COMPARE_WITH_TIMEOUT(w.views().grid->metricName(), QString("direct-effect norm"), kTimeout);
    }

    // The compared model stays open beside the open one (the Second model dock): its grid, canvas
    // and ledger for the same image and text are what an explorer of its own computes; the
    // selection, a restriction, a property and a retrieval reach it through the head assignment;
    // its grid's clicks select the open model's assigned heads; it follows the image, text and
    // dataset; a method it lacks is said; another model closes it.
    void secondModelSideBySide() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.map.empty() && !st.job.running(); }, kTimeout));
        PartnerView* view = w.views().partner;
        QVERIFY(!view->grid()->isVisible());
        const QString vitSpec = VITSCOPE_SOURCE_DIR "/models/shapes-vit";
        s.compareHeads(vitSpec);
        const auto settled = [&](const QString& text) {
            return waitUntil(s, [&] {
                return st.comparison && !st.comparing && st.partner.open() && st.partner.image.path == st.image.path &&
                       st.partner.map.text == text.toStdString() && !st.partner.ledger.rows.empty() && st.partner.ledger.text == text.toStdString() &&
                       !st.job.running();
            }, 3 * kTimeout);
        };
        QVERIFY(settled(st.text));
        raiseDockOf(view);
        QTRY_VERIFY_WITH_TIMEOUT(view->grid()->isVisible(), kTimeout);
        // An explorer of its own on the same cache root (the caches are built): the reference.
        Explorer ref((data.path() + "/caches").toStdString());
        ref.openModel(vitSpec.toStdString(), "cpu");
        ref.openDataset(st.dataset.folder.toStdString(), {});
        const auto sameMap = [](const FloatGrid& a, const FloatGrid& b) {
            if (a.rows != b.rows || a.cols != b.cols || a.values.size() != b.values.size()) return false;
            for (std::size_t i = 0; i < a.values.size(); ++i)
                if (std::abs(a.values[i] - b.values[i]) > 1e-5f * (1 + std::abs(b.values[i]))) return false;
            return true;
        };
        const auto checkView = [&](const std::vector<std::pair<int, int>>& heads) {
            ref.analyseImage(st.image.path);
            HeatmapRequest r;
            r.text = st.text.toStdString();
            r.heads = heads;
            const HeatmapResult expected = ref.heatmap(r);
            QVERIFY2(sameMap(st.partner.map.patches, expected.patches),
                     qPrintable(QString("heads %7: %1 x %2 vs %3 x %4, first %5 vs %6").arg(st.partner.map.patches.rows).arg(st.partner.map.patches.cols)
                                    .arg(expected.patches.rows).arg(expected.patches.cols).arg(st.partner.map.patches.values.at(0)).arg(expected.patches.values.at(0)).arg(heads.size())));
            const Ledger lg = ref.ledger(r.text);
            QVERIFY(std::abs(st.partner.ledger.total - lg.total) < 1e-6);
            QCOMPARE(st.partner.ledger.rows.size(), lg.rows.size());
            QCOMPARE(view->canvas()->imagePath(), st.imagePath());
            QVERIFY(view->canvas()->hasMap());
            QCOMPARE(view->ledger()->ledger().total, st.partner.ledger.total);
        };
        checkView({});
        QCOMPARE(view->grid()->layers(), st.partner.model.gridLayers());
        QVERIFY(view->titleText().startsWith("shapes-vit beside shapes-clip"));
        // The selection reaches its grid through the assignment; its clicks come back.
        const HeadComparison c = *st.comparison;
        s.select({HeadId{3, 1}});
        const auto mapped = c.assignedInB({{3, 1}});
        QCOMPARE(int(mapped.size()), 1);
        QTRY_COMPARE_WITH_TIMEOUT(view->grid()->selection(), (QList<HeadId>{HeadId{mapped[0].first, mapped[0].second}}), kTimeout);
        const std::pair<int, int> cellB{2, 0};
        QTest::mouseClick(view->grid(), Qt::LeftButton, Qt::NoModifier, view->grid()->cellRect(cellB.first, cellB.second).center());
        const auto back = c.assignedInA({cellB});
        QCOMPARE(int(back.size()), 1);
        QTRY_COMPARE_WITH_TIMEOUT(st.selection, (QList<HeadId>{HeadId{back[0].first, back[0].second}}), kTimeout);
        QCOMPARE(st.focus.head, (HeadId{back[0].first, back[0].second}));
        QCOMPARE(view->grid()->selection(), (QList<HeadId>{HeadId{cellB.first, cellB.second}}));
        // The map through the selection: through its assigned heads there.
        s.setOnlySelected(true);
        QVERIFY(waitUntil(s, [&] { return st.partner.mapHeads == std::vector<std::pair<int, int>>{cellB}; }, kTimeout));
        QVERIFY(settled(st.text));
        QVERIFY(view->canvas()->map().caption.endsWith(QString("[%1.%2]").arg(cellB.first).arg(cellB.second)));
        checkView({cellB});
        s.setOnlySelected(false);
        QVERIFY(waitUntil(s, [&] { return st.partner.mapHeads.empty(); }, kTimeout));
        // Another image and another text: followed.
        s.openImage(QString::fromStdString(ref.datasetPaths()[5]));
        s.setText("a blue square");
        QVERIFY(settled("a blue square"));
        QCOMPARE(st.partner.image.path, ref.datasetPaths()[5]);
        checkView({});
        // A property: both models ranked side by side.
        s.setProperty("color");
        QVERIFY(waitUntil(s, [&] { return st.partner.scores.property == "color" && st.scores.property == "color"; }, 3 * kTimeout));
        {
            const GridValues g = componentGrid(ref.model(), ref.propertyScores("color", {}));
            QCOMPARE(st.partner.scores.grid.heads.values.size(), g.heads.values.size());
            for (std::size_t i = 0; i < g.heads.values.size(); ++i)
                QVERIFY(std::isnan(g.heads.values[i]) ? std::isnan(st.partner.scores.grid.heads.values[i])
                                                      : std::abs(g.heads.values[i] - st.partner.scores.grid.heads.values[i]) < 1e-5);
            QTRY_VERIFY_WITH_TIMEOUT(view->ranking()->rowCount() == 16, kTimeout);
            std::size_t best = 0;
            for (std::size_t i = 0; i < g.heads.values.size(); ++i)
                if (g.heads.values[i] > g.heads.values[best]) best = i;
            QCOMPARE(view->ranking()->item(0, 3)->text(), QString("%1.%2").arg(best / std::size_t(g.heads.cols)).arg(best % std::size_t(g.heads.cols)));
            QCOMPARE(view->grid()->metricName(), QString("property score: color"));
        }
        // Retrieval through the selection: through its assigned heads there.
        s.select({HeadId{3, 1}, HeadId{2, 2}});
        s.retrieveText("a red object");
        QVERIFY(waitUntil(s, [&] { return st.partner.retrieval.query == "a red object" && !st.job.running(); }, 3 * kTimeout));
        QTest::qWait(0);
        {
            const RetrievalResult expected = ref.retrieveText("a red object", c.assignedInB({{3, 1}, {2, 2}}), st.retrieval.top);
            QCOMPARE(st.partner.retrieval.restricted.size(), expected.restricted.size());
            for (std::size_t i = 0; i < expected.restricted.size(); ++i) QCOMPARE(st.partner.retrieval.restricted[i].path, expected.restricted[i].path);
            QCOMPARE(view->hitsB()->count(), int(expected.restricted.size()));
            QVERIFY(view->retrievalText().contains("through its assigned heads"));
        }
        {  // File > Export figure > Both models' maps: the two canvases side by side, and the record
            QTemporaryDir out;
            const QString png = out.path() + "/two.png";
            QCOMPARE(w.exporter().exportView("second-model", png, 96), QString());
            const QImage two(png);
            QVERIFY(two.width() > 2 * two.height() * 9 / 10);
            QFile record(png + ".json");
            QVERIFY(record.open(QIODevice::ReadOnly));
            const QJsonObject second = QJsonDocument::fromJson(record.readAll()).object().value("second_model").toObject();
            QCOMPARE(second.value("model").toString(), vitSpec);
            QCOMPARE(second.value("text").toString(), st.text);
        }
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            raiseDockOf(view);
            for (int tab = 0; tab < 3; ++tab) {
                view->tabs()->setCurrentIndex(tab);
                QTest::qWait(50);
                w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + QString("/second-model-%1.png").arg(tab));
            }
            w.exporter().exportView("second-model", qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/second-model-export.svg", 96);
        }
        {  // At 1024 x 768 the dock shows all of both models' grid and map, without scrolling.
            const QSize was = w.size();
            w.resize(1024, 768);
            raiseDockOf(view);
            const auto bottomIn = [&](QWidget* x) { return x->mapTo(&w, QPoint(0, x->height())).y(); };
            const int dockBottom = bottomIn(view->parentWidget());
            QTRY_VERIFY_WITH_TIMEOUT(w.height() == 768 && view->isVisible() && bottomIn(view) <= dockBottom + 1, kTimeout);
            QVERIFY2(bottomIn(view->grid()) <= dockBottom && bottomIn(view->canvas()) <= dockBottom && view->canvas()->height() >= 120,
                     qPrintable(QString("grid to %1, map to %2 (%3 high), dock to %4").arg(bottomIn(view->grid())).arg(bottomIn(view->canvas()))
                                    .arg(view->canvas()->height()).arg(dockBottom)));
            if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
                w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/second-model-1024.png");
            w.resize(was);
        }
        // A method the compared model lacks: its decomposition, said.
        s.compareHeads(VITSCOPE_SOURCE_DIR "/models/shapes-swin");
        QVERIFY(waitUntil(s, [&] { return st.comparison && st.comparison->modelB == "shapes-swin" && !st.comparing && st.partner.open(); }, 3 * kTimeout));
        s.setMethod("attention");
        QVERIFY(waitUntil(s, [&] { return !st.partner.mapNote.isEmpty() && st.partner.map.method == "decomposition"; }, 3 * kTimeout));
        QTRY_VERIFY_WITH_TIMEOUT(view->titleText().contains("has no attention map"), kTimeout);
        QCOMPARE(view->grid()->layers(), st.partner.model.gridLayers());
        // Another dataset: compared and opened again over it; another model: closed.
        QTemporaryDir world;
        ensureShapesWorld((world.path() + "/w").toStdString(), 30, 8282, "standard", {});
        s.openDataset(world.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.comparison && st.comparison->images == 30 && st.partner.open() && !st.comparing; }, 3 * kTimeout));
        s.openModel(vitSpec);
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty(); }, kTimeout));
        QVERIFY(!st.partner.open());
        QTRY_VERIFY_WITH_TIMEOUT(!view->grid()->isVisible(), kTimeout);
    }

    // Analysis > Precision: bf16 (where the CPU has it) reopens the model, image and dataset in it
    // (the cache in its own folder); a precision the device lacks is off in the menu and, asked
    // for anyway, refused with the device named while the model stays; fp32 again.
    void precisionMenuReopensTheModel() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.map.empty() && !st.job.running(); }, kTimeout));
        QCOMPARE(st.model.precision, std::string("fp32"));
        const std::vector<std::string> has = supportedPrecisions("cpu");
        const bool bf16 = std::find(has.begin(), has.end(), "bf16") != has.end();
        auto* bfAction = w.findChild<QAction*>("precision-bf16");
        QVERIFY(bfAction);
        QCOMPARE(bfAction->isEnabled(), bf16);
        ErrorLog errors(w);
        if (bf16) {
            bfAction->trigger();
            QVERIFY(waitUntil(s, [&] {
                return st.model.precision == "bf16" && !st.image.path.empty() && st.dataset.ready() && !st.map.empty() && !st.job.running();
            }, 3 * kTimeout));
            QVERIFY2(QString::fromStdString(st.dataset.summary.cacheDir).endsWith("-bf16"), st.dataset.summary.cacheDir.c_str());
            QCOMPARE(st.precision, QString("bf16"));
            QVERIFY(bfAction->isChecked());
        }
        const QString before = st.precision;
        QVERIFY(!w.findChild<QAction*>("precision-fp16")->isEnabled());  // LibTorch 1.13 has no CPU fp16 products
        s.setPrecision("fp16");
        QVERIFY(errors.wait(kTimeout));
        QVERIFY2(errors.last().contains("fp16") && errors.last().contains("CPU", Qt::CaseInsensitive), qPrintable(errors.last()));
        QCOMPARE(st.precision, before);
        QCOMPARE(QString::fromStdString(st.model.precision), before);
        QVERIFY(st.modelLoading.isEmpty());
        s.setPrecision("fp32");
        QVERIFY(waitUntil(s, [&] { return st.model.precision == "fp32" && !st.map.empty() && !st.job.running(); }, 3 * kTimeout));
        QVERIFY(w.findChild<QAction*>("precision-fp32")->isChecked());
    }

    // The head panel's "Retrieve with this head": the head selected, the text retrieved through it.
    void retrieveWithThisHead() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready() && !st.text.isEmpty() && !st.job.running(); }, kTimeout));
        s.focusHead(HeadId{2, 1});
        QPushButton* button = nullptr;
        for (QPushButton* b : w.views().head->findChildren<QPushButton*>())
            if (b->text() == "Retrieve with this head") button = b;
        QVERIFY(button);
        QTRY_VERIFY_WITH_TIMEOUT(button->isEnabled(), kTimeout);
        QTest::mouseClick(button, Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return st.retrieval.query == st.text && !st.retrieval.result.restricted.empty(); }, kTimeout));
        QCOMPARE(st.selection, (QList<HeadId>{HeadId{2, 1}}));
        QCOMPARE(st.retrieval.result.components, std::vector<std::string>{"2.1"});
    }

    // A neuron clicked in the MLP's list: its activation map on the canvas (the model's own
    // activations), its top images and texts over the dataset (compute_pcas.py's directions of the
    // dataset's effects, computed here in one piece); Enter picks another; a text, another dataset
    // and another model each take the neuron's state with them.
    // The Concepts panel. SpLiCE: Decompose lists the image's concepts with core's runSplice
    // weights (the vocabulary, the dataset's image mean), a click makes a concept the text. An
    // SAE: its active latents are core's attribution's; a click maps the latent (core's token
    // map), puts its split on the grid (summing to its pre-activation) and lists its top images;
    // a search by text ranks latents by decoder direction; a bad file leaves the SAE open; another
    // model closes it.
    void conceptPanelSpliceAndSae() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1400, 1000);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return !st.image.path.empty() && st.dataset.ready() && !st.map.empty() && !st.job.running(); }, kTimeout));
        ConceptPanel* panel = w.views().concepts;
        raiseDockOf(panel);
        QTest::mouseClick(panel->findChild<QPushButton*>("conceptDecompose"), Qt::LeftButton);
        QVERIFY(waitUntil(s, [&] { return st.concepts.splice.has_value() && !st.concepts.computing; }, kTimeout));
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const at::Tensor pixels = preprocessImage(loadImageRgb(st.image.path), model.preprocess).unsqueeze(0);
        const DatasetCache cache(st.dataset.summary.cacheDir);
        {
            const std::vector<std::string> vocabTexts = readTextList(VITSCOPE_SOURCE_DIR "/resources/shapes/concepts.txt");
            const at::Tensor vocab = TextEncoder(model).encode(vocabTexts);
            const at::Tensor mean = spliceMean(CacheView(cache, nullptr).output());
            SpliceParams params;
            params.l1 = 0.15;
            const SpliceResult r = runSplice(vocab, mean, spliceTargetsFor(model, nullptr, pixels, ""), params);
            const SpliceView& v = *st.concepts.splice;
            QCOMPARE(int64_t(v.concepts.size()), (r.weights[0] > 0).sum().item<int64_t>());
            QVERIFY(!v.concepts.empty());
            for (const ConceptWeight& c : v.concepts) {
                QCOMPARE(c.text, vocabTexts[std::size_t(c.index)]);
                QVERIFY(std::abs(c.weight - r.weights[0][c.index].item<double>()) < 1e-5);
            }
            QVERIFY(std::abs(v.cosine - r.cosine[0].item<double>()) < 1e-5);
            QCOMPARE(panel->list()->count(), int(v.concepts.size()));
            QListWidget* list = panel->list();
            QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, list->visualItemRect(list->item(0)).center());
            QTRY_COMPARE_WITH_TIMEOUT(st.text, QString::fromStdString(v.concepts.front().text), kTimeout);
            // Of the focused head: its term, centred by its own mean over the dataset.
            s.focusHead(HeadId{3, 1});
            panel->findChild<QComboBox*>("conceptOf")->setCurrentIndex(1);
            QTest::mouseClick(panel->findChild<QPushButton*>("conceptDecompose"), Qt::LeftButton);
            QVERIFY(waitUntil(s, [&] { return st.concepts.splice && st.concepts.splice->component == "3.1" && !st.concepts.computing; }, kTimeout));
            const CacheView view(cache, nullptr);
            const SpliceResult h = runSplice(vocab, spliceMean(view.terms(view.parse("3.1"))), spliceTargetsFor(model, nullptr, pixels, "3.1"), params);
            const SpliceView& hv = *st.concepts.splice;
            QCOMPARE(int64_t(hv.concepts.size()), (h.weights[0] > 0).sum().item<int64_t>());
            for (const ConceptWeight& c : hv.concepts) QVERIFY(std::abs(c.weight - h.weights[0][c.index].item<double>()) < 1e-5);
            QVERIFY(panel->statusText().startsWith("head 3.1: "));
            // Another head in focus: decomposed again.
            s.focusHead(HeadId{2, 0});
            QVERIFY(waitUntil(s, [&] { return st.concepts.splice && st.concepts.splice->component == "2.0" && !st.concepts.computing; }, kTimeout));
        }
        // An SAE on the output: the image's active latents, exactly core's attribution.
        const QString saePath = VITSCOPE_SOURCE_DIR "/models/shapes-clip/sae/topk-output.safetensors";
        s.openSae(saePath);
        QVERIFY(waitUntil(s, [&] { return st.concepts.sae && st.concepts.latents && !st.concepts.computing; }, kTimeout));
        const SparseAutoencoder sae = loadSae(saePath.toStdString());
        const SaeAttribution a = attributeSaeImages(model, sae, pixels);
        const SaeImageLatents shown = *st.concepts.latents;
        QVERIFY(!shown.active.empty());
        QVERIFY(shown.maxAbsError < 1e-4);
        for (std::size_t i = 0; i < shown.active.size(); ++i) {
            QCOMPARE(shown.active[i].latent, a.active[0][int64_t(i)].item<int64_t>());
            QVERIFY(std::abs(shown.active[i].activation - a.latents[0][shown.active[i].latent].item<double>()) < 1e-5);
            QVERIFY(!shown.active[i].name.empty());  // an output SAE of a CLIP model: named by the pool
        }
        QCOMPARE(panel->list()->count(), int(shown.active.size()));
        // A click on a latent: its map, its split on the grid, its top images.
        const QImage before = w.views().canvas->grab().toImage();
        QListWidget* list = panel->list();
        QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, list->visualItemRect(list->item(0)).center());
        const int64_t latent = shown.active.front().latent;
        QVERIFY(waitUntil(s, [&] { return st.concepts.detail && !st.map.empty() && st.map.maps.front().method == "sae-latent" && !st.job.running(); }, kTimeout));
        const at::Tensor tokens = saeLatentTokenMap(model, sae, pixels, latent)[0];
        const FloatGrid& patches = st.map.maps.front().patches;
        const at::Tensor expected = tokens.narrow(0, tokens.size(0) - int64_t(patches.values.size()), int64_t(patches.values.size()));
        QVERIFY((floatTensor(patches.values) - expected).abs().max().item<double>() < 1e-4 * std::max(1.0, expected.abs().max().item<double>()));
        QVERIFY(w.views().canvas->grab().toImage() != before);
        const SaeLatentDetail& d = *st.concepts.detail;
        double sum = 0;
        for (float v : d.grid.heads.values)
            if (!std::isnan(v)) sum += v;
        for (float v : d.grid.mlp)
            if (!std::isnan(v)) sum += v;
        for (const ComponentValue& v : d.others) sum += v.value;
        QVERIFY2(std::abs(sum - a.pre[0][latent].item<double>()) < 1e-4, qPrintable(QString("%1 vs %2").arg(sum).arg(a.pre[0][latent].item<double>())));
        QCOMPARE(st.metric, GridMetric::Latent);
        QCOMPARE(w.views().gridControls->findChild<QComboBox*>("metricBox")->currentIndex(), int(GridMetric::Latent));
        const SaeTopImages top = topSaeImages(cache, sae, latent, 12);
        QCOMPARE(int(d.topImages.size()), int(top.rows.size()));
        for (std::size_t i = 0; i < top.rows.size(); ++i) QCOMPARE(d.topImages[i].path, top.paths[i]);
        QTRY_COMPARE_WITH_TIMEOUT(panel->topImages()->count(), int(top.rows.size()), kTimeout);
        QVERIFY(panel->detailText().startsWith(QString("Latent %1").arg(latent)));
        // Search by text: the latents whose decoder direction is nearest.
        auto* search = panel->findChild<QLineEdit*>("conceptSearch");
        QVERIFY(search->isEnabled());
        search->setText("red");
        QTest::keyClick(search, Qt::Key_Return);
        QVERIFY(waitUntil(s, [&] { return !st.concepts.found.empty(); }, kTimeout));
        const at::Tensor sim = saeConceptSimilarity(sae, TextEncoder(model).encode({"red"}))[0];
        QCOMPARE(st.concepts.found.front().latent, sim.argmax().item<int64_t>());
        QVERIFY(std::abs(st.concepts.found.front().similarity - sim.max().item<double>()) < 1e-5);
        QVERIFY(!st.concepts.found.front().name.empty());  // named by the pool, as the image's latents
        // A vocabulary that fails leaves the one in use (said, the list kept).
        {
            QTemporaryDir vocabDir;
            QFile empty(vocabDir.path() + "/empty.txt");
            QVERIFY(empty.open(QIODevice::WriteOnly));
            empty.close();
            const SpliceView kept = *st.concepts.splice;
            s.decomposeConcepts(empty.fileName(), 0.15);
            QVERIFY(waitUntil(s, [&] { return st.message.error && st.message.text.contains("empty.txt") && !st.concepts.computing; }, kTimeout));
            QVERIFY(st.concepts.vocabFile.isEmpty());  // the model's default, still in use
            QCOMPARE(st.concepts.splice->concepts.size(), kept.concepts.size());
            s.setConceptMode("sae");
            QVERIFY(waitUntil(s, [&] { return st.concepts.latents && !st.concepts.computing && !st.job.running(); }, kTimeout));
        }
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/concepts.png");
        // Another SAE (at layer 2): the old latent's map and grid colours go.
        s.openSae(VITSCOPE_SOURCE_DIR "/models/shapes-clip/sae/topk-layer2.safetensors");
        QVERIFY(waitUntil(s, [&] { return st.concepts.sae && st.concepts.sae->site == "layer:2" && st.concepts.latents && !st.concepts.computing; }, kTimeout));
        QCOMPARE(st.concepts.latent, qint64(-1));
        QVERIFY(st.metric != GridMetric::Latent);
        QVERIFY(waitUntil(s, [&] { return !st.map.empty() && st.map.maps.front().method != "sae-latent" && !st.job.running(); }, kTimeout));
        s.openSae(saePath);
        QVERIFY(waitUntil(s, [&] { return st.concepts.sae && st.concepts.sae->site == "output" && st.concepts.latents && !st.concepts.computing; }, kTimeout));
        s.chooseLatent(latent);
        QVERIFY(waitUntil(s, [&] { return st.concepts.detail && st.metric == GridMetric::Latent; }, kTimeout));
        // A file that is no SAE: said in one line, the open SAE stays.
        QTemporaryDir bad;
        QFile junk(bad.path() + "/junk.safetensors");
        QVERIFY(junk.open(QIODevice::WriteOnly));
        junk.write("not a safetensors file at all");
        junk.close();
        s.openSae(junk.fileName());
        QVERIFY(waitUntil(s, [&] { return st.message.error && st.message.text.contains("junk.safetensors"); }, kTimeout));
        QCOMPARE(QString::fromStdString(st.concepts.sae->path), saePath);
        // Another image: its latents; another model: the SAE (this model's) is closed.
        const std::vector<std::string> paths = cache.paths();
        s.openImage(QString::fromStdString(paths[7]));
        QVERIFY(waitUntil(s, [&] { return st.image.path == paths[7] && st.concepts.latents && !st.concepts.computing && st.concepts.detail && !st.job.running(); }, kTimeout));
        const at::Tensor pixels7 = preprocessImage(loadImageRgb(paths[7]), model.preprocess).unsqueeze(0);
        QCOMPARE(st.concepts.latents->active.front().latent, attributeSaeImages(model, sae, pixels7).active[0][0].item<int64_t>());
        // Another dataset: the chosen latent's top images are the new dataset's.
        QTemporaryDir other;
        ensureShapesWorld((other.path() + "/w").toStdString(), 30, 7272, "standard", {});
        s.openDataset(other.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] {
            return st.dataset.folder == other.path() + "/w/images" && st.concepts.detail && !st.concepts.detail->topImages.empty() &&
                   QString::fromStdString(st.concepts.detail->topImages.front().path).startsWith(other.path());
        }, 3 * kTimeout));
        const SaeTopImages otherTop = topSaeImages(DatasetCache(st.dataset.summary.cacheDir), sae, latent, 12);
        for (std::size_t i = 0; i < otherTop.rows.size(); ++i) QCOMPARE(st.concepts.detail->topImages[i].path, otherTop.paths[i]);
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty(); }, kTimeout));
        QVERIFY(!st.concepts.sae && !st.concepts.latents && st.concepts.latent < 0);
        QCOMPARE(st.metric, GridMetric::DirectEffect);  // the latent's colours were the old model's
        QVERIFY(panel->statusText().contains("previous model"));
    }

    void neuronClickShowsItsMapAndDataset() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        HeadPanel* panel = w.views().head;
        QVERIFY(openedWithDataset(s, kTimeout));
        const QImage textMap = w.views().canvas->grab().toImage();
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronList()->isVisible() && panel->neuronList()->count() == 12, kTimeout);
        QListWidget* list = panel->neuronList();
        const qint64 n = list->item(1)->data(Qt::UserRole).toLongLong();
        QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, list->visualItemRect(list->item(1)).center());
        QTRY_COMPARE_WITH_TIMEOUT(st.focus.neuron, n, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(!st.map.empty() && st.map.maps.front().method == "neuron", kTimeout);
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const at::Tensor pixels = preprocessImage(loadImageRgb(st.image.path), model.preprocess).unsqueeze(0);
        const at::Tensor expectedMap = neuronActivationMap(model, pixels, {{1, n}})[0];
        const FloatGrid& shown = st.map.maps.front().patches;
        QCOMPARE(int64_t(shown.values.size()), expectedMap.numel());
        const at::Tensor got = floatTensor(shown.values);
        QVERIFY((got - expectedMap.flatten()).abs().max().item<double>() < 1e-4 * std::max(1.0, expectedMap.abs().max().item<double>()));
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.detail.neuron == n, 5 * kTimeout);
        // In process: every dataset image's effects at once, the reference's directions.
        const std::vector<std::string> paths = DatasetCache(st.dataset.summary.cacheDir).paths();
        SecondOrderSettings so;
        so.layer = 1;
        const SecondOrderEffects e = SecondOrderLens(model, so).compute(loadAndPreprocess(paths, model.preprocess));
        const NeuronDirections dirs = neuronPrincipalDirections(e.effects, 100);
        const NeuronDetail detail = st.focus.detail;
        QCOMPARE(int64_t(detail.topImages.size()), dirs.topImages.size(1));
        QCOMPARE(detail.topImages.front().row, dirs.topImages[n][dirs.topImages.size(1) - 1].item<int64_t>());
        QCOMPARE(detail.topImages.front().path, paths[static_cast<std::size_t>(detail.topImages.front().row)]);
        QVERIFY(!detail.texts.empty());
        const std::vector<std::string> pool = readTextList(st.textPoolFile().toStdString());
        const SparseCodes codes = orthogonalMatchingPursuit(referenceTextDictionary(TextEncoder(model).encode(pool), 100.0),
                                                            dirs.directions.narrow(0, n, 1), 32);
        QCOMPARE(detail.texts.front().text, topTexts(codes, 0, pool, 1).front().text);
        QTRY_VERIFY_WITH_TIMEOUT(panel->barCount() == 1 && panel->imageCount() == int(detail.topImages.size()), kTimeout);
        QVERIFY2(panel->titleText().contains(QString("neuron %1").arg(n)), qPrintable(panel->titleText()));
        QVERIFY(panel->plot()->isVisible());
        QTRY_VERIFY_WITH_TIMEOUT(w.views().canvas->grab().toImage() != textMap, kTimeout);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neuron.png");
        // The keyboard: the next row and Enter; the layer's summary is kept (no second pass over the images).
        list->setFocus();
        list->setCurrentRow(3);
        const qint64 other = list->item(3)->data(Qt::UserRole).toLongLong();
        QTest::keyClick(list, Qt::Key_Return);
        QTRY_COMPARE_WITH_TIMEOUT(st.focus.detail.neuron, other, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(st.map.maps.front().text == "mlp.1 neuron " + std::to_string(other), kTimeout);
        QCOMPARE(st.focus.detail.topImages.front().row, dirs.topImages[other][dirs.topImages.size(1) - 1].item<int64_t>());
        // Another dataset: the detail is the new images'.
        QTemporaryDir second;
        ensureShapesWorld((second.path() + "/w").toStdString(), 30, 6161, "standard", {});
        s.openDataset(second.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == second.path() + "/w/images" && st.focus.detail.neuron == other; }, 5 * kTimeout));
        QCOMPARE(st.focus.detail.images, int64_t(30));
        QCOMPARE(int64_t(st.focus.detail.topImages.size()), int64_t(30));
        QVERIFY(st.focus.detail.topImages.front().path.find(second.path().toStdString()) == 0);
        // A text: its own map again, the neuron let go.
        s.setText("a red circle");
        QTRY_VERIFY_WITH_TIMEOUT(!st.map.empty() && st.map.maps.front().method == "decomposition" && st.map.maps.front().text == "a red circle", kTimeout);
        QCOMPARE(st.focus.neuron, qint64(-1));
        QVERIFY(!panel->titleText().contains("neuron"));
        // Another model with a neuron focused: nothing of it stays.
        list->setCurrentRow(0);
        QTest::keyClick(list, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.neuron >= 0 && st.map.maps.front().method == "neuron", kTimeout);
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && !st.image.path.empty() && !st.map.empty(); }, kTimeout));
        QCOMPARE(st.focus.neuron, qint64(-1));
        QVERIFY(st.map.maps.front().method != "neuron");
        // Through an aligner: top images, no texts (the neurons' space is the classifier's).
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(list->count() == 12, kTimeout);
        list->setCurrentRow(0);
        QTest::keyClick(list, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.detail.neuron >= 0, 5 * kTimeout);
        QVERIFY(st.focus.detail.texts.empty() && !st.focus.detail.textsUnavailable.empty() && !st.focus.detail.topImages.empty());
        QVERIFY2(panel->imagesText().contains("no texts"), qPrintable(panel->imagesText()));
    }

    // The MLP's neurons ordered by a property over the open dataset (the head panel's order box):
    // the scores are core's rankNeurons over every dataset image's second-order effects (what
    // `neurons rank` computes on a second-order run of those images); a click still opens a neuron.
    // Another MLP and another dataset rank again; the last block and a model through an aligner
    // are refused with their reasons; another model clears the ranking.
    void neuronRankingByAProperty() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1400, 900);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        HeadPanel* panel = w.views().head;
        QVERIFY(openedWithDataset(s, kTimeout));
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronList()->isVisible() && panel->neuronList()->count() == 12, kTimeout);
        NeuronTools* tools = panel->neuronTools();
        QVERIFY(tools->isVisible());
        QComboBox* order = tools->orderBox();
        const int color = order->findData("color");
        QVERIFY2(color > 0, "the model's property names are offered");
        order->setCurrentIndex(color);
        emit order->activated(color);
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.rank.ranking.layer == 1, 5 * kTimeout);
        const NeuronRanking shown = st.neuronTools.rank.ranking;
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const auto expected = [&](int layer, const std::string& cacheDir) {
            SecondOrderSettings so;
            so.layer = layer;
            const SecondOrderEffects e =
                SecondOrderLens(model, so).compute(loadAndPreprocess(DatasetCache(cacheDir).paths(), model.preprocess));
            const at::Tensor descriptions =
                TextEncoder(model).encodeDescriptions(readTextList(propertyWordList("color", model)));
            return rankNeurons(e.effects, neuronTotal(e.output, NeuronConvention::Reference, 100.0), descriptions);
        };
        const auto want = expected(1, st.dataset.summary.cacheDir);
        QCOMPARE(shown.scores.size(), want.size());
        QCOMPARE(shown.images, int64_t(1000));
        std::map<int64_t, double> byNeuron(want.begin(), want.end());
        for (std::size_t i = 0; i < shown.scores.size(); ++i) {
            QVERIFY(std::abs(shown.scores[i].second - want[i].second) < 1e-4);  // the same order of scores
            QVERIFY(std::abs(shown.scores[i].second - byNeuron.at(shown.scores[i].first)) < 1e-4);  // each neuron's own
        }
        QVERIFY(want.front().second > 0.2 && want.front().second > want.back().second + 0.2);  // a ranking, not noise
        // The list: the best first, its score, the property and the images in the heading.
        QListWidget* list = panel->neuronList();
        QTRY_VERIFY_WITH_TIMEOUT(list->isVisible() && list->count() == 100, kTimeout);
        QCOMPARE(list->item(0)->data(Qt::UserRole).toLongLong(), shown.scores.front().first);
        QVERIFY(list->item(0)->text().contains(QString::number(shown.scores.front().second, 'f', 4)));
        QVERIFY2(panel->neuronsText().contains("\"color\"") && panel->neuronsText().contains("1000 images"),
                 qPrintable(panel->neuronsText()));
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neuron-ranking.png");
        QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, list->visualItemRect(list->item(1)).center());
        QTRY_COMPARE_WITH_TIMEOUT(st.focus.neuron, qint64(shown.scores[1].first), kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(!st.map.empty() && st.map.maps.front().method == "neuron", kTimeout);
        // Another MLP: its own neurons ranked by the same property.
        s.focusMlp(2);
        QVERIFY(st.neuronTools.rank.ranking.layer != 2);
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.rank.ranking.layer == 2, 5 * kTimeout);
        QCOMPARE(order->currentData().toString(), QString("color"));
        // Another dataset: ranked again over its images.
        QTemporaryDir second;
        ensureShapesWorld((second.path() + "/w").toStdString(), 40, 5151, "standard", {});
        s.openDataset(second.path() + "/w/images");
        QVERIFY(waitUntil(
            s,
            [&] {
                return st.dataset.folder == second.path() + "/w/images" && st.neuronTools.rank.ranking.layer == 2 &&
                       st.neuronTools.rank.ranking.images == 40;
            },
            5 * kTimeout));
        const auto small = expected(2, st.dataset.summary.cacheDir);
        QVERIFY(std::abs(st.neuronTools.rank.ranking.scores.front().second - small.front().second) < 1e-4);
        QCOMPARE(st.neuronTools.rank.ranking.scores.size(), small.size());
        // The last block: no second-order effect, said in the panel.
        s.focusMlp(3);
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.rank.note.contains("last block"), kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(panel->neuronsText().contains("last block"), kTimeout);
        // Another model: nothing of the ranking stays; through an aligner the texts are not the neurons' space.
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(
            s, [&] { return st.model.name == "shapes-vit" && st.dataset.ready() && !st.image.path.empty(); },
            2 * kTimeout));
        QVERIFY(st.neuronTools.rank.property.isEmpty() && st.neuronTools.rank.ranking.layer == -1);
        s.focusMlp(1);
        QTRY_VERIFY_WITH_TIMEOUT(order->currentIndex() == 0 && tools->isVisible(), kTimeout);
        s.rankNeuronsBy("color");
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.rank.note.contains("aligner"), kTimeout);
    }

    // Issue 29, a new user's walk: while a neuron's dataset summary and a ranking run, the head
    // panel's list stays where it is (the rows under the pointer, the scroll, the ticks), so a second
    // click lands on the row aimed at; the status line never says "0.0/s, ETA 0 s" (a measured rate
    // or none); a second property of the same MLP is ranked from the layer's cache, with core's numbers.
    void neuronPanelStaysPutWhileResultsArrive() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1400, 900);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        HeadPanel* panel = w.views().head;
        QVERIFY(openedWithDataset(s, kTimeout));
        s.focusMlp(1);
        QListWidget* list = panel->neuronList();
        QTRY_VERIFY_WITH_TIMEOUT(list->isVisible() && list->count() == 12, kTimeout);
        QTest::qWait(100);  // (laid out)
        QScrollBar* bar = list->verticalScrollBar();
        QVERIFY(bar->maximum() > 0);
        bar->setValue(bar->maximum());  // the last rows, as a user scrolls to them
        QListWidgetItem* aimed = list->item(10);
        const qint64 n = aimed->data(Qt::UserRole).toLongLong(), ticked = list->item(11)->data(Qt::UserRole).toLongLong();
        const QPoint point = list->visualItemRect(aimed).center();  // in the viewport
        // Every 10 ms: where the list is in the window, its scroll, the item under the point.
        struct Sample {
            bool arrived;
            QPoint at;
            int scroll;
            QListWidgetItem* under;
        };
        std::vector<Sample> samples;
        QTimer poll;
        QObject::connect(&poll, &QTimer::timeout, [&] {
            if (st.focus.neuron != n) return;
            samples.push_back({st.focus.detail.neuron == n, list->mapTo(&w, QPoint(0, 0)), bar->value(), list->itemAt(point)});
        });
        poll.start(10);
        const QPoint beforeClick = list->mapTo(&w, QPoint(0, 0));  // the click itself moves nothing either
        QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, point);
        QTRY_COMPARE_WITH_TIMEOUT(st.focus.neuron, n, kTimeout);
        QTest::qWait(50);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neuron-summarising.png");
        list->item(11)->setCheckState(Qt::Checked);  // a second tick while the summary runs
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.ticked == QList<qint64>{ticked}, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(st.focus.detail.neuron == n && panel->barCount() == 1, 5 * kTimeout);
        QTest::qWait(100);
        poll.stop();
        const auto pending = std::count_if(samples.begin(), samples.end(), [](const Sample& x) { return !x.arrived; });
        QVERIFY2(pending > 0 && pending < long(samples.size()), qPrintable(QString("%1 of %2").arg(pending).arg(samples.size())));
        for (const Sample& x : samples) {
            QCOMPARE(x.at, samples.front().at);
            QCOMPARE(x.scroll, samples.front().scroll);
            QVERIFY(x.under == aimed);  // the same item: never re-filled
        }
        QCOMPARE(list->mapTo(&w, QPoint(0, 0)), samples.front().at);
        QCOMPARE(samples.front().at, beforeClick);
        QVERIFY(list->itemAt(point) == aimed && list->item(11)->checkState() == Qt::Checked);
        QVERIFY(panel->plot()->isVisible());
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neuron-summarised.png");
        // A ranking by a property: the image's rows stay (same items) until it arrives; the status
        // line's rate is measured (never "0.0/s" nor "ETA 0 s").
        QListWidgetItem* first = list->item(0);
        const QPoint before = list->mapTo(&w, QPoint(0, 0));
        std::vector<QString> lines;
        int sameRows = 0, running = 0, moved = 0;
        QTimer watch;
        QObject::connect(&watch, &QTimer::timeout, [&] {
            if (!st.job.running() || st.neuronTools.rank.ranking.layer == 1) return;
            ++running;
            lines.push_back(w.statusLine().text());
            sameRows += list->isVisible() && list->item(0) == first;
            moved += list->mapTo(&w, QPoint(0, 0)) != before;
        });
        watch.start(10);
        s.rankNeuronsBy("color");
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.rank.ranking.layer == 1 && !st.job.running(), 5 * kTimeout);
        watch.stop();
        QVERIFY(running > 0);
        QCOMPARE(sameRows, running);  // the image's rows stayed, in their place, while the ranking ran
        QCOMPARE(moved, 0);
        bool sawRate = false;
        for (const QString& l : lines) {
            QVERIFY2(!l.contains("0.0/s") && !l.contains("ETA 0 s"), qPrintable(l));
            const QRegularExpressionMatch rate = QRegularExpression("([0-9.]+)/s, ETA").match(l);
            sawRate |= rate.hasMatch() && rate.captured(1).toDouble() > 0;
        }
        QVERIFY2(sawRate || lines.size() < 30, qPrintable(lines.empty() ? QString() : lines.back()));
        const NeuronRanking colour = st.neuronTools.rank.ranking;
        QVERIFY(!colour.cached && colour.cacheRank == st.model.embedDim && colour.cacheBytes > 0);
        // Another property of the same MLP: from the layer's cache (no pass), core's numbers.
        s.rankNeuronsBy("shape");
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.rank.ranking.layer == 1 && st.neuronTools.rank.property == "shape", 5 * kTimeout);
        const NeuronRanking shape = st.neuronTools.rank.ranking;
        QVERIFY(shape.cached);
        QVERIFY2(panel->neuronsText().contains("cached"), qPrintable(panel->neuronsText()));
        qInfo("neuron ranking of mlp.1 over %lld images: first property %.2f s (a pass), second %.3f s (cache of %lld directions, %.1f MB)",
              static_cast<long long>(shape.images), colour.seconds, shape.seconds, static_cast<long long>(shape.cacheRank),
              shape.cacheBytes / 1048576.0);
        QVERIFY(shape.seconds < colour.seconds);
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        SecondOrderSettings so;
        so.layer = 1;
        const SecondOrderEffects e =
            SecondOrderLens(model, so).compute(loadAndPreprocess(DatasetCache(st.dataset.summary.cacheDir).paths(), model.preprocess));
        const auto want = rankNeurons(e.effects, neuronTotal(e.output, NeuronConvention::Reference, 100.0),
                                      TextEncoder(model).encodeDescriptions(readTextList(propertyWordList("shape", model))));
        QCOMPARE(shape.scores.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i) QVERIFY(std::abs(shape.scores[i].second - want[i].second) < 1e-4);
        // Another dataset: not from the old one's cache.
        QTemporaryDir second;
        ensureShapesWorld((second.path() + "/w").toStdString(), 40, 5353, "standard", {});
        s.openDataset(second.path() + "/w/images");
        QVERIFY(waitUntil(
            s, [&] { return st.dataset.folder == second.path() + "/w/images" && st.neuronTools.rank.ranking.images == 40; }, 5 * kTimeout));
        QVERIFY(!st.neuronTools.rank.ranking.cached);
    }

    // "Retrieve through these neurons": the ticked neurons' hits for the text beside global hits in
    // the Retrieval dock, core's neuronRetrievalScores over every dataset image (`neurons retrieve`'s
    // numbers); again over another dataset; a text search goes back to heads; another model clears it.
    void neuronRetrievalFillsTheGallery() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1400, 900);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        HeadPanel* panel = w.views().head;
        Gallery* gallery = w.views().gallery;
        QVERIFY(openedWithDataset(s, kTimeout));
        s.focusMlp(1);
        QListWidget* list = panel->neuronList();
        QTRY_VERIFY_WITH_TIMEOUT(list->isVisible() && list->count() == 12, kTimeout);
        QPushButton* button = panel->neuronTools()->retrieveButton();
        QVERIFY(!button->isEnabled());  // nothing ticked or clicked yet
        const qint64 a = list->item(0)->data(Qt::UserRole).toLongLong(),
                     b = list->item(2)->data(Qt::UserRole).toLongLong();
        QVERIFY(list->item(0)->flags() & Qt::ItemIsUserCheckable);
        list->item(0)->setCheckState(Qt::Checked);
        QTRY_COMPARE_WITH_TIMEOUT(st.neuronTools.ticked, QList<qint64>{a}, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(list->count() == 12 && list->item(0)->checkState() == Qt::Checked, kTimeout);
        list->item(2)->setCheckState(Qt::Checked);
        QTRY_COMPARE_WITH_TIMEOUT(st.neuronTools.ticked.size(), 2, kTimeout);
        QVERIFY(st.neuronTools.ticked.contains(a) && st.neuronTools.ticked.contains(b));
        QVERIFY(button->isEnabled() && button->text().contains("2 ticked"));
        const std::string text = st.text.toStdString();
        button->click();
        QTRY_VERIFY_WITH_TIMEOUT(!st.retrieval.result.restricted.empty() && !st.job.running(), 5 * kTimeout);
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        const auto check = [&](const std::string& cacheDir) {
            SecondOrderSettings so;
            so.layer = 1;
            const SecondOrderEffects e =
                SecondOrderLens(model, so).compute(loadAndPreprocess(DatasetCache(cacheDir).paths(), model.preprocess));
            const std::vector<int64_t> neurons(st.neuronTools.retrieval.neurons.begin(),
                                               st.neuronTools.retrieval.neurons.end());
            const NeuronRetrievalScores want =
                neuronRetrievalScores(e.effects, e.output, neurons, TextEncoder(model).encode({text})[0]);
            const auto through = topScores(want.through, st.retrieval.top),
                       global = topScores(want.global, st.retrieval.top);
            const RetrievalResult& r = st.retrieval.result;
            QCOMPARE(r.restricted.size(), through.size());
            QCOMPARE(r.global.size(), global.size());
            for (std::size_t i = 0; i < through.size(); ++i) {
                QVERIFY(std::abs(r.restricted[i].score - through[i].second) <
                        1e-4 * std::max(1.0, std::abs(through[i].second)));
                QVERIFY(std::abs(r.global[i].score - global[i].second) < 1e-5);
            }
            QCOMPARE(r.restricted.front().row, through.front().first);
            QCOMPARE(r.global.front().row, global.front().first);
        };
        check(st.dataset.summary.cacheDir);
        QCOMPARE(st.retrieval.result.query, text);
        QTRY_COMPARE_WITH_TIMEOUT(gallery->restrictedCount(), int(st.retrieval.result.restricted.size()), kTimeout);
        QCOMPARE(gallery->globalCount(), int(st.retrieval.result.global.size()));
        QLabel* heads = nullptr;
        for (QLabel* l : gallery->findChildren<QLabel*>())
            if (l->text().startsWith("Through neurons")) heads = l;
        QVERIFY2(heads && heads->text().contains("mlp.1"), "the gallery names the neurons");
        // Heads selected meanwhile: the neurons' hits stay, named as such.
        s.select({HeadId{3, 1}});
        QTest::qWait(200);
        QVERIFY(heads->text().startsWith("Through neurons") && !st.retrieval.result.restricted.empty());
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            QTest::qWait(500);  // thumbnails
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neuron-retrieval.png");
            w.resize(1024, 768);
            QTest::qWait(300);
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/neuron-retrieval-1024.png");
            w.resize(1400, 900);
        }
        // Another dataset: the same neurons and text over its images.
        QTemporaryDir second;
        ensureShapesWorld((second.path() + "/w").toStdString(), 40, 5252, "standard", {});
        s.openDataset(second.path() + "/w/images");
        QVERIFY(waitUntil(
            s,
            [&] {
                return st.dataset.folder == second.path() + "/w/images" &&
                       st.neuronTools.retrieval.dataset == st.dataset.folder && !st.job.running();
            },
            5 * kTimeout));
        QVERIFY(st.retrieval.result.restricted.front().path.find(second.path().toStdString()) == 0);
        check(st.dataset.summary.cacheDir);
        // A text searched in the gallery: through the selected heads again.
        s.retrieveText("a red circle");
        QTRY_VERIFY_WITH_TIMEOUT(st.retrieval.result.components == std::vector<std::string>{"3.1"}, kTimeout);
        QVERIFY(!st.neuronTools.retrieval.active);
        QTRY_VERIFY_WITH_TIMEOUT(heads->text().startsWith("Through heads"), kTimeout);
        // Another model: no ticks, no neuron retrieval.
        s.retrieveThroughNeurons();
        QTRY_VERIFY_WITH_TIMEOUT(
            st.neuronTools.retrieval.active && !st.job.running() && !st.retrieval.result.restricted.empty(),
            5 * kTimeout);
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QVERIFY(waitUntil(
            s, [&] { return st.model.name == "shapes-vit" && st.dataset.ready(); }, 2 * kTimeout));
        QVERIFY(!st.neuronTools.retrieval.active && st.neuronTools.ticked.isEmpty() &&
                st.retrieval.result.restricted.empty());
    }

    // View > Token norms of every block: under the token-norm map, one map per block on one scale
    // (0 to the largest norm), captioned with its max and median, the outlier threshold marked; the
    // numbers are core's tokenNorms. It follows the image; another model clears it; a model without
    // token norms refuses it with the reason.
    void tokenNormsOfEveryBlock() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1400, 900);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        ImageCanvas* canvas = w.views().canvas;
        QVERIFY(waitUntil(
            s, [&] { return !st.image.path.empty() && !st.map.empty() && st.dataset.ready(); }, kTimeout));
        auto* action = w.findChild<QAction*>("normBlocksAction");
        QVERIFY(action && action->isEnabled() && !action->isChecked());
        action->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(
            st.view.method == "token-norms" && st.neuronTools.normBlocks && canvas->smallMultiples().size() == 4,
            kTimeout);
        QVERIFY(action->isChecked());
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        bool outliers = false;  // a block's token over the threshold (then outlined)
        const auto check = [&](const QString& image) {
            const at::Tensor pixels = preprocessImage(loadImageRgb(image.toStdString()), model.preprocess).unsqueeze(0);
            const RegisterFindParams p = registerFindDefaults(model);
            const TokenNormReport t = tokenNorms(model, pixels, p);
            const int64_t grid = int64_t(t.gridH) * t.gridW;
            const std::vector<MapLayer>& m = canvas->smallMultiples();
            QCOMPARE(int64_t(m.size()), t.norms.size(0));
            const double top = t.norms.narrow(1, t.prefix, grid).max().item<double>();
            for (std::size_t b = 0; b < m.size(); ++b) {
                const at::Tensor want = t.norms[int64_t(b)].narrow(0, t.prefix, grid);
                QVERIFY((floatTensor(m[b].values) - want).abs().max().item<double>() < 1e-4);
                QCOMPARE(m[b].lo, 0.0f);
                QVERIFY(std::abs(m[b].hi - top) < 1e-4);
                QCOMPARE(m[b].mark, float(p.registerNormThreshold));
                QCOMPARE(m[b].caption, QString("b%1 %2 / %3")
                                           .arg(b)
                                           .arg(want.max().item<double>(), 0, 'f', 1)
                                           .arg(want.median().item<double>(), 0, 'f', 1));
            }
            const TokenNormBlocks& blocks = *st.neuronTools.normBlocks;
            for (std::size_t b = 0; b < blocks.maxOverMedian.size(); ++b)
                QVERIFY(std::abs(blocks.maxOverMedian[b] - t.maxOverMedian[int64_t(b)].item<double>()) < 1e-4);
            outliers = top > p.registerNormThreshold;
        };
        check(st.imagePath());
        QVERIFY(canvas->map().caption.contains("every block on one scale"));
        // Outlined cells (red) where a block has tokens over the threshold; the row is drawn.
        const QImage shot = canvas->grab().toImage();
        int red = 0;
        for (int y = shot.height() * 2 / 3; y < shot.height(); ++y)
            for (int x = 0; x < shot.width(); ++x) {
                const QColor c = shot.pixelColor(x, y);
                red += c.red() > 200 && c.green() < 60 && c.blue() < 60;
            }
        QVERIFY2(outliers == (red > 20), qPrintable(QString("outliers %1, red pixels %2").arg(outliers).arg(red)));
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/token-norm-blocks.png");
            w.resize(1024, 768);
            QTest::qWait(300);
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/token-norm-blocks-1024.png");
            w.resize(1400, 900);
        }
        // Another image: its own blocks.
        const std::vector<std::string> paths = DatasetCache(st.dataset.summary.cacheDir).paths();
        const QString other = QString::fromStdString(paths[5] == st.image.path ? paths[6] : paths[5]);
        s.openImage(other);
        QTRY_VERIFY_WITH_TIMEOUT(
            st.imagePath() == other && st.neuronTools.normBlocksImage == other && canvas->smallMultiples().size() == 4,
            kTimeout);
        check(other);
        // Off: the row goes, the map stays the token norms.
        action->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(canvas->smallMultiples().empty() && !st.neuronTools.normsPerBlock, kTimeout);
        action->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(canvas->smallMultiples().size() == 4, kTimeout);
        // Another model: cleared; Swin has no token norms: refused with the reason, left off.
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-swin");
        QVERIFY(waitUntil(
            s, [&] { return st.model.name == "shapes-swin" && !st.image.path.empty() && !st.map.empty(); }, kTimeout));
        QVERIFY(!st.neuronTools.normsPerBlock && !st.neuronTools.normBlocks && canvas->smallMultiples().empty() &&
                !action->isChecked());
        ErrorLog errors(w);
        action->trigger();  // (said at once)
        QCOMPARE(errors.count(), 1);
        QVERIFY2(errors.last().contains("Swin"), qPrintable(errors.last()));
        QVERIFY(!st.neuronTools.normsPerBlock && !action->isChecked());
    }

    // View > Token norms of every block at 1024 x 768: each block's caption readable (its whole
    // caption or a shorter form whose every line fits the map, never cut; the whole one as its
    // tooltip). With View > Test-time registers too: a second row, the intervened model's blocks, on
    // the same scale (core's tokenNorms of the test-time-register model).
    void tokenNormRowsReadableAndWithRegisters() {
        QTemporaryDir data;
        MainWindow w(testStart(data.path()));
        w.resize(1024, 768);
        w.show();
        Session& s = w.session();
        const State& st = s.state();
        ImageCanvas* canvas = w.views().canvas;
        QVERIFY(waitUntil(s, [&] { return !st.image.path.empty() && !st.map.empty() && st.dataset.ready() && !st.job.running(); }, kTimeout));
        w.findChild<QAction*>("normBlocksAction")->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(st.neuronTools.normBlocks && canvas->smallMultiples().size() == 4, kTimeout);
        const auto readable = [&](int count) {
            canvas->grab();  // (painted on the widget: what it drew is recorded)
            canvas->repaint();
            const std::vector<MapLayer>& m = canvas->smallMultiples();
            QCOMPARE(int(canvas->shownMultiples().size()), count);
            QCOMPARE(int(canvas->shownMultipleCaptions().size()), count);
            QFont f = canvas->font();
            const QFontMetrics fm(f);
            for (int i = 0; i < count; ++i) {
                const QString shown = canvas->shownMultipleCaptions()[i];
                QVERIFY2(shown == m[std::size_t(i)].caption || m[std::size_t(i)].shortCaptions.contains(shown), qPrintable(shown));
                QVERIFY2(!shown.contains(QChar(0x2026)), qPrintable(shown));
                for (const QString& line : shown.split('\n'))
                    QVERIFY2(fm.horizontalAdvance(line) <= canvas->shownMultiples()[std::size_t(i)].width(), qPrintable(line));
                QVERIFY2(shown.startsWith(QString("b%1").arg(i % 4)), qPrintable(shown));
                QVERIFY2(shown.contains('/'), qPrintable(shown));  // max / median kept
            }
        };
        readable(4);
        QHelpEvent help(QEvent::ToolTip, canvas->shownMultiples()[1].center(), canvas->mapToGlobal(canvas->shownMultiples()[1].center()));
        QApplication::sendEvent(canvas, &help);
        QTRY_COMPARE_WITH_TIMEOUT(QToolTip::text(), canvas->smallMultiples()[1].caption, kTimeout);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/token-norm-blocks-1024-captions.png");
        // Test-time registers too: both rows.
        w.findChild<QAction*>("registersAction")->trigger();
        QVERIFY(waitUntil(s, [&] {
            return st.registers && st.map.withRegisters && st.neuronTools.normBlocksRegisters && canvas->smallMultiples().size() == 8;
        }, 5 * kTimeout));
        QCOMPARE(st.map.maps.front().method, std::string("token-norms"));
        QVERIFY2(canvas->map().caption.contains("second row"), qPrintable(canvas->map().caption));
        const std::vector<MapLayer> m = canvas->smallMultiples();
        const Model model = loadModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        std::vector<std::string> paths = DatasetCache(st.dataset.summary.cacheDir).paths();
        const RegisterFindParams find = registerFindDefaults(model);
        if (static_cast<int>(paths.size()) > find.processedImageCnt) paths.resize(static_cast<std::size_t>(find.processedImageCnt));
        Model intervened = model;
        applyTestTimeRegisters(intervened, testTimeRegisterDefaults(model), findRegisterNeurons(model, paths, find, {}));
        const at::Tensor pixels = preprocessImage(loadImageRgb(st.image.path), model.preprocess).unsqueeze(0);
        const TokenNormReport plain = tokenNorms(model, pixels, find), reg = tokenNorms(intervened, pixels, registerFindDefaults(intervened));
        const int64_t grid = int64_t(plain.gridH) * plain.gridW;
        const double top = std::max(plain.norms.narrow(1, plain.prefix, grid).max().item<double>(), reg.norms.narrow(1, reg.prefix, grid).max().item<double>());
        for (std::size_t i = 0; i < m.size(); ++i) {
            const TokenNormReport& t = i < 4 ? plain : reg;
            QCOMPARE(m[i].row, i < 4 ? 0 : 1);
            QVERIFY((floatTensor(m[i].values) - t.norms[int64_t(i % 4)].narrow(0, t.prefix, grid)).abs().max().item<double>() < 1e-4);
            QCOMPARE(m[i].lo, 0.0f);
            QVERIFY(std::abs(m[i].hi - top) < 1e-4);  // one scale for both rows
        }
        QVERIFY(m[4].caption.startsWith("b0 reg"));
        readable(8);
        const std::vector<QRect> boxes = canvas->shownMultiples();
        QVERIFY(boxes[4].top() > boxes[0].bottom() - 6 && canvas->rect().contains(boxes[7]));  // the second row under the first
        const QImage shot = canvas->grab().toImage();
        QVERIFY(pixelAt(shot, boxes[5].center()) != pixelAt(shot, QPoint(canvas->width() - 2, boxes[5].center().y())));  // drawn
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS"))
            w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/token-norm-blocks-registers-1024.png");
        // Registers off: the one row again.
        w.findChild<QAction*>("registersAction")->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(!st.map.withRegisters && canvas->smallMultiples().size() == 4, kTimeout);
    }

    // The property score grid is recomputed for a new dataset (it kept the old numbers), and a
    // new model clears it.
    void propertyScoresFollowTheDataset() {
        Session& s = m_window->session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.ready(); }, kTimeout));
        const QString original = st.dataset.folder;
        s.setProperty("color");
        QVERIFY(waitUntil(s, [&] { return st.scores.property == "color" && !st.scores.grid.empty(); }, kTimeout));
        const std::vector<float> first = st.scores.grid.heads.values;
        QTemporaryDir other;
        ensureShapesWorld((other.path() + "/w").toStdString(), 60, 4242, "standard", {});
        s.openDataset(other.path() + "/w/images");
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == other.path() + "/w/images"; }, kTimeout));
        QVERIFY(st.scores.grid.empty());  // the old dataset's scores are gone at once
        QVERIFY(waitUntil(s, [&] { return st.scores.property == "color" && !st.scores.grid.empty(); }, kTimeout));
        QVERIFY(st.scores.grid.heads.values != first);
        QCOMPARE(m_window->views().grid->metricName(), QString("property score: color"));
        s.openDataset(original);
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == original && !st.scores.grid.empty() && !st.descriptions.empty(); }, kTimeout));
        s.setMetric(GridMetric::DirectEffect);
    }

    // Ctrl+E exports the canvas from the text box too (its own binding of the key loses).
    void ctrlEExportsFromTheTextBox() {
        TextControls* controls = m_window->views().text;
        QSignalSpy asked(controls, &TextControls::exportRequested);
        QLineEdit* edit = controls->textBox()->lineEdit();
        edit->setFocus();
        // The export dialog opens (modal): note its title and close it.
        QString dialogTitle;
        QTimer closer;
        closer.setInterval(20);
        connect(&closer, &QTimer::timeout, this, [&] {
            if (auto* d = qobject_cast<QDialog*>(QApplication::activeModalWidget())) {
                dialogTitle = d->windowTitle();
                d->reject();
            }
        });
        closer.start();
        QTest::keyClick(edit, Qt::Key_E, Qt::ControlModifier);
        QCOMPARE(asked.count(), 1);
        QCOMPARE(dialogTitle, QString("Export figure"));
        // As a window system delivers it: to the focus widget (the combo box hands its line edit
        // the events directly), shortcut override first.
        dialogTitle.clear();
        QKeyEvent override(QEvent::ShortcutOverride, Qt::Key_E, Qt::ControlModifier, "\x05");
        QApplication::sendEvent(controls->textBox(), &override);
        QVERIFY(override.isAccepted());  // the window's shortcut does not take it: the key press comes
        QKeyEvent press(QEvent::KeyPress, Qt::Key_E, Qt::ControlModifier, "\x05");
        QApplication::sendEvent(controls->textBox(), &press);
        closer.stop();
        QCOMPARE(asked.count(), 2);
        QCOMPARE(dialogTitle, QString("Export figure"));
        QVERIFY(m_window->menus().shortcutsText().contains("Ctrl+E"));
    }

    // A classifier without an aligner beside it is refused with words for the window (not the
    // command line's flags); File > Open aligner opens it with one, and the ledger is complete.
    void aClassifierOpensWithAnAlignerChosenInTheWindow() {
        QTemporaryDir bare;
        for (const char* f : {"config.json", "model.safetensors"})
            QVERIFY(QFile::copy(QString(VITSCOPE_SOURCE_DIR "/models/shapes-vit/") + f, bare.path() + "/" + f));
        Session& s = m_window->session();
        const State& st = s.state();
        const std::string before = st.model.fingerprint;
        const QString beforeSpec = QString::fromStdString(st.model.spec);
        ErrorLog errors(*m_window);
        s.openModel(bare.path());
        QVERIFY(errors.wait(kTimeout));
        QVERIFY2(errors.last().contains("File > Open aligner") && !errors.last().contains("--aligner"), qPrintable(errors.last()));
        QCOMPARE(st.modelNeedingAligner, bare.path());
        QCOMPARE(st.model.fingerprint, before);  // the open model stays
        s.openModel(st.modelNeedingAligner, VITSCOPE_SOURCE_DIR "/models/shapes-vit/aligner.safetensors");
        QVERIFY(waitUntil(s, [&] { return st.model.fingerprint != before && st.hasModel(); }, kTimeout));
        QVERIFY(!st.model.clip);
        QVERIFY(st.modelNeedingAligner.isEmpty());
        QVERIFY(waitUntil(s, [&] { return !st.ledger.rows.empty() && !st.descriptions.empty(); }, kTimeout));
        QVERIFY(std::abs(st.ledger.residual) <= 1e-4 * std::max(1.0, std::abs(st.ledger.total)));
        // Back to the model it had, for the tests that follow.
        s.openModel(beforeSpec);
        QVERIFY(waitUntil(s, [&] { return st.model.fingerprint == before && !st.descriptions.empty() && !st.map.empty(); }, kTimeout));
    }

    // File > Fit an aligner: the classifier refused for want of an aligner gets one fitted into
    // the open CLIP model's space on the open dataset, saved where asked, and opens through it.
    void aClassifierGetsAnAlignerFittedOnTheOpenDataset() {
        QTemporaryDir data, bare;
        for (const char* f : {"config.json", "model.safetensors"})
            QVERIFY(QFile::copy(QString(VITSCOPE_SOURCE_DIR "/models/shapes-vit/") + f, bare.path() + "/" + f));
        ensureShapesWorld((data.path() + "/a").toStdString(), 60, 6161, "standard", {});
        StartOptions o = testStart(data.path());
        o.dataset = data.path() + "/a/images";
        MainWindow w(o);
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == o.dataset && !st.descriptions.empty(); }, kTimeout));
        const std::string clipSpec = st.model.spec, clipFingerprint = st.model.fingerprint;
        const QString out = bare.path() + "/fitted.safetensors";
        ErrorLog errors(w);
        s.fitAligner(out);  // no model has been refused yet: nothing to fit (said at once)
        QCOMPARE(errors.count(), 1);
        QVERIFY2(errors.last().contains("open the classifier first"), qPrintable(errors.last()));
        s.openModel(bare.path());
        QVERIFY(errors.wait(kTimeout));
        QVERIFY2(errors.last().contains("Fit an aligner"), qPrintable(errors.last()));
        QCOMPARE(st.model.fingerprint, clipFingerprint);
        // Another model asked for while the aligner is fitted: that model opens, the aligner is
        // saved and offered, the classifier is not opened over the user's choice.
        const QString spurious = VITSCOPE_SOURCE_DIR "/models/shapes-clip-spurious", early = bare.path() + "/early.safetensors";
        s.fitAligner(early);
        s.openModel(spurious);
        QVERIFY(waitUntil(s, [&] { return st.message.text.contains("open it with File > Open aligner"); }, kTimeout));
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-clip-spurious" && st.dataset.folder == o.dataset && !st.descriptions.empty(); },
                          kTimeout));
        QVERIFY(QFileInfo(early).isFile());
        QCOMPARE(st.modelNeedingAligner, bare.path());
        s.openModel(QString::fromStdString(clipSpec));
        QVERIFY(waitUntil(s, [&] { return st.model.fingerprint == clipFingerprint && !st.descriptions.empty(); }, kTimeout));
        s.fitAligner(out);
        QVERIFY(waitUntil(s, [&] { return st.model.aligner == out.toStdString() && st.hasModel() && !st.descriptions.empty(); }, kTimeout));
        QVERIFY(!st.model.clip);
        QVERIFY(st.modelNeedingAligner.isEmpty());
        QCOMPARE(st.dataset.folder, o.dataset);  // the dataset follows the new model
        // The file records what it was fitted on, and maps into the CLIP model's space better
        // than chance (random directions in the embedding space have cosine ~0).
        const Aligner a = loadAligner(out.toStdString());
        QVERIFY(a.perComponent());
        QCOMPARE(a.settings.at("clip_model"), clipSpec);
        QCOMPARE(a.settings.at("held_out_images"), std::string("12"));  // 20% of 60
        QVERIFY2(std::stod(a.settings.at("held_out_cosine")) > 0.5, a.settings.at("held_out_cosine").c_str());
        // The decomposition through it sums to the score.
        QVERIFY(waitUntil(s, [&] { return !st.ledger.rows.empty(); }, kTimeout));
        QVERIFY(std::abs(st.ledger.residual) <= 1e-4 * std::max(1.0, std::abs(st.ledger.total)));
    }

    // An image or dataset opened while a model loads is opened by that model once it is in (it
    // was analysed by the new model and then dropped as the old model's); a model that fails
    // hands them to the open one.
    void requestsWhileAModelLoadsAreKept() {
        QTemporaryDir data;
        ensureShapesWorld((data.path() + "/a").toStdString(), 40, 5151, "standard", {});
        ensureShapesWorld((data.path() + "/b").toStdString(), 40, 5252, "standard", {});
        StartOptions o = testStart(data.path());
        o.dataset = data.path() + "/a/images";
        MainWindow w(o);
        Session& s = w.session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.dataset.folder == o.dataset && !st.descriptions.empty(); }, kTimeout));
        s.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        const QString b = data.path() + "/b/images", image = data.path() + "/b/images/000003.png";
        s.openDataset(b);
        s.openImage(image);
        QVERIFY(waitUntil(s, [&] { return st.model.name == "shapes-vit" && st.dataset.folder == b && st.imagePath() == image; }, kTimeout));
        // A model that fails: the open model takes what was asked for meanwhile.
        ErrorLog errors(w);
        s.openModel(data.path() + "/no-such-model");
        s.openDataset(o.dataset);
        QVERIFY(waitUntil(s, [&] { return errors.count() > 0 && st.dataset.folder == o.dataset; }, kTimeout));
        QCOMPARE(QString::fromStdString(st.model.name), QString("shapes-vit"));
        QVERIFY2(errors.last().contains("still using shapes-vit"), qPrintable(errors.last()));
    }

    // Analysis > Heatmap settings reach the maps: Chefer's first layer (the family's reference
    // default, CLIP's notebook: the last layer) and its alternative; the caption and the export
    // record say which.
    void heatmapSettingsReachTheMaps() {
        Session& s = m_window->session();
        const State& st = s.state();
        QVERIFY(waitUntil(s, [&] { return st.hasImage() && !st.text.isEmpty() && st.model.clip; }, kTimeout));
        QCOMPARE(st.model.cheferDefaultStartLayer, -1);
        auto restore = qScopeGuard([&] {
            s.setMapOptions({});
            s.setMethod("decomposition");
        });
        s.setMethod("chefer");
        QVERIFY(waitUntil(s, [&] { return !st.map.empty() && st.map.maps.front().method == "chefer"; }, kTimeout));
        QVERIFY2(m_window->views().canvas->map().caption.contains("(last layer)"), qPrintable(m_window->views().canvas->map().caption));
        const std::vector<float> lastLayer = st.map.maps.front().patches.values;
        MapOptions every;
        every.cheferStartLayer = 0;
        s.setMapOptions(every);
        QVERIFY(waitUntil(s, [&] { return !st.map.empty() && st.map.options.cheferStartLayer == 0; }, kTimeout));
        QVERIFY2(m_window->views().canvas->map().caption.contains("(every layer)"), qPrintable(m_window->views().canvas->map().caption));
        QVERIFY(st.map.maps.front().patches.values != lastLayer);
        QTemporaryDir out;
        QCOMPARE(m_window->exporter().exportData("heatmap", out.path() + "/chefer.csv"), QString());
        QFile rf(out.path() + "/chefer.csv.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const QJsonObject options = QJsonDocument::fromJson(rf.readAll()).object()["map_options"].toObject();
        QCOMPARE(options["chefer_start_layer"].toInt(), 0);
        QCOMPARE(options["chefer_start_layer_is_reference_default"].toBool(), false);
    }

    void cleanupTestCase() { m_window.reset(); }
};

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    TestGui gui;
    return QTest::qExec(&gui, argc, argv);
}

#include "test_gui.moc"
