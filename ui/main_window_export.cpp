// MainWindow: figure and data export, recent files, settings and classroom mode.
#include "main_window.h"

#include "ablation_panel.h"
#include "classroom.h"
#include "figure_export.h"
#include "gallery.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "metatypes.h"

#include <qcustomplot.h>

#include <cmath>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QSpinBox>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QTimer>
#include <QToolTip>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QJsonArray>
#include <QJsonObject>
#include <QMenu>
#include <QPainter>
#include <QSettings>
#include <QDir>
#include <QStandardPaths>
#include <QSlider>
#include <QSplitter>
#include <QStatusBar>

#include <functional>
#include <memory>

namespace vitscope::ui {

QJsonObject MainWindow::record(const QString& view) const {
    QJsonObject r;
    r["view"] = view;
    r["model"] = QString::fromStdString(m_model.spec);
    r["model_fingerprint"] = QString::fromStdString(m_model.fingerprint);
    r["model_family"] = QString::fromStdString(m_model.family);
    r["device"] = QString::fromStdString(m_model.device);
    if (!m_model.aligner.empty()) r["aligner"] = QString::fromStdString(m_model.aligner);
    r["image"] = m_canvas->imagePath();
    r["text"] = m_text->currentText();
    r["method"] = m_method->currentText();
    if (m_method->currentText() == "surgery") r["surgery_prompt_ensemble"] = m_model.surgeryEnsemble;
    r["preprocessing"] = QString::fromStdString(m_model.preprocessing);
    QStringList heads;
    for (const HeadId& h : m_grid->selection()) heads << h.name();
    r["selected_heads"] = heads.join(",");
    r["restricted_to_selected_heads"] = m_onlySelected->isChecked();
    r["colormap"] = m_colormap->currentText();
    r["opacity"] = m_opacity->value() / 100.0;
    r["grid_metric"] = m_grid->metricName();
    r["dataset"] = m_datasetFolder;
    r["ablated"] = m_ablation->ticked().join(",");
    if (!m_descriptions.empty()) {
        // How the head descriptions shown (grid tooltips, head panel) were computed.
        QJsonObject ts;
        ts["algorithm"] = "TextSpan, reference greedy (clip_text_span)";
        ts["convention"] = QString::fromStdString(m_descriptions.front().convention);
        ts["rank"] = m_descriptions.front().rank;
        ts["texts_per_head"] = static_cast<int>(m_descriptions.front().picks.size());
        ts["text_pool"] = textPoolFile();
        r["textspan"] = ts;
    }
    return r;
}

QString MainWindow::exportView(const QString& view, const QString& path, int dpi) {
    FigurePainter paint;
    QSize size;
    QWidget* w = nullptr;
    std::function<void()> restore;
    auto refitChart = [this](QWidget* plot) {
        if (plot == m_headPanel->plot()) m_headPanel->fitToWidth();
        if (plot == m_ledger->plot()) m_ledger->fitToWidth();
    };
    if (view == "canvas") {
        if (!m_canvas->hasImage()) return tr("%1: no image to export").arg(path);
        size = m_canvas->figureSize(std::max(420, m_canvas->height()));
        ImageCanvas* c = m_canvas;
        paint = [c](QPainter& p, const QRect& r) { c->paintTo(p, r); };
    } else if (view == "grid") w = m_grid;
    else if (view == "ledger") w = m_ledger->plot();
    else if (view == "head") w = m_headPanel->plot();
    else if (view == "ablation") w = m_ablation->plot();
    else if (view == "gallery") w = m_gallery;
    else if (view == "window") w = this;
    else return tr("unknown view '%1'").arg(view);
    if (w) {
        // Charts lay themselves out for the figure's size: give them room for their axis titles
        // and labels even when their dock is narrow.
        const bool chart = qobject_cast<QCustomPlot*>(w) != nullptr;
        if (w->size().width() < 50) w->resize(w->sizeHint());
        if (chart) {
            size = w->size().expandedTo(QSize(600, 380));
            // Fitted at the figure's width (texts elided or layer labels thinned for a narrow dock
            // are whole in a 600 px figure); the dock's size comes back after the export.
            const QSize own = w->size();
            w->resize(size);
            refitChart(w);
            restore = [w, own, refitChart] {
                w->resize(own);
                refitChart(w);
            };
        } else {
            // Widgets are scaled as pictures: enlarged to the minimum size with their own aspect
            // (a 210 px wide grid had been stretched 1.5x to 320).
            const QSize own = w->size(), least(320, 240);
            const double grow = std::max({1.0, least.width() / double(own.width()), least.height() / double(own.height())});
            size = QSize(qRound(own.width() * grow), qRound(own.height() * grow));
        }
        paint = widgetPainter(w);
    }
    // Charts say what they show: the ledger its text, score and residual, the head chart its head.
    const QString heading = view == "ledger" ? m_ledger->summaryText() : view == "head" ? m_headPanel->titleText() : QString();
    if (!heading.isEmpty()) {
        const int titleH = 40;
        const FigurePainter chart = paint;
        paint = [chart, heading, titleH](QPainter& p, const QRect& r) {
            p.fillRect(r, Qt::white);
            p.setPen(Qt::black);
            p.drawText(QRect(r.left() + 6, r.top() + 2, r.width() - 12, titleH - 4), Qt::AlignLeft | Qt::AlignVCenter | Qt::TextWordWrap,
                       heading);
            chart(p, r.adjusted(0, titleH, 0, 0));
        };
        size += QSize(0, titleH);
    }
    if (view == "grid") m_grid->setSelectionShown(false);
    const QString err = exportFigure(paint, size, path, dpi, record(view), QString("vitscope %1").arg(view));
    if (view == "grid") m_grid->setSelectionShown(true);
    if (restore) restore();
    emit figureReady(path, err);
    return err;
}

QString MainWindow::exportData(const QString& what, const QString& path) {
    QJsonObject r = record(what);
    if (what == "heatmap") {
        if (m_lastHeatmap.patches.values.empty()) return tr("%1: no heatmap yet").arg(path);
        return exportMatrix(m_lastHeatmap.patches.values, m_lastHeatmap.patches.rows, m_lastHeatmap.patches.cols, path, {}, r);
    }
    if (what == "grid") {
        // Swin: the heads a block lacks are NaN (empty cells), its rows named by stage and block.
        std::vector<float> v;
        for (int l = 0; l < m_grid->layers(); ++l)
            for (int h = 0; h < m_grid->heads(); ++h) v.push_back(h < m_grid->headsIn(l) ? m_grid->value(l, h) : std::nanf(""));
        QStringList cols;
        for (int h = 0; h < m_grid->heads(); ++h) cols << QString("head %1").arg(h);
        // SigLIP: the last row is the pooling heads (pool.h0..), another decomposition of the output.
        QJsonArray rowNames;
        for (int l = 0; l < m_grid->layers(); ++l)
            rowNames.append(m_grid->poolRow() && l == m_grid->layers() - 1 ? QString("pool")
                            : m_grid->rowLabel(l) != QString::number(l) ? QString("layer %1 (%2)").arg(l).arg(m_grid->rowLabel(l))
                                                                        : QString("layer %1").arg(l));
        r["row_names"] = rowNames;
        return exportMatrix(v, m_grid->layers(), m_grid->heads(), path, cols, r);
    }
    if (what == "ledger") {
        if (m_lastLedger.rows.empty()) return tr("%1: no ledger yet").arg(path);
        std::vector<float> v;
        // A term without a layer (embedding, final biases) or a head (MLP, biases) has none: NaN,
        // an empty cell in CSV and null in JSON; its name says what it is.
        const float none = std::nanf("");
        for (const LedgerRow& row : m_lastLedger.rows)
            v.insert(v.end(), {row.layer >= 0 ? float(row.layer) : none, row.head >= 0 ? float(row.head) : none, float(row.score)});
        r["total"] = m_lastLedger.total;
        r["sum_of_terms"] = m_lastLedger.sumOfTerms;
        r["residual"] = m_lastLedger.residual;
        QJsonArray names;
        for (const LedgerRow& row : m_lastLedger.rows) names.append(QString::fromStdString(row.name));
        r["row_names"] = names;
        return exportMatrix(v, int(m_lastLedger.rows.size()), 3, path, {"layer", "head", "score"}, r);
    }
    return tr("unknown data '%1'").arg(what);
}

QString MainWindow::exportTextFigure(const QStringList& texts, const QString& path, int dpi) { return exportPanelFigure(texts, {}, path, dpi); }

QString MainWindow::exportPanelFigure(const QStringList& texts, const QList<HeadId>& heads, const QString& path, int dpi, bool sharedScale) {
    if (!m_canvas->hasImage()) return tr("%1: open an image first").arg(path);
    if (texts.isEmpty()) return tr("%1: the figure needs at least one text").arg(path);
    for (const HeadId& h : heads)
        if (h.layer < 0 || h.layer >= m_model.gridLayers() || h.head < 0 || h.head >= m_model.heads)
            return tr("%1: head %2 is not a head of this model").arg(path, h.name());
    // One row per text; its columns: the input, then one map (restricted as the canvas is) or one
    // map per listed head.
    HeatmapRequest base;
    base.method = heads.isEmpty() ? m_method->currentText().toStdString() : "decomposition";
    if (heads.isEmpty() && m_onlySelected->isChecked()) base.heads = selectedHeads();
    std::vector<std::string> list;
    for (const QString& t : texts) list.push_back(t.trimmed().toStdString());
    std::vector<std::pair<int, int>> columns;
    for (const HeadId& h : heads) columns.emplace_back(h.layer, h.head);
    const quint64 jobId = m_engine.submit("figure", [base, list, columns](Explorer& x, const JobContext&) {
        std::vector<HeatmapResult> out;
        for (const std::string& t : list) {
            HeatmapRequest q = base;
            q.text = t;
            if (columns.empty()) out.push_back(x.heatmap(q));
            for (const auto& h : columns) {
                q.heads = {h};
                out.push_back(x.heatmap(q));
            }
        }
        return QVariant::fromValue(out);
    });
    // The figure is composed when the maps arrive.
    auto conn = std::make_shared<QMetaObject::Connection>();
    QImage crop(m_image.crop.rgb.data(), m_image.crop.width, m_image.crop.height, 3 * m_image.crop.width, QImage::Format_RGB888);
    crop = crop.copy();
    const double opacity = m_opacity->value() / 100.0;
    const ColormapKind cmap = colormapFromName(m_colormap->currentText());
    QJsonObject rec = record("figure");
    rec["texts"] = QJsonArray::fromStringList(texts);
    QStringList headNames;
    for (const HeadId& h : heads) headNames << h.name();
    rec["figure_heads"] = QJsonArray::fromStringList(headNames);
    // The connections belong to this job only: another figure's result never reaches this
    // composition, and a failed, cancelled or dropped job removes them (an unknown word, say).
    auto endConn = std::make_shared<std::vector<QMetaObject::Connection>>();
    auto release = [conn, endConn] {
        QObject::disconnect(*conn);
        for (const auto& c : *endConn) QObject::disconnect(c);
    };
    endConn->push_back(connect(&m_engine, &Engine::failed, this, [jobId, release](quint64 id, const QString&, const QString&) {
        if (id == jobId) release();
    }));
    endConn->push_back(connect(&m_engine, &Engine::cancelled, this, [jobId, release](quint64 id, const QString&) {
        if (id == jobId) release();
    }));
    endConn->push_back(connect(&m_engine, &Engine::dropped, this, [jobId, release](quint64 id, const QString&) {
        if (id == jobId) release();
    }));
    *conn = connect(&m_engine, &Engine::finished, this, [=](quint64 id, const QString& kind, const QVariant& result) {
        if (id != jobId || kind != "figure") return;
        release();
        const auto maps = result.value<std::vector<HeatmapResult>>();
        const int rows = static_cast<int>(texts.size()), cols = 1 + std::max(1, static_cast<int>(heads.size()));
        if (static_cast<int>(maps.size()) != rows * (cols - 1)) {
            const QString err = tr("%1: the figure's maps did not arrive (%2 of %3)").arg(path).arg(maps.size()).arg(rows * (cols - 1));
            showError(err);
            emit figureReady(path, err);
            return;
        }
        // One colour scale over every map when asked (maps then compare by colour).
        float lo = 0, hi = 0;
        if (sharedScale && !maps.empty()) {
            lo = maps.front().pixels.minValue();
            hi = maps.front().pixels.maxValue();
            for (const HeatmapResult& m : maps) {
                lo = std::min(lo, m.pixels.minValue());
                hi = std::max(hi, m.pixels.maxValue());
            }
        }
        // A shared scale gets one colorbar at the right of the figure instead of one per panel,
        // and the panels no room for their own.
        const bool oneBar = sharedScale && !maps.empty() && lo < hi;
        const int panelH = 190, inputW = 180, panelW = oneBar ? 185 : 250;
        const int barPanelW = oneBar ? 64 : 0;
        auto paint = [=](QPainter& p, const QRect& r) {
            p.fillRect(r, Qt::white);
            QFont f = p.font();
            f.setPointSizeF(7.5);
            p.setFont(f);
            ImageCanvas c;
            c.setImage(crop, QString());
            c.setOpacity(opacity);
            c.setColormap(cmap);
            c.setColorbarShown(!oneBar);
            if (oneBar) {
                const int top = r.top() + p.fontMetrics().height() + 10;  // level with the maps, below their captions
                c.paintColorbar(p, QRect(r.right() - barPanelW + 6, top, 12, rows * panelH - (top - r.top()) - 8), barPanelW - 20, lo, hi);
            }
            for (int row = 0; row < rows; ++row) {
                for (int col = 0; col < cols; ++col) {
                    if (col == 0) {
                        c.setMap({row == 0 ? tr("input") : QString(" "), {}, 0, 0});
                    } else {
                        const HeatmapResult& m = maps[static_cast<std::size_t>(row * (cols - 1) + col - 1)];
                        const QString text = QString::fromStdString(m.text);
                        const QString caption = heads.isEmpty() ? QString("%1: %2").arg(QString::fromStdString(m.method), text)
                                                                : QString("head %1: %2").arg(heads[col - 1].name(), text);
                        c.setMap({caption, m.pixels.values, m.pixels.rows, m.pixels.cols, lo, hi});
                    }
                    const int x = col == 0 ? 0 : inputW + (col - 1) * panelW;
                    c.paintTo(p, QRect(r.left() + x, r.top() + row * panelH, col == 0 ? inputW : panelW, panelH));
                }
            }
        };
        QJsonObject rr = rec;
        rr["shared_colour_scale"] = sharedScale;
        if (oneBar) rr["colour_scale"] = QJsonArray{lo, hi};
        const QString err = exportFigure(paint, QSize(inputW + (cols - 1) * panelW + barPanelW, rows * panelH), path, dpi, rr, "vitscope figure");
        if (!err.isEmpty()) showError(err);
        emit figureReady(path, err);
    });
    return {};
}

void MainWindow::figureBuilder() {
    QDialog dialog(this);
    dialog.setWindowTitle(tr("Figure builder"));
    auto* form = new QFormLayout(&dialog);
    // The builder remembers its last texts and heads (the current text when it has none).
    const QString lastTexts = QSettings().value("figure/texts").toString();
    auto* texts = new QPlainTextEdit(lastTexts.isEmpty() ? m_text->currentText() : lastTexts);
    texts->setPlaceholderText(tr("one text per line: one row each"));
    QStringList selected;
    for (const HeadId& h : m_grid->selection()) selected << h.name();
    auto* heads = new QLineEdit(selected.isEmpty() ? QSettings().value("figure/heads").toString() : selected.join(", "));
    heads->setPlaceholderText(tr("heads as columns, e.g. 3.1, 2.0 (empty: one map as on the canvas)"));
    auto* dpi = new QSpinBox;
    dpi->setRange(24, 1200);
    dpi->setValue(QSettings().value("export/dpi", 300).toInt());
    auto* shared = new QCheckBox(tr("One colour scale for every map"));
    shared->setChecked(true);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    form->addRow(tr("Texts"), texts);
    form->addRow(tr("Heads"), heads);
    form->addRow(tr("PNG dpi"), dpi);
    form->addRow(shared);
    form->addRow(buttons);
    connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    if (dialog.exec() != QDialog::Accepted) return;
    QList<HeadId> columns;
    for (const QString& item : heads->text().split(',', Qt::SkipEmptyParts)) {
        const QStringList lh = item.trimmed().split('.');
        bool ok1 = false, ok2 = false;
        const HeadId h{lh.value(0).toInt(&ok1), lh.value(1).toInt(&ok2)};
        if (lh.size() != 2 || !ok1 || !ok2) {
            showError(tr("'%1' is not a head name (L.H)").arg(item.trimmed()));
            return;
        }
        columns << h;
    }
    QSettings().setValue("figure/texts", texts->toPlainText());
    QSettings().setValue("figure/heads", heads->text());
    const QString path = QFileDialog::getSaveFileName(this, tr("Export figure"), exportFolder() + "/figure.pdf",
                                                      tr("PDF (*.pdf);;SVG (*.svg);;PNG (*.png)"));
    if (path.isEmpty()) return;
    QSettings().setValue("export/dir", QFileInfo(path).path());
    QSettings().setValue("export/dpi", dpi->value());
    const QString err = exportPanelFigure(texts->toPlainText().split('\n', Qt::SkipEmptyParts), columns, path, dpi->value(), shared->isChecked());
    if (!err.isEmpty()) showError(err);
}

QString MainWindow::exportFolder() const {
    // The last folder written to; the user's pictures (or home) folder the first time.
    const QString last = QSettings().value("export/dir").toString();
    if (!last.isEmpty() && QFileInfo(last).isDir()) return last;
    const QString pictures = QStandardPaths::writableLocation(QStandardPaths::PicturesLocation);
    return QFileInfo(pictures).isDir() ? pictures : QDir::homePath();
}

QString MainWindow::dialogExport(const QString& view) {
    QSettings s;
    const QString path = QFileDialog::getSaveFileName(this, tr("Export figure"), exportFolder() + "/" + view + ".svg",
                                                      tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"));
    if (path.isEmpty()) return {};
    s.setValue("export/dir", QFileInfo(path).path());
    int dpi = s.value("export/dpi", 300).toInt();
    if (path.endsWith(".png", Qt::CaseInsensitive)) {
        bool ok = false;
        dpi = QInputDialog::getInt(this, tr("PNG resolution"), tr("Dots per inch"), dpi, 24, 1200, 1, &ok);
        if (!ok) return {};
        s.setValue("export/dpi", dpi);
    }
    const QString err = exportView(view, path, dpi);
    if (!err.isEmpty()) showError(err);
    else statusBar()->showMessage(tr("Wrote %1 and its record %1.json").arg(path), 5000);
    return err;
}

void MainWindow::addRecent(const QString& key, const QString& path) {
    QSettings s;
    QStringList list = s.value(key).toStringList();
    list.removeAll(path);
    list.prepend(path);
    while (list.size() > 10) list.removeLast();
    s.setValue(key, list);
    refreshRecentMenu();
}

void MainWindow::refreshRecentMenu() {
    if (!m_recentMenu) return;
    m_recentMenu->clear();
    QSettings s;
    for (const auto& [key, label] : QList<QPair<QString, QString>>{{"recent/images", tr("Images")}, {"recent/models", tr("Models")}, {"recent/datasets", tr("Datasets")}}) {
        m_recentMenu->addSection(label);
        for (const QString& p : s.value(key).toStringList()) {
            m_recentMenu->addAction(p, this, [this, key, p] {
                if (key == "recent/images") openImage(p);
                else if (key == "recent/models") openModel(p);
                else openDataset(p);
            });
        }
    }
}

void MainWindow::saveSettings() {
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    if (!m_classroomOn) s.setValue("window/state", saveState());
    s.setValue("view/colormap", m_colormap->currentText());
    s.setValue("view/opacity", m_opacity->value());
    s.setValue("view/method", m_method->currentText());
}

std::vector<QWidget*> MainWindow::viewSettings() const {
    return {m_onlySelected, m_perHead, m_opacityLabel, m_opacity, m_colormap};
}

void MainWindow::applyClassroomLayout() {
    // The projector's layout: the grid and the ledger wide enough for their larger text
    // (cells, legend names, layer labels), the rest for the banner and the image.
    if (auto* ledgerDock = findChild<QDockWidget*>("ledgerDock"))
        resizeDocks({ledgerDock}, {std::max(ledgerDock->width(), width() / 3)}, Qt::Horizontal);
    auto* split = qobject_cast<QSplitter*>(centralWidget());
    if (split && split->count() == 2) {
        const int total = split->sizes().value(0) + split->sizes().value(1);
        split->setSizes({total * 36 / 100, total - total * 36 / 100});
    }
}

void MainWindow::setClassroomMode(bool on) {
    if (on == m_classroomOn) return;
    m_classroomOn = on;
    if (on) {
        m_normalState = saveState();
        for (QDockWidget* d : findChildren<QDockWidget*>()) d->setVisible(d->widget() == m_ledger);
        QFont f = QApplication::font();
        f.setPointSizeF(f.pointSizeF() * 1.5);
        centralWidget()->setFont(f);
        m_grid->setFontScale(1.6);
        m_canvas->setFontScale(1.6);
        m_ledger->setFontScale(1.6);
        // Tooltips (a grid cell's texts, a bar's value) read from the back of the room too.
        m_normalTooltipFont = QToolTip::font();
        QFont tipFont = m_normalTooltipFont;
        tipFont.setPointSizeF(tipFont.pointSizeF() * 1.6);
        QToolTip::setFont(tipFont);
        // The view settings stay on the desk: the projector gets the text, the method and the views.
        for (QWidget* w : viewSettings()) w->hide();
        m_classroom->show();
        m_classroom->setFocus();
        showFullScreen();
        if (auto* split = qobject_cast<QSplitter*>(centralWidget())) m_normalSplit = split->sizes();
        applyClassroomLayout();  // again when the full-screen size arrives (resizeEvent)
        const int step = m_classroom->step();
        m_classroom->setStep(step == 0 ? 1 : 0);
        m_classroom->setStep(0);
    } else {
        m_classroom->hide();
        centralWidget()->setFont(QApplication::font());
        m_grid->setFontScale(1.0);
        m_canvas->setFontScale(1.0);
        m_ledger->setFontScale(1.0);
        QToolTip::setFont(m_normalTooltipFont);
        for (QWidget* w : viewSettings()) w->show();
        m_canvas->setPatchGrid(0, 0);
        showNormal();
        restoreState(m_normalState);
        if (auto* split = qobject_cast<QSplitter*>(centralWidget()); split && !m_normalSplit.isEmpty()) split->setSizes(m_normalSplit);
        requestHeatmap();  // the patches step clears the map: leaving brings it back
    }
}

}  // namespace vitscope::ui
