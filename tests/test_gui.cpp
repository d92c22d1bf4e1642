// The desktop application driven through its real main window (offscreen): the bundled model
// loads, the shapes world is cached, an image is dropped, a text typed, a head clicked, a
// retrieval run, an ablation toggled, figures exported and checked; bad files give messages.
// LibTorch headers before Qt's (its "slots" macro).
#include "analysis/alignment.h"
#include "analysis/components.h"
#include "image/preprocess.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"

#include "ablation_panel.h"
#include "classroom.h"
#include "colormap.h"
#include "drive.h"
#include "engine.h"
#include "error.h"
#include "figure_export.h"
#include "gallery.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "main_window.h"
#include "metatypes.h"
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
#include <QRegularExpression>
#include <QSet>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolTip>
#include <QUrl>
#include <QHelpEvent>
#include <QApplication>
#include <QStandardItemModel>
#include <QtTest/QtTest>

#include <algorithm>
#include <atomic>
#include <cmath>
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

}  // namespace

// The color-classification ablation task on the window's shapes world (backgrounds as groups),
// means from a reference split of `references` scenes; waits for its first outcome, fails on an error.
void startColorAblation(MainWindow& w, const QString& dataDir, int references, QSignalSpy& ablation, QSignalSpy& errors) {
    QVERIFY(writeColorClasses(dataDir + "/colors.tsv"));
    ensureShapesWorld((dataDir + "/reference").toStdString(), references, 99, "standard", {});
    w.ablationPanel()->setTaskForm(dataDir + "/shapes-world/labels.csv", "color", dataDir + "/colors.tsv", "background",
                                   dataDir + "/reference/images");
    w.ablationPanel()->requestTask();
    QTRY_VERIFY_WITH_TIMEOUT(ablation.count() > 0 || errors.count() > 0, kTimeout);
    if (errors.count() > 0) QFAIL(qPrintable(errors.first().at(0).toString()));
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

class TestGui : public QObject {
    Q_OBJECT
    QTemporaryDir m_data;
    std::unique_ptr<MainWindow> m_window;

    // The first view (issue: "what a newcomer sees"): a single-object scene of the bundled world
    // and its own text, the map lighting that object, the strongest head selected with its panel,
    // the gallery answering the text.
    void checkOpeningView() {
        MainWindow& w = *m_window;
        QTRY_VERIFY_WITH_TIMEOUT(w.canvas()->hasImage() && !w.canvas()->map().values.empty(), kTimeout);
        const QString text = w.findChild<QComboBox*>("textBox")->currentText();
        QVERIFY2(QRegularExpression("^a [a-z]+ [a-z]+$").match(text).hasMatch(), qPrintable(text));
        QVERIFY(w.canvas()->map().caption.endsWith(text));
        // The scene's labels say one object, with that color and shape.
        QFile labels(m_data.path() + "/shapes-world/labels.csv");
        QVERIFY(labels.open(QIODevice::ReadOnly));
        const QStringList head = QString::fromUtf8(labels.readLine()).trimmed().split(',');
        const QString file = "images/" + QFileInfo(w.canvas()->imagePath()).fileName();
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
        const MapLayer& map = w.canvas()->map();
        const auto peak = std::max_element(map.values.begin(), map.values.end()) - map.values.begin();
        const QImage m = QImage(mask).scaled(map.cols, map.rows);
        QVERIFY2(qGray(m.pixel(int(peak % map.cols), int(peak / map.cols))) > 127, qPrintable(mask));
        QTRY_VERIFY_WITH_TIMEOUT(!w.grid()->selection().isEmpty(), kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(w.gallery()->globalCount() > 0, kTimeout);
        QVERIFY2(w.gallery()->resultsFor().contains(text), qPrintable(w.gallery()->resultsFor()));
        QTRY_VERIFY_WITH_TIMEOUT(w.headPanel()->layer() >= 0, kTimeout);
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
        StartOptions o;
        o.dataDir = m_data.path();
        o.restoreSettings = false;
        o.device = "cpu";
        m_window = std::make_unique<MainWindow>(o);
        QSignalSpy model(m_window.get(), &MainWindow::modelReady);
        QSignalSpy described(m_window.get(), &MainWindow::descriptionsReady);
        m_window->resize(1400, 900);
        m_window->show();
        QVERIFY(model.wait(kTimeout));
        QCOMPARE(m_window->modelSummary().layers, 4);
        QCOMPARE(m_window->modelSummary().heads, 4);
        QVERIFY(m_window->modelSummary().clip);
        // The bundled world is generated and cached in the background, then its heads described.
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0, kTimeout);
        checkOpeningView();
        QVERIFY(m_window->datasetReady());
        QCOMPARE(int(m_window->descriptions().size()), 16);
        QVERIFY(QFile::exists(m_data.path() + "/shapes-world/labels.csv"));
    }

    void dropImageTypeTextAndReadTheLedger() {
        const QString image = m_data.path() + "/shapes-world/images/000003.png";
        QVERIFY(QFile::exists(image));
        QSignalSpy imageReady(m_window.get(), &MainWindow::imageReady);
        QSignalSpy heat(m_window.get(), &MainWindow::heatmapReady);
        QSignalSpy ledger(m_window.get(), &MainWindow::ledgerReady);
        dropFile(m_window->canvas(), image);
        QVERIFY(imageReady.wait(kTimeout));
        QCOMPARE(m_window->canvas()->imagePath(), image);
        typeText(*m_window, "a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0 && ledger.count() > 0, kTimeout);
        // The overlay covers the model's input (64 x 64) with a finite, non-constant map.
        const MapLayer& map = m_window->canvas()->map();
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
        const Ledger& g = m_window->ledgerView()->ledger();
        QCOMPARE(g.text, std::string("a red object"));
        QCOMPARE(int(g.rows.size()), 1 + 16 + 4 + 4 + 1);  // embed, heads, attention biases, MLPs, final bias
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(m_window->ledgerView()->summaryText()));
        QVERIFY(std::abs(g.total) > 1e-3);
        QVERIFY(m_window->ledgerView()->plot()->plottableCount() == 1 + 4 + 2);
        // Hovering a bar says what it is worth: down the last layer's column every segment
        // names itself with the ledger's own value for it; above the stack, nothing.
        {
            LedgerView* lv = m_window->ledgerView();
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
            m_window->setMethod(method);
            QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before, kTimeout);
            QVERIFY(m_window->canvas()->map().caption.startsWith(method));
            const std::vector<float>& values = m_window->canvas()->map().values;
            QVERIFY(std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); }));
            QVERIFY2(*std::max_element(values.begin(), values.end()) > *std::min_element(values.begin(), values.end()), qPrintable(method));
        }
    }

    void referenceTextsAreSubtracted() {
        // Analysis > Reference texts: the map becomes the text's map minus the references' mean,
        // and the caption says so; switching it off restores the text's own map.
        QSignalSpy heat(m_window.get(), &MainWindow::heatmapReady);
        m_window->setMethod("decomposition");
        typeText(*m_window, "a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->canvas()->map().caption.endsWith("a red object"), kTimeout);
        const std::vector<float> own = m_window->canvas()->map().values;
        const QString refs = m_data.path() + "/colors.txt";
        QFile f(refs);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("a red object\na green object\na blue object\na yellow object\n");
        f.close();
        m_window->loadReferenceTexts(refs);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->canvas()->map().caption.contains("mean of 4 reference texts (colors.txt)"), kTimeout);
        const std::vector<float> subtracted = m_window->canvas()->map().values;
        QCOMPARE(subtracted.size(), own.size());
        double diff = 0;
        for (std::size_t i = 0; i < own.size(); ++i) diff = std::max(diff, double(std::abs(own[i] - subtracted[i])));
        QVERIFY(diff > 1e-4);
        const int before = heat.count();
        m_window->setSubtractReference(false);
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before && !m_window->canvas()->map().caption.contains("reference"), kTimeout);
        QVERIFY(m_window->canvas()->map().values == own);
        // An unreadable reference file: a message naming it, and heatmaps stay the text's own.
        QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
        m_window->loadReferenceTexts(m_data.path() + "/no-such-texts.txt");
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
        QVERIFY(errors.last().at(0).toString().contains("no-such-texts.txt"));
        m_window->setSubtractReference(true);
        const int again = heat.count();
        typeText(*m_window, "a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > again, kTimeout);
        QVERIFY(!m_window->canvas()->map().caption.contains("reference"));
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
        QSignalSpy heat(m_window.get(), &MainWindow::heatmapReady);
        QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
        m_window->setMethod("decomposition");
        typeText(*m_window, "a blue object");
        QTRY_VERIFY_WITH_TIMEOUT(m_window->canvas()->map().caption.endsWith("a blue object"), kTimeout);
        const QString caption = m_window->canvas()->map().caption;
        typeText(*m_window, "a photo of a dog");
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->canvas()->message().contains("still the one for \"a blue object\""), kTimeout);
        // The log says it once, in words (no internal job names).
        auto* log = m_window->findChild<QPlainTextEdit*>();
        QVERIFY(log);
        QTRY_VERIFY_WITH_TIMEOUT(log->toPlainText().contains("'photo'"), kTimeout);
        QTest::qWait(50);  // a second copy would be queued behind the first
        const QStringList mentions = log->toPlainText().split('\n').filter("'photo'");
        QVERIFY2(mentions.size() == 1, qPrintable(mentions.join(" || ")));
        QVERIFY2(!log->toPlainText().contains("job heatmap"), qPrintable(log->toPlainText().right(400)));
        QCOMPARE(m_window->canvas()->map().caption, caption);
        // The message says what the model knows: its vocabulary, listed when small (no word is
        // close to "photo" in the shapes world's 38).
        QVERIFY2(m_window->canvas()->message().contains("vocabulary of 38 words (it knows: ") &&
                     m_window->canvas()->message().contains(" circle "),
                 qPrintable(m_window->canvas()->message()));
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
        const QImage withError = m_window->canvas()->grab().toImage().convertToFormat(QImage::Format_RGB32);
        const QList<int> rows = stripRows(withError);
        QVERIFY(rows.size() > 10);
        QCOMPARE(rows.last(), withError.height() - 1);                    // the strip ends at the bottom
        QCOMPARE(rows.last() - rows.first() + 1, int(rows.size()));       // one block, nothing above it
        const int before = heat.count();
        typeText(*m_window, "a green object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before && m_window->canvas()->map().caption.endsWith("a green object"), kTimeout);
        QVERIFY(m_window->canvas()->message().isEmpty());
        QVERIFY(stripRows(m_window->canvas()->grab().toImage().convertToFormat(QImage::Format_RGB32)).isEmpty());
    }

    // The bundled model reads a word vocabulary: the text box completes the word being typed from
    // it, and a pick replaces only that word.
    void textBoxCompletesKnownWords() {
        WordCompleter* words = m_window->wordCompleter();
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
        QCOMPARE(QString::fromStdString(m_window->descriptions().front().convention), QString("exact"));
        QSettings().setValue("textspan/convention", "textspan");
        QSignalSpy described(m_window.get(), &MainWindow::descriptionsReady);
        m_window->openDataset(m_data.path() + "/shapes-world/images");
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0, kTimeout);
        QCOMPARE(QString::fromStdString(m_window->descriptions().front().convention), QString("textspan"));
        QCOMPARE(int(m_window->descriptions().size()), 16);
        QVERIFY2(m_window->statusText().contains("16 heads described"), qPrintable(m_window->statusText()));
        QSettings().setValue("textspan/convention", "exact");
        m_window->openDataset(m_data.path() + "/shapes-world/images");
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 1, kTimeout);
        QCOMPARE(QString::fromStdString(m_window->descriptions().front().convention), QString("exact"));
    }

    void clickHeadShowsItsPanel() {
        QSignalSpy panel(m_window.get(), &MainWindow::headPanelReady);
        HeadGrid* grid = m_window->grid();
        const QRect cell = grid->cellRect(3, 1);
        QVERIFY(!cell.isEmpty());
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, cell.center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(m_window->headPanel()->layer(), 3);
        QCOMPARE(m_window->headPanel()->head(), 1);
        QCOMPARE(m_window->headPanel()->barCount(), 1);
        QCOMPARE(m_window->headPanel()->imageCount(), 12);
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
        QTRY_VERIFY_WITH_TIMEOUT(m_window->headPanel()->layer() == 3 && m_window->headPanel()->head() == 2, kTimeout);
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
        QSignalSpy mlpPanel(m_window.get(), &MainWindow::headPanelReady);
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, mlpCell.center());
        QTRY_VERIFY_WITH_TIMEOUT(mlpPanel.count() > 0 && m_window->headPanel()->imageCount() == 12, kTimeout);
        QVERIFY2(m_window->headPanel()->titleText().startsWith("mlp.2:"), qPrintable(m_window->headPanel()->titleText()));
        QCOMPARE(grid->selection(), selected);
        QCOMPARE(m_window->headPanel()->barCount(), 0);
        for (QPushButton* b : m_window->headPanel()->findChildren<QPushButton*>())
            if (b->text() == "Retrieve with this head") QVERIFY(!b->isEnabled());
        auto* images = m_window->headPanel()->findChild<QListWidget*>();
        for (int i = 1; i < images->count(); ++i)  // strongest first
            QVERIFY(images->item(i - 1)->text().toDouble() >= images->item(i)->text().toDouble());
        // Per-head maps of two heads: named, on one colour scale (their joint range), one
        // colorbar after them (the colormap's own colours in the row's part of the canvas).
        m_window->setMethod("decomposition");
        typeText(*m_window, "a red object");
        grid->setSelection({HeadId{3, 1}, HeadId{2, 2}});
        QSignalSpy heat(m_window.get(), &MainWindow::heatmapReady);
        QCheckBox* perHead = nullptr;
        for (QCheckBox* b : m_window->findChildren<QCheckBox*>())
            if (b->text() == "Per-head maps") perHead = b;
        QVERIFY(perHead);
        ImageCanvas* canvas = m_window->canvas();
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
        QCOMPARE(maps[0].caption, QString("head 3.1"));
        QCOMPARE(maps[1].caption, QString("head 2.2"));
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
        m_window->grid()->setSelection({HeadId{3, 1}, HeadId{1, 1}});
        QSignalSpy ready(m_window.get(), &MainWindow::retrievalReady);
        m_window->runRetrieval("a blue object");
        QVERIFY(ready.wait(kTimeout));
        Gallery* g = m_window->gallery();
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
        QSignalSpy imageReady(m_window.get(), &MainWindow::imageReady);
        emit g->imageActivated(g->restrictedPath(0));
        QVERIFY(imageReady.wait(kTimeout));
        QCOMPARE(m_window->canvas()->imagePath(), g->restrictedPath(0));
        // Results always answer the query and heads shown: the box and the caption name the query,
        // a new head selection runs it again through the new heads, and Ctrl+R's text shows in the box.
        auto* box = g->findChild<QLineEdit*>("galleryQuery");
        QVERIFY(box);
        QCOMPARE(box->text(), QString("a blue object"));
        QCOMPARE(g->resultsFor(), QString("Results for \"a blue object\""));
        const int n = ready.count();
        m_window->grid()->setSelection({HeadId{2, 0}});
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() > n && g->result().components == std::vector<std::string>{"2.0"}, kTimeout);
        QCOMPARE(g->result().query, std::string("a blue object"));
        m_window->setText("a red object");
        const int m = ready.count();
        m_window->runRetrieval("a red object");
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
        QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
        box->setText("colour");
        QTest::keyClick(box, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
        const QString said = errors.last().at(0).toString();
        QVERIFY2(said.contains("'colour'") && said.contains("color") && !said.contains("--"), qPrintable(said));
        QVERIFY(!m_window->grid()->metricName().contains("colour"));
        box->setText("color");
        QTest::keyClick(box, Qt::Key_Return);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->grid()->metricName() == "property score: color", kTimeout);
        int finite = 0;
        for (int l = 0; l < m_window->grid()->layers(); ++l)
            for (int h = 0; h < m_window->grid()->heads(); ++h) finite += std::isfinite(m_window->grid()->value(l, h));
        QCOMPARE(finite, m_window->grid()->layers() * m_window->grid()->heads());
        m_window->findChild<QComboBox*>("metricBox")->setCurrentIndex(0);  // back to the direct-effect norm
        QCOMPARE(m_window->grid()->metricName(), QString("direct-effect norm"));
    }

    void exportsHoldTheirContent() {
        QTemporaryDir out;
        // PNG at a chosen DPI: the pixel size follows.
        const QString png = out.path() + "/canvas.png";
        QCOMPARE(m_window->exportView("canvas", png, 192), QString());
        const QImage img(png);
        QVERIFY(!img.isNull());
        QCOMPARE(img.height(), std::max(420, m_window->canvas()->height()) * 2);
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
        m_window->grid()->setSelection({HeadId{3, 1}});
        emit m_window->grid()->headActivated(HeadId{3, 1});
        const QString svg = out.path() + "/head.svg";
        // From a dock too narrow for the chart's texts: the figure has them whole all the same.
        auto* headDock = m_window->findChild<QDockWidget*>("headDock");
        const int headDockWidth = headDock->width();
        m_window->resizeDocks({headDock}, {headDock->minimumSizeHint().width()}, Qt::Horizontal);
        QTest::qWait(50);
        QCOMPARE(m_window->exportView("head", svg, 96), QString());
        m_window->resizeDocks({headDock}, {headDockWidth}, Qt::Horizontal);
        QFile f(svg);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray s = f.readAll();
        QVERIFY(s.startsWith("<?xml") && s.contains("<svg"));
        QVERIFY(s.contains("variance explained"));
        const HeadDescription* d = nullptr;
        for (const HeadDescription& x : m_window->descriptions())
            if (x.layer == 3 && x.index == 1) d = &x;
        QVERIFY(d && !d->picks.empty());
        for (const auto& pick : d->picks)
            QVERIFY2(s.contains(QByteArray::fromStdString(pick.text)), ("the SVG lacks '" + pick.text + "' whole").c_str());
        QVERIFY(s.count("<path") + s.count("<rect") + s.count("<polyline") >= 5);
        QVERIFY2(s.contains("Head 3.1:") && s.contains("texts explain"), "the head chart does not say which head it is");
        // The ledger chart says its text, the model's score and the residual.
        QSignalSpy ledgerSpy(m_window.get(), &MainWindow::ledgerReady);
        m_window->setText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(ledgerSpy.count() > 0 && m_window->ledgerView()->ledger().text == "a red object", kTimeout);
        const QString ledgerSvg = out.path() + "/ledger.svg";
        QCOMPARE(m_window->exportView("ledger", ledgerSvg, 96), QString());
        QFile lf(ledgerSvg);
        QVERIFY(lf.open(QIODevice::ReadOnly));
        const QString ls = QString::fromUtf8(lf.readAll());
        const Ledger& lg = m_window->ledgerView()->ledger();
        QVERIFY2(ls.contains("a red object") && ls.contains("residual") && ls.contains(QString::number(lg.total, 'g', 6)),
                 "the ledger chart lacks its text, score or residual");
        const QString gridSvg = out.path() + "/grid.svg";
        QCOMPARE(m_window->exportView("grid", gridSvg, 96), QString());
        QFile gf(gridSvg);
        QVERIFY(gf.open(QIODevice::ReadOnly));
        const QByteArray gs = gf.readAll();
        QVERIFY(gs.contains("MLP") && gs.contains("direct-effect norm"));
        // The grid as a picture: the widget's own aspect (cells stay square), without the
        // selection's outline, which the screen shows.
        HeadGrid* grid = m_window->grid();
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
        QCOMPARE(m_window->exportView("grid", gridPng, 96), QString());
        const QImage gridImage(gridPng);
        const double aspect = grid->width() / double(grid->height()), exported = gridImage.width() / double(gridImage.height());
        QVERIFY2(std::abs(exported / aspect - 1) < 0.02, qPrintable(QString("aspect %1 exported as %2").arg(aspect).arg(exported)));
        QCOMPARE(outlinePixels(gridImage), 0);
        // PDF: a real document with one page.
        const QString pdf = out.path() + "/ledger.pdf";
        QCOMPARE(m_window->exportView("ledger", pdf, 96), QString());
        QFile pf(pdf);
        QVERIFY(pf.open(QIODevice::ReadOnly));
        const QByteArray p = pf.readAll();
        QVERIFY(p.startsWith("%PDF-"));
        QVERIFY(p.size() > 2000);
        QVERIFY(p.contains("/Type /Page") || p.contains("/Type/Page"));
        // The canvas's PDF holds its pixel images losslessly (no JPEG) and uninterpolated.
        const QString canvasPdf = out.path() + "/canvas.pdf";
        QCOMPARE(m_window->exportView("canvas", canvasPdf, 96), QString());
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
            QCOMPARE(o["model_fingerprint"].toString(), QString::fromStdString(m_window->modelSummary().fingerprint));
            QVERIFY(!o["method"].toString().isEmpty());
            QVERIFY(!o["text"].toString().isEmpty());
        }
        // Numbers: the heatmap as .npy / .csv, the ledger as .json.
        QCOMPARE(m_window->exportData("heatmap", out.path() + "/map.npy"), QString());
        QFile npy(out.path() + "/map.npy");
        QVERIFY(npy.open(QIODevice::ReadOnly));
        const QByteArray nb = npy.readAll();
        QVERIFY(nb.startsWith("\x93NUMPY") && nb.contains("(8, 8)"));
        QCOMPARE(m_window->exportData("grid", out.path() + "/grid.csv"), QString());
        QFile csv(out.path() + "/grid.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QList<QByteArray> gridLines = csv.readAll().trimmed().split('\n');
        QCOMPARE(gridLines.size(), 1 + m_window->grid()->layers());
        QVERIFY2(gridLines[0].startsWith("name,head 0") && gridLines[1].startsWith("layer 0,"), gridLines[0].constData());
        QCOMPARE(m_window->exportData("ledger", out.path() + "/ledger.json"), QString());
        // The ledger's CSV: each term by name, its layer and head only where it has them, the
        // scores adding up to the sum of terms.
        QCOMPARE(m_window->exportData("ledger", out.path() + "/ledger.csv"), QString());
        QFile lc(out.path() + "/ledger.csv");
        QVERIFY(lc.open(QIODevice::ReadOnly));
        const QList<QByteArray> ledgerLines = lc.readAll().trimmed().split('\n');
        const Ledger& written = m_window->ledgerView()->ledger();
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
        QVERIFY(!m_window->exportView("canvas", out.path() + "/x.bmp", 96).isEmpty());  // unknown format: a message
        // The multi-panel figure of several texts.
        QSignalSpy fig(m_window.get(), &MainWindow::figureReady);
        QCOMPARE(m_window->exportTextFigure({"a red object", "a blue object", "a circle"}, out.path() + "/figure.svg", 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0 && fig.last().at(0).toString().endsWith("figure.svg"), kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QFile ff(out.path() + "/figure.svg");
        QVERIFY(ff.open(QIODevice::ReadOnly));
        const QByteArray fs = ff.readAll();
        QVERIFY(fs.contains("a blue object") && fs.contains("a circle") && fs.contains("<image"));
        // Texts x heads: 2 rows, the input + 2 head columns, captions name the heads.
        const int before = fig.count();
        QCOMPARE(m_window->exportPanelFigure({"a red object", "a square"}, {HeadId{3, 1}, HeadId{1, 2}}, out.path() + "/heads.svg", 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > before, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QFile hf(out.path() + "/heads.svg");
        QVERIFY(hf.open(QIODevice::ReadOnly));
        const QByteArray hs = hf.readAll();
        QVERIFY(hs.contains("head 3.1: a red object") && hs.contains("head 1.2: a square"));
        QCOMPARE(int(hs.count("<image")), 14);  // 2 rows x (the input + 2 maps of crop, overlay and colorbar each)
        QVERIFY(!m_window->exportPanelFigure({"a red object"}, {HeadId{9, 0}}, out.path() + "/bad.svg", 96).isEmpty());
        // A figure whose text has a word the model does not know fails with a message and writes
        // nothing; the next figure is written under its own name with its own texts (the failed
        // one's composition once outlived its job and took the next result: a crash).
        {
            QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
            const int n = fig.count();
            QCOMPARE(m_window->exportPanelFigure({"a photo of a dog"}, {}, out.path() + "/unknown.svg", 96), QString());
            QTRY_VERIFY_WITH_TIMEOUT(errors.count() > 0, kTimeout);
            QVERIFY2(errors.last().at(0).toString().contains("dog"), qPrintable(errors.last().at(0).toString()));
            QCOMPARE(m_window->exportPanelFigure({"a green object", "a star"}, {}, out.path() + "/after.svg", 96), QString());
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
        QCOMPARE(m_window->exportPanelFigure({"a red object", "a square"}, {HeadId{3, 1}, HeadId{1, 2}}, out.path() + "/shared.svg", 96, true), QString());
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
        QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
        const QString text = dir.path() + "/notes.png";
        QFile t(text);
        QVERIFY(t.open(QIODevice::WriteOnly));
        t.write("these are notes, not an image\n");
        t.close();
        dropFile(m_window->canvas(), text);
        QVERIFY(errors.wait(kTimeout));
        QVERIFY2(errors.last().at(0).toString().contains("notes.png"), qPrintable(errors.last().at(0).toString()));
        const QString corrupt = dir.path() + "/corrupt.png";
        QFile c(corrupt);
        QVERIFY(c.open(QIODevice::WriteOnly));
        c.write(pngHeader(64, 64));
        c.close();
        dropFile(m_window->canvas(), corrupt);
        QVERIFY(errors.wait(kTimeout));
        QVERIFY(errors.last().at(0).toString().contains("corrupt.png"));
        const QString huge = dir.path() + "/huge.png";
        QFile h(huge);
        QVERIFY(h.open(QIODevice::WriteOnly));
        h.write(pngHeader(20000, 20000));
        h.close();
        dropFile(m_window->canvas(), huge);
        QVERIFY(errors.wait(kTimeout));
        const QString msg = errors.last().at(0).toString();
        QVERIFY2(msg.contains("huge.png") && msg.contains("20000 x 20000"), qPrintable(msg));
        QVERIFY(!msg.contains('\n'));
        dropFile(m_window->canvas(), dir.path() + "/missing.png");
        QVERIFY(errors.wait(kTimeout));
        QVERIFY(errors.last().at(0).toString().contains("missing.png"));
        // Still responsive: a good image loads afterwards.
        QSignalSpy imageReady(m_window.get(), &MainWindow::imageReady);
        m_window->openImage(m_data.path() + "/shapes-world/images/000001.png");
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
        HeadPanel* panel = m_window->headPanel();
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

    void wholeImageOnDemand() {
        // A wide photo: the canvas says the model sees its centre square, and View > Whole image
        // analyses all of it (squashed), remembered, and says so; then back to the crop.
        const QString previous = m_window->canvas()->imagePath();
        QImage wide(96, 64, QImage::Format_RGB888);
        wide.fill(QColor(30, 160, 40));
        const QString path = m_data.path() + "/wide.png";
        QVERIFY(wide.save(path));
        QSignalSpy imageReady(m_window.get(), &MainWindow::imageReady);
        m_window->openImage(path);
        QVERIFY(imageReady.wait(kTimeout));
        QVERIFY2(m_window->canvas()->inputNote().contains("the centre 64 x 64 of the 96 x 64 image (16 px cut at the left and right)"),
                 qPrintable(m_window->canvas()->inputNote()));
        auto* whole = m_window->findChild<QAction*>("wholeImageAction");
        QVERIFY(whole && !whole->isChecked());
        whole->trigger();
        QVERIFY(imageReady.wait(kTimeout));
        QVERIFY2(m_window->canvas()->inputNote().contains("the whole 96 x 64 image, squashed to 64 x 64"), qPrintable(m_window->canvas()->inputNote()));
        QVERIFY(QSettings().value("view/wholeImage").toBool());
        whole->trigger();
        QVERIFY(imageReady.wait(kTimeout));
        QVERIFY(m_window->canvas()->inputNote().contains("centre"));
        QVERIFY(!QSettings().value("view/wholeImage").toBool());
        m_window->openImage(previous);
        QVERIFY(imageReady.wait(kTimeout));
        QCOMPARE(m_window->canvas()->inputNote(), QString());  // a square image: all of it
    }

    void helpListsShortcutsAndViews() {
        // Help's texts come from the menus themselves and name every view and the README.
        const QString keys = m_window->shortcutsText();
        for (const QString& k : {QString("Ctrl+E"), QString("Ctrl+Shift+E"), QString("Ctrl+R"), QString("F11"), QString("F1")})
            QVERIFY2(keys.contains("<b>" + k + "</b>"), qPrintable(k));
        QVERIFY(keys.contains("Figure builder") && keys.contains("Classroom mode"));
        const QString guide = m_window->guideText();
        for (const char* view : {"Head grid", "Canvas", "Head panel", "Completeness ledger", "Retrieval", "Ablation", "Export"})
            QVERIFY2(guide.contains(view), view);
        QVERIFY(guide.contains("README.md"));
    }

    void classroomWalkthrough() {
        QSignalSpy heat(m_window.get(), &MainWindow::heatmapReady);
        m_window->setText("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > 0 && !m_window->canvas()->map().values.empty(), kTimeout);
        const double tickPoints = m_window->ledgerView()->plot()->xAxis->tickLabelFont().pointSizeF();
        m_window->setClassroomMode(true);
        Classroom* c = m_window->classroom();
        QVERIFY(c->isVisible());
        QCOMPARE(c->step(), 0);
        // Scaled as a whole for a projector: the layers chart's ticks, axis title and legend, the
        // summary; the view settings leave the toolbar; the titles wrap instead of being cut.
        QCustomPlot* chart = m_window->ledgerView()->plot();
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
        QVERIFY(m_window->canvas()->map().values.empty());  // the patches step shows the bare patches
        QTest::keyClick(c, Qt::Key_Right);
        QCOMPARE(c->step(), 1);
        QTest::keyClick(c, Qt::Key_Right);
        // Step 3 names the strongest head and highlights it in the grid.
        const QRegularExpression named("strongest head for this image is ([0-9]+\\.[0-9]+)");
        const QRegularExpressionMatch match = named.match(c->body());
        QVERIFY2(match.hasMatch(), qPrintable(c->body()));
        QCOMPARE(m_window->grid()->selection().size(), qsizetype(1));
        QCOMPARE(m_window->grid()->selection().front().name(), match.captured(1));
        QTest::keyClick(c, Qt::Key_Right);
        QTest::keyClick(c, Qt::Key_Right);  // stays at the last step
        QCOMPARE(c->step(), 3);
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
        m_window->classroom()->setStep(0);
        QVERIFY(m_window->canvas()->map().values.empty());
        const int before = heat.count();
        QTest::keyClick(m_window.get(), Qt::Key_Escape);
        QVERIFY(!c->isVisible());
        QCOMPARE(m_window->ledgerView()->plot()->xAxis->tickLabelFont().pointSizeF(), tickPoints);
        QVERIFY(QToolTip::font().pointSizeF() < 1.5 * QApplication::font().pointSizeF());
        QVERIFY(m_window->findChild<QWidget*>("onlySelectedHeads")->isVisible());
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > before && !m_window->canvas()->map().values.empty(), kTimeout);
    }

    // Any labelled dataset: the task form (labels.csv, classes, groups, reference split).
    void ablationOnAnyLabelledDataset() {
        QSignalSpy errors(m_window.get(), &MainWindow::errorShown);
        AblationPanel* panel = m_window->ablationPanel();
        // The open dataset's labels.csv was offered as the task's labels.
        QCOMPARE(QFileInfo(panel->labelsField()), QFileInfo(m_data.path() + "/shapes-world/labels.csv"));
        panel->setTaskForm(m_data.path() + "/shapes-world/labels.csv", "color", "", "background", "");
        panel->requestTask();
        QCOMPARE(errors.count(), 1);  // checked before any job starts
        QVERIFY(errors.last().at(0).toString().contains("reference"));
        // Classes: the world's colors, one prompt each.
        const QString classes = m_data.path() + "/colors.tsv";
        QVERIFY(writeColorClasses(classes));
        ensureShapesWorld((m_data.path() + "/reference").toStdString(), 300, 99, "standard", {});
        QSignalSpy ablation(m_window.get(), &MainWindow::ablationReady);
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
        panel->setTicked({});
    }

    // Last: the demo replaces the model and dataset.
    void ablationUpdatesAtOnce() {
        QSignalSpy ablation(m_window.get(), &MainWindow::ablationReady);
        QSignalSpy progress(&m_window->engine(), &Engine::progress);
        m_window->loadSpuriousDemo();
        QTRY_VERIFY_WITH_TIMEOUT(ablation.count() > 0, 2 * kTimeout);
        // Its phases are named in order, so a bar that starts over says why.
        QStringList stages;
        for (const QList<QVariant>& p : progress)
            if (p.at(1).toString() == "demo" && (stages.isEmpty() || stages.last() != p.at(2).toString())) stages << p.at(2).toString();
        QVERIFY2(stages.size() >= 2, qPrintable(stages.join(" | ")));
        for (int i = 0; i < stages.size(); ++i) QVERIFY2(QRegularExpression("^[1-4]/4 ").match(stages[i]).hasMatch(), qPrintable(stages.join(" | ")));
        QVERIFY2(std::is_sorted(stages.begin(), stages.end()), qPrintable(stages.join(" | ")));
        const AblationOutcome before = m_window->ablationPanel()->outcome();
        QVERIFY(before.ablated.empty());
        QCOMPARE(int(before.groups.size()), 4);  // group x background
        // The legend sits below the bars, not over them.
        QCustomPlot* plot = m_window->ablationPanel()->plot();
        plot->replot();
        QVERIFY(plot->legend->visible());
        QVERIFY2(!plot->legend->outerRect().intersects(plot->axisRect()->outerRect()), "the ablation legend covers the chart");
        QCOMPARE(before.accuracyBefore, before.accuracyAfter);
        m_window->ablationPanel()->setHeadTicked("2.3", true);
        QTRY_VERIFY_WITH_TIMEOUT(ablation.count() > 1, kTimeout);
        const AblationOutcome after = m_window->ablationPanel()->outcome();
        QCOMPARE(after.ablated, std::vector<std::string>{"2.3"});
        QCOMPARE(after.accuracyBefore, before.accuracyBefore);
        QVERIFY(after.accuracyAfter != after.accuracyBefore);
        // The discovered heads raise the worst group (the model leans on the background).
        const int n = ablation.count();
        emit m_window->ablationPanel()->discoverRequested(6);
        QTRY_VERIFY_WITH_TIMEOUT(ablation.count() > n, kTimeout);
        const AblationOutcome discovered = m_window->ablationPanel()->outcome();
        QCOMPARE(int(discovered.ablated.size()), 6);
        QVERIFY2(discovered.worstAfter > discovered.worstBefore + 0.05, qPrintable(m_window->ablationPanel()->tableText()));
    }

    // A second window: a model that does not load falls back to the bundled one; the non-CLIP
    // bundled model is read through its aligner (descriptions, heatmap, ledger).
    void missingModelFallsBackAndNonClipModelsUseTheirAligner() {
        m_window.reset();
        QTemporaryDir data;
        StartOptions o;
        o.dataDir = data.path();
        o.restoreSettings = false;
        o.device = "cpu";
        o.model = data.path() + "/no-such-model";
        MainWindow w(o);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        QSignalSpy model(&w, &MainWindow::modelReady);
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(model.count() > 0, kTimeout);
        QVERIFY(errors.count() >= 1);
        QVERIFY2(errors.first().at(0).toString().contains("no-such-model"), qPrintable(errors.first().at(0).toString()));
        QVERIFY2(!w.statusText().contains("opening " + o.model), qPrintable(w.statusText()));  // not left after the failure
        QCOMPARE(QFileInfo(QString::fromStdString(w.modelSummary().spec)).fileName(), QString("shapes-clip"));
        QSignalSpy described(&w, &MainWindow::descriptionsReady);
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0, kTimeout);
        w.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-vit");
        QTRY_VERIFY_WITH_TIMEOUT(model.count() > 1, kTimeout);
        QVERIFY(!w.modelSummary().clip);
        QVERIFY(QString::fromStdString(w.modelSummary().aligner).endsWith("aligner.safetensors"));
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 1, kTimeout);
        QCOMPARE(int(w.descriptions().size()), 16);
        QSignalSpy ledger(&w, &MainWindow::ledgerReady);
        QSignalSpy image(&w, &MainWindow::imageReady);
        w.openImage(data.path() + "/shapes-world/images/000002.png");
        QVERIFY(image.wait(kTimeout));
        w.setText("a green object");
        QTRY_VERIFY_WITH_TIMEOUT(ledger.count() > 0, kTimeout);
        const Ledger& g = w.ledgerView()->ledger();
        // Through a per-component aligner: the aligned output is the sum of the aligned terms
        // plus the aligner's bias, so the residual is rounding only.
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.ledgerView()->summaryText()));
        QVERIFY(std::any_of(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name == "aligner_bias"; }));
        // Switching the model keeps what the user has open and analyses it again with the new model;
        // nothing of the previous model stays on screen.
        const QString shown = w.canvas()->imagePath();
        w.runRetrieval("a green object");
        QTRY_VERIFY_WITH_TIMEOUT(w.gallery()->globalCount() > 0, kTimeout);
        const int images = image.count(), ledgers = ledger.count(), descriptions = described.count();
        w.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip");
        QTRY_VERIFY_WITH_TIMEOUT(model.count() > 2, kTimeout);
        QCOMPARE(w.gallery()->globalCount(), 0);
        QVERIFY(w.gallery()->resultsFor().isEmpty());
        QTRY_VERIFY_WITH_TIMEOUT(image.count() > images, kTimeout);
        QCOMPARE(w.canvas()->imagePath(), shown);  // the same image, decomposed by the new model
        QTRY_VERIFY_WITH_TIMEOUT(ledger.count() > ledgers, kTimeout);
        const Ledger& h = w.ledgerView()->ledger();
        QVERIFY(std::none_of(h.rows.begin(), h.rows.end(), [](const LedgerRow& r) { return r.name == "aligner_bias"; }));
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > descriptions, kTimeout);  // the same dataset, described again
        QVERIFY(w.datasetReady());
        QCOMPARE(w.gallery()->globalCount(), 0);  // no stale results reappear
    }

    // A SigLIP checkpoint (random weights, Hugging Face layout with its SentencePiece model) in
    // the application: the grid gets a pooling row, the pooling heads are described, clicked and
    // mapped, and the ledger stays complete with pool.mlp.
    void siglipModelHasAPoolingRow() {
        m_window.reset();
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
        StartOptions o;
        o.dataDir = data.path();
        o.restoreSettings = false;
        o.device = "cpu";
        o.model = QString::fromStdString(dir);
        MainWindow w(o);
        QSignalSpy model(&w, &MainWindow::modelReady);
        QSignalSpy described(&w, &MainWindow::descriptionsReady);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        w.resize(1400, 900);
        w.show();
        QVERIFY(model.wait(kTimeout));
        QCOMPARE(w.modelSummary().family, std::string("siglip"));
        QCOMPARE(w.modelSummary().poolHeads, 2);
        QCOMPARE(w.grid()->layers(), 4);  // 3 layers + the pooling row
        QVERIFY(w.grid()->poolRow());
        w.openDataset(data.path() + "/shapes-world/images");  // generated on first use, cached, described
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0 || errors.count() > 0, kTimeout);
        if (errors.count() > 0) QFAIL(qPrintable(errors.first().at(0).toString()));
        QCOMPARE(int(w.descriptions().size()), 3 * 2 + 2);
        QVERIFY(std::any_of(w.descriptions().begin(), w.descriptions().end(),
                            [](const HeadDescription& d) { return d.head == "pool.h1" && d.layer == 3 && !d.picks.empty(); }));
        QSignalSpy ledger(&w, &MainWindow::ledgerReady);
        QSignalSpy image(&w, &MainWindow::imageReady);
        QSignalSpy heat(&w, &MainWindow::heatmapReady);
        w.openImage(data.path() + "/shapes-world/images/000002.png");
        QVERIFY(image.wait(kTimeout));
        w.setText("a red circle");
        QTRY_VERIFY_WITH_TIMEOUT(ledger.count() > 0 && heat.count() > 0, kTimeout);
        const Ledger& g = w.ledgerView()->ledger();
        QVERIFY(std::any_of(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name == "pool.mlp"; }));
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.ledgerView()->summaryText()));
        QCOMPARE(g.headScores.rows, 4);
        // The pooling row: a click selects pool.h1 and shows its panel; its map is the pooling
        // head's own (another decomposition than the encoder's heads).
        QSignalSpy panel(&w, &MainWindow::headPanelReady);
        QTest::mouseClick(w.grid(), Qt::LeftButton, Qt::NoModifier, w.grid()->cellRect(3, 1).center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(w.grid()->selection().front().name(), QString("pool.h1"));
        QCOMPARE(w.headPanel()->layer(), 3);
        const QString title = w.headPanel()->findChild<QLabel*>("headTitle")->text();
        QVERIFY2(title.contains("pool.h1") && title.contains("not projected"), qPrintable(title));
        const std::vector<float> before = w.canvas()->map().values;
        auto* only = w.findChild<QCheckBox*>("onlySelectedHeads");
        QVERIFY(only);
        const int maps = heat.count();
        only->setChecked(true);
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > maps, kTimeout);
        QVERIFY(w.canvas()->map().values != before);
        QVERIFY(std::all_of(w.canvas()->map().values.begin(), w.canvas()->map().values.end(), [](float v) { return std::isfinite(v); }));
        for (const QString& method : {"surgery", "raw", "attention", "rollout", "gradcam", "chefer", "legrad"}) {
            const int n = heat.count();
            w.setMethod(method);
            QTRY_VERIFY_WITH_TIMEOUT(heat.count() > n, kTimeout);
        }
        // Exports: a pooling head's panel names it; the grid's rows say which is the pooling row.
        QSignalSpy fig(&w, &MainWindow::figureReady);
        const QString svg = data.path() + "/pool-heads.svg";
        QCOMPARE(w.exportPanelFigure({"a red circle"}, {gridHead(3, 1, 3, true), HeadId{2, 0}}, svg, 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QFile sf(svg);
        QVERIFY(sf.open(QIODevice::ReadOnly));
        const QByteArray sb = sf.readAll();
        QVERIFY(sb.contains("head pool.h1: a red circle") && sb.contains("head 2.0: a red circle"));
        QCOMPARE(w.exportData("grid", data.path() + "/grid.json"), QString());
        QFile gj(data.path() + "/grid.json");
        QVERIFY(gj.open(QIODevice::ReadOnly));
        const QByteArray gb = gj.readAll();
        QVERIFY2(gb.contains("\"pool\"") && gb.contains("layer 2"), gb.constData());
        QCOMPARE(errors.count(), 0);
        // The classroom walkthrough tells of the probe, not of a class token.
        w.classroom()->setStep(0);
        QVERIFY2(w.classroom()->body().contains("no class token") && !w.classroom()->body().contains("class token is added"),
                 qPrintable(w.classroom()->body()));
        // Its longer text still fits the panel at the offscreen screen's 800 x 800, step after step.
        w.setClassroomMode(true);
        for (int step = 0; step < Classroom::StepCount; ++step) {
            w.classroom()->setStep(step);
            QTest::qWait(50);
            for (QLabel* l : w.classroom()->findChildren<QLabel*>()) {
                QVERIFY2(l->contentsRect().height() >= wrappedHeight(l), qPrintable(QString("step %1: %2").arg(step).arg(l->text())));
                QVERIFY2(w.classroom()->rect().contains(l->geometry()), qPrintable(l->text()));
            }
        }
        w.setClassroomMode(false);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            const QString dir = qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS");
            w.grab().save(dir + "/siglip-window.png");
            QFile::copy(svg, dir + "/siglip-pool-heads.svg");
            w.resize(1024, 700);
            w.setClassroomMode(true);
            QTest::qWait(300);
            w.grab().save(dir + "/siglip-classroom-1024.png");
        }
    }

    // The bundled Swin (shapes-swin, through its aligner): stage rows with only the heads each
    // block has, the attention-only methods disabled, heatmaps over the first stage's patches, a
    // complete ledger, clicks on empty cells ignored, exports naming the stages.
    void swinModelHasStageRows() {
        m_window.reset();
        QTemporaryDir data;
        StartOptions o;
        o.dataDir = data.path();
        o.restoreSettings = false;
        o.device = "cpu";
        o.model = VITSCOPE_SOURCE_DIR "/models/shapes-swin";
        MainWindow w(o);
        QSignalSpy model(&w, &MainWindow::modelReady);
        QSignalSpy described(&w, &MainWindow::descriptionsReady);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        w.resize(1400, 900);
        w.show();
        QVERIFY(model.wait(kTimeout));
        const ModelSummary& s = w.modelSummary();
        QCOMPARE(s.family, std::string("swin"));
        QCOMPARE(s.headsPerLayer, (std::vector<int>{2, 2, 4, 4, 8, 8}));
        QCOMPARE(w.grid()->layers(), 6);
        QCOMPARE(w.grid()->heads(), 8);
        QCOMPARE(w.grid()->headsIn(0), 2);
        QCOMPARE(w.grid()->rowLabel(2), QString("s1.b0"));
        auto* methods = qobject_cast<QStandardItemModel*>(w.findChild<QComboBox*>("methodBox")->model());
        QVERIFY(methods);
        for (int i : {1, 3, 4, 5, 6, 7}) QVERIFY2(!methods->item(i)->isEnabled(), qPrintable(methods->item(i)->text()));
        QVERIFY(methods->item(0)->isEnabled() && methods->item(2)->isEnabled());
        w.openDataset(data.path() + "/shapes-world/images");
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0 || errors.count() > 0, kTimeout);
        if (errors.count() > 0) QFAIL(qPrintable(errors.first().at(0).toString()));
        QCOMPARE(int(w.descriptions().size()), 28);  // every head the blocks have, no more
        QSignalSpy ledger(&w, &MainWindow::ledgerReady);
        QSignalSpy image(&w, &MainWindow::imageReady);
        QSignalSpy heat(&w, &MainWindow::heatmapReady);
        w.openImage(data.path() + "/shapes-world/images/000002.png");
        QVERIFY(image.wait(kTimeout));
        w.setText("a red circle");
        QTRY_VERIFY_WITH_TIMEOUT(ledger.count() > 0 && heat.count() > 0, kTimeout);
        const Ledger& g = w.ledgerView()->ledger();
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.ledgerView()->summaryText()));
        QVERIFY(std::isnan(g.headScores.at(0, 5)) && std::isfinite(g.headScores.at(5, 7)));
        QCOMPARE(int(std::count_if(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.head >= 0; })), 28);
        // The map covers the first stage's 16 x 16 patches.
        auto patchRows = [&](const QString& file) {
            if (!w.exportData("heatmap", file).isEmpty()) return -1;
            QFile f(file);
            if (!f.open(QIODevice::ReadOnly)) return -2;
            return QJsonDocument::fromJson(f.readAll()).object()["shape"].toArray().at(0).toInt();
        };
        QCOMPARE(patchRows(data.path() + "/map.json"), 16);
        QVERIFY(std::all_of(w.canvas()->map().values.begin(), w.canvas()->map().values.end(), [](float v) { return std::isfinite(v); }));
        // An empty cell (layer 0 has 2 heads) takes no click; a real one opens its panel.
        QSignalSpy panel(&w, &MainWindow::headPanelReady);
        const QList<HeadId> before = w.grid()->selection();
        QTest::mouseClick(w.grid(), Qt::LeftButton, Qt::NoModifier, w.grid()->cellRect(0, 5).center());
        QCOMPARE(w.grid()->selection(), before);
        QTest::mouseClick(w.grid(), Qt::LeftButton, Qt::NoModifier, w.grid()->cellRect(4, 7).center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(w.grid()->selection().front().name(), QString("4.7"));
        // The empty cells are drawn as background, the real ones in the colormap.
        const QImage shot = w.grid()->grab().toImage();
        const QColor empty = pixelAt(shot, w.grid()->cellRect(0, 5).center());
        QCOMPARE(empty, w.grid()->palette().base().color());
        QVERIFY(pixelAt(shot, w.grid()->cellRect(5, 5).center()) != empty);
        const int maps = heat.count();
        w.setMethod("raw");
        QTRY_VERIFY_WITH_TIMEOUT(heat.count() > maps, kTimeout);
        QCOMPARE(patchRows(data.path() + "/raw.json"), 4);  // the last stage's tokens
        w.setMethod("decomposition");
        QCOMPARE(w.exportData("grid", data.path() + "/grid.json"), QString());
        QFile gj(data.path() + "/grid.json");
        QVERIFY(gj.open(QIODevice::ReadOnly));
        const QByteArray gb = gj.readAll();
        QVERIFY2(gb.contains("layer 2 (s1.b0)") && gb.contains("null"), gb.constData());
        QSignalSpy fig(&w, &MainWindow::figureReady);
        const QString svg = data.path() + "/swin-heads.svg";
        QCOMPARE(w.exportPanelFigure({"a red circle"}, {HeadId{0, 1}, HeadId{5, 7}}, svg, 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        // Retrieval through a stage-2 head, and an ablation of a whole stage's heads.
        w.grid()->setSelection({HeadId{4, 2}, HeadId{5, 3}});
        w.runRetrieval("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(w.gallery()->globalCount() > 0 && w.gallery()->restrictedCount() > 0, kTimeout);
        QSignalSpy ablation(&w, &MainWindow::ablationReady);
        startColorAblation(w, data.path(), 200, ablation, errors);
        if (QTest::currentTestFailed()) return;
        AblationPanel* abl = w.ablationPanel();
        const AblationOutcome baseline = abl->outcome();
        QVERIFY2(baseline.accuracyBefore > 0.9, qPrintable(abl->tableText()));
        for (int l = 4; l < 6; ++l)
            for (int h = 0; h < 8; ++h) abl->setHeadTicked(QString("%1.%2").arg(l).arg(h), true);
        QTRY_VERIFY_WITH_TIMEOUT(abl->outcome().ablated.size() == 16, kTimeout);
        QVERIFY2(abl->outcome().accuracyAfter < baseline.accuracyBefore - 0.02, qPrintable(abl->tableText()));
        QCOMPARE(errors.count(), 0);
        w.classroom()->setStep(0);
        QVERIFY2(w.classroom()->body().contains("windows"), qPrintable(w.classroom()->body()));
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) {
            const QString dir = qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS");
            w.grab().save(dir + "/swin-window.png");
            QFile::copy(svg, dir + "/swin-heads.svg");
            w.resize(1024, 700);
            w.setClassroomMode(true);
            QTest::qWait(300);
            w.grab().save(dir + "/swin-classroom-1024.png");
        }
    }

    // MaxViT in the application: the oracle's timm MaxViT with an aligner into shapes-clip fitted
    // here on 64 scenes (a reference model, not a trained one: the test checks the views, not
    // what they say). Rows per attention unit labelled block / grid, the ledger complete with the
    // MBConv branches, a heatmap on the first stage's grid.
    void maxvitModelInTheApplication() {
        m_window.reset();
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
        StartOptions o;
        o.dataDir = data.path();
        o.restoreSettings = false;
        o.device = "cpu";
        o.model = QString::fromStdString(dir);
        MainWindow w(o);
        QSignalSpy model(&w, &MainWindow::modelReady);
        QSignalSpy described(&w, &MainWindow::descriptionsReady);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        w.resize(1400, 900);
        w.show();
        QVERIFY(model.wait(kTimeout));
        QCOMPARE(w.modelSummary().family, std::string("maxvit"));
        QCOMPARE(w.grid()->layers(), 6);
        QCOMPARE(w.grid()->rowLabel(0), QString("s0.b0.block"));
        QCOMPARE(w.grid()->rowLabel(5), QString("s1.b1.grid"));
        QCOMPARE(w.grid()->headsIn(0), 1);
        QCOMPARE(w.grid()->headsIn(5), 2);
        w.openDataset(data.path() + "/shapes-world/images");
        QTRY_VERIFY_WITH_TIMEOUT(described.count() > 0 || errors.count() > 0, kTimeout);
        if (errors.count() > 0) QFAIL(qPrintable(errors.first().at(0).toString()));
        QCOMPARE(int(w.descriptions().size()), 2 * 1 + 4 * 2);
        QSignalSpy ledger(&w, &MainWindow::ledgerReady);
        QSignalSpy image(&w, &MainWindow::imageReady);
        QSignalSpy heat(&w, &MainWindow::heatmapReady);
        w.openImage(data.path() + "/shapes-world/images/000002.png");
        QVERIFY(image.wait(kTimeout));
        w.setText("a red circle");
        QTRY_VERIFY_WITH_TIMEOUT(ledger.count() > 0 && heat.count() > 0, kTimeout);
        const Ledger& g = w.ledgerView()->ledger();
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(w.ledgerView()->summaryText()));
        QCOMPARE(int(std::count_if(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name.rfind("conv.", 0) == 0; })), 3);
        QVERIFY(std::all_of(w.canvas()->map().values.begin(), w.canvas()->map().values.end(), [](float v) { return std::isfinite(v); }));
        // The MBConv column: a cell on each block's first row (0, 2, 4), none between.
        const QImage shot = w.grid()->grab().toImage();
        for (int row = 0; row < 6; ++row) {
            QVERIFY(!w.grid()->sideRect(row).isEmpty());
            const bool filled = pixelAt(shot, w.grid()->sideRect(row).center()) != w.grid()->palette().base().color();
            QCOMPARE(filled, row % 2 == 0);
        }
        QSignalSpy panel(&w, &MainWindow::headPanelReady);
        QTest::mouseClick(w.grid(), Qt::LeftButton, Qt::NoModifier, w.grid()->cellRect(3, 1).center());
        QVERIFY(panel.wait(kTimeout));
        QCOMPARE(w.grid()->selection().front().name(), QString("3.1"));
        // Gallery through a grid-attention head, a figure, and an ablation that takes conv.K too.
        w.runRetrieval("a red object");
        QTRY_VERIFY_WITH_TIMEOUT(w.gallery()->globalCount() > 0 && w.gallery()->restrictedCount() > 0, kTimeout);
        QSignalSpy fig(&w, &MainWindow::figureReady);
        QCOMPARE(w.exportPanelFigure({"a red circle"}, {HeadId{3, 1}, HeadId{5, 0}}, data.path() + "/maxvit-heads.svg", 96), QString());
        QTRY_VERIFY_WITH_TIMEOUT(fig.count() > 0, kTimeout);
        QCOMPARE(fig.last().at(1).toString(), QString());
        QSignalSpy ablation(&w, &MainWindow::ablationReady);
        startColorAblation(w, data.path(), 100, ablation, errors);
        if (QTest::currentTestFailed()) return;
        AblationPanel* abl = w.ablationPanel();
        abl->setHeadTicked("3.1", true);
        QTRY_VERIFY_WITH_TIMEOUT(abl->outcome().ablated.size() == 1, kTimeout);
        QVERIFY(std::isfinite(abl->outcome().accuracyAfter));
        QCOMPARE(errors.count(), 0);
        if (qEnvironmentVariableIsSet("VITSCOPE_TEST_SCREENSHOTS")) w.grab().save(qEnvironmentVariable("VITSCOPE_TEST_SCREENSHOTS") + "/maxvit-window.png");
    }

    void cleanupTestCase() { m_window.reset(); }
};

// The engine alone: latest request wins, cancellation, failures as messages.
class TestEngine : public QObject {
    Q_OBJECT
private slots:
    void staleResultsAreDroppedAndWaitingRequestsCoalesced() {
        QTemporaryDir dir;
        Engine engine(dir.path());
        QSignalSpy finished(&engine, &Engine::finished);
        QSignalSpy dropped(&engine, &Engine::dropped);
        std::atomic<bool> release{false};
        // A slow job holds the worker while three requests of one kind queue behind it.
        engine.submit("slow", [&release](Explorer&, const JobContext&) {
            while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
            return QVariant(1);
        });
        quint64 last = 0;
        for (int i = 0; i < 3; ++i) last = engine.submit("heatmap", [i](Explorer&, const JobContext&) { return QVariant(100 + i); });
        QCOMPARE(dropped.count(), 2);  // the first two never run
        release = true;
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 10000);
        QCOMPARE(finished.at(1).at(0).toULongLong(), last);
        QCOMPARE(finished.at(1).at(2).toInt(), 102);
        // A result that arrives after a newer request of its kind is dropped.
        std::atomic<bool> go{false};
        QSignalSpy started(&engine, &Engine::started);
        const quint64 running = engine.submit("ledger", [&go](Explorer&, const JobContext&) {
            while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
            return QVariant(1);
        });
        // Wait until it runs (a request still waiting would be coalesced instead, another path).
        QTRY_VERIFY_WITH_TIMEOUT(!started.isEmpty() && started.last().at(0).toULongLong() == running, 10000);
        const quint64 newest = engine.submit("ledger", [](Explorer&, const JobContext&) { return QVariant(2); });
        go = true;
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, 10000);
        QCOMPARE(finished.last().at(0).toULongLong(), newest);
        QCOMPARE(dropped.count(), 3);
        QCOMPARE(dropped.last().at(0).toULongLong(), running);  // its result came after a newer request: dropped
    }

    void cancellationAndFailures() {
        QTemporaryDir dir;
        Engine engine(dir.path());
        QSignalSpy cancelled(&engine, &Engine::cancelled);
        QSignalSpy failed(&engine, &Engine::failed);
        QSignalSpy progress(&engine, &Engine::progress);
        const quint64 id = engine.submit("long", [](Explorer&, const JobContext& job) {
            for (int i = 0; i < 100000; ++i) {
                if (job.cancelled()) throw JobCancelled();
                job.report({i, 100000, 0, 0, "long"});
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            return QVariant();
        });
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() > 0, 10000);
        engine.cancel(id);
        QTRY_COMPARE_WITH_TIMEOUT(cancelled.count(), 1, 10000);
        // Progress is throttled to about 10 Hz.
        QVERIFY(progress.count() < 40);
        engine.submit("image", [](Explorer& x, const JobContext&) { return QVariant::fromValue(x.analyseImage("/nonexistent.png")); });
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 10000);
        QVERIFY(failed.first().at(2).toString().contains("no model"));
    }

    void closingDuringACacheBuildKeepsFinishedChunks() {
        QTemporaryDir dir;
        const std::string world = (dir.path() + "/world").toStdString();
        ensureShapesWorld(world, 3000, 5, "standard", {});
        std::string cacheDir;
        {
            Engine engine(dir.path() + "/caches");
            QSignalSpy progress(&engine, &Engine::progress);
            QSignalSpy modelReady(&engine, &Engine::finished);
            engine.submit("model", [](Explorer& x, const JobContext&) { return QVariant::fromValue(x.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip", "cpu")); });
            QTRY_COMPARE_WITH_TIMEOUT(modelReady.count(), 1, 30000);
            engine.submit("dataset", [world](Explorer& x, const JobContext& job) { return QVariant::fromValue(x.openDataset(world + "/images", job)); });
            QTRY_VERIFY_WITH_TIMEOUT(progress.count() > 1 && progress.last().at(3).toLongLong() > 0, 30000);
        }  // the engine's destructor cancels and joins, as closing the window does
        // The build stopped early and its finished chunks are there to resume from.
        QDir caches(dir.path() + "/caches");
        QDirIterator it(caches.path(), {"progress.json"}, QDir::Files, QDirIterator::Subdirectories);
        QVERIFY(it.hasNext());
        const QString progressFile = it.next();
        QFile pf(progressFile);
        QVERIFY(pf.open(QIODevice::ReadOnly));
        const QJsonObject p = QJsonDocument::fromJson(pf.readAll()).object();
        const qint64 rows = p["rows"].toInteger();
        QVERIFY2(rows > 0 && rows < 3000, qPrintable(QString::number(rows)));
        Engine again(dir.path() + "/caches");
        QSignalSpy done(&again, &Engine::finished);
        again.submit("model", [](Explorer& x, const JobContext&) { return QVariant::fromValue(x.openModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip", "cpu")); });
        again.submit("dataset", [world](Explorer& x, const JobContext& job) { return QVariant::fromValue(x.openDataset(world + "/images", job)); });
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 2, 60000);
        const DatasetSummary s = done.last().at(2).value<DatasetSummary>();
        QVERIFY(s.resumed);
        QCOMPARE(s.count, qint64(3000));
    }
};

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    int status = 0;
    {
        TestEngine engine;
        status |= QTest::qExec(&engine, argc, argv);
    }
    {
        TestGui gui;
        status |= QTest::qExec(&gui, argc, argv);
    }
    return status;
}

#include "test_gui.moc"
