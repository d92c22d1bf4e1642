#include "export_controller.h"

#include "ablation_panel.h"
#include "comparison_view.h"
#include "partner_view.h"
#include "controls.h"
#include "figure_export.h"
#include "gallery.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "projector.h"
#include "session.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QInputDialog>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QMainWindow>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSet>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>

#include <cmath>
#include <limits>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

// How a figure of texts x heads is laid out, and its maps' common scale.
struct FigureLayout {
    int rows = 0, cols = 0;  // cols: the input, then the maps
    float lo = 0, hi = 0;    // lo < hi: one scale and one colorbar for every map
    bool oneBar() const { return lo < hi; }
    int panelH = 190, inputW = 180;
    int panelW() const { return oneBar() ? 185 : 250; }
    int barW() const { return oneBar() ? 64 : 0; }
    QSize size() const { return {inputW + (cols - 1) * panelW() + barW(), rows * panelH}; }
};

FigureLayout figureLayout(const std::vector<HeatmapResult>& maps, int texts, int heads, bool shared) {
    FigureLayout f;
    f.rows = texts;
    f.cols = 1 + std::max(1, heads);
    if (shared && !maps.empty()) {
        f.lo = std::numeric_limits<float>::infinity();
        f.hi = -f.lo;
        for (const HeatmapResult& m : maps) {
            f.lo = std::min(f.lo, m.pixels.minValue());
            f.hi = std::max(f.hi, m.pixels.maxValue());
        }
        if (!(f.lo < f.hi)) f.lo = f.hi = 0;
    }
    return f;
}

struct FigureStyle {
    QImage crop;
    double opacity = 0.55;
    ColormapKind colormap = ColormapKind::Viridis;
};

void paintFigure(QPainter& p, const QRect& r, const FigureLayout& f, const FigureStyle& style, const std::vector<HeatmapResult>& maps,
                 const QList<HeadId>& heads) {
    p.fillRect(r, Qt::white);
    QFont font = p.font();
    font.setPointSizeF(7.5);
    p.setFont(font);
    if (f.oneBar()) {
        ImageCanvas bar;
        bar.setColormap(style.colormap);
        const int top = r.top() + p.fontMetrics().height() + 10;  // level with the maps, below their captions
        bar.paintColorbar(p, QRect(r.right() - f.barW() + 6, top, 12, f.rows * f.panelH - (top - r.top()) - 8), f.barW() - 20, f.lo, f.hi);
    }
    for (int row = 0; row < f.rows; ++row)
        for (int col = 0; col < f.cols; ++col) {
            MapLayer layer{row == 0 ? QObject::tr("input") : QString(" "), {}, 0, 0};
            if (col > 0) {
                const HeatmapResult& m = maps[static_cast<std::size_t>(row * (f.cols - 1) + col - 1)];
                const QString caption = heads.isEmpty() ? QString("%1: %2").arg(q(m.method), q(m.text))
                                                        : QString("head %1: %2").arg(heads[col - 1].name(), q(m.text));
                layer = {caption, m.pixels.values, m.pixels.rows, m.pixels.cols, f.lo, f.hi};
            }
            const int x = col == 0 ? 0 : f.inputW + (col - 1) * f.panelW();
            ImageCanvas::paintPanel(p, QRect(r.left() + x, r.top() + row * f.panelH, col == 0 ? f.inputW : f.panelW(), f.panelH), style.crop,
                                    layer, style.opacity, style.colormap, !f.oneBar());
        }
}

}  // namespace

ExportController::ExportController(QMainWindow* window, Session& session, const Views& views)
    : QObject(window), m_window(window), m_session(session), m_views(views) {}

namespace {

// What the projector's and the comparison's figures show, in their records.
void addDockRecord(const State& s, const QString& view, QJsonObject& r) {
    if (view == "projector" && !s.projection.result.x.empty()) {
        const ProjectionResult& p = s.projection.result;
        QStringList components;
        for (const std::string& c : p.components) components << q(c);
        const bool heads = !p.pointNames.empty();
        r["projection"] = QJsonObject{{"method", q(p.request.method)},
                                      {"points", p.request.headDirections > 0
                                                     ? QString("heads (each its top %1 principal directions: right singular vectors of its terms)")
                                                           .arg(p.request.headDirections)
                                                 : heads ? QString("heads (each its mean direction over the dataset)")
                                                 : components.isEmpty() ? QString("whole representation")
                                                                        : components.join(",")},
                                      {"colour", q(p.labels.empty() ? p.request.colorText : p.request.colorColumn)},
                                      {"colour_kind", heads ? QString("layer") : p.labels.empty() ? QString("text score") : QString("labels.csv column")},
                                      {heads ? "heads" : "images", int(p.x.size())},
                                      {"seed", QString::number(p.request.seed)}};
    }
    if (view == "comparison" && s.comparison) {
        const HeadComparison& c = *s.comparison;
        r["comparison"] = QJsonObject{{"model_b", q(c.specB)}, {"images", qint64(c.images)}, {"measure", "linear CKA"}, {"assignment", "Hungarian, maximum summed CKA"}};
    }
    if (view == "second-model" && s.comparison && s.partner.open()) {
        QStringList heads;
        for (const auto& [l, h] : s.partner.mapHeads) heads << QString("%1.%2").arg(l).arg(h);
        r["second_model"] = QJsonObject{{"model", q(s.partner.model.spec)},
                                        {"fingerprint", q(s.partner.model.fingerprint)},
                                        {"method", q(s.partner.map.method)},
                                        {"text", q(s.partner.map.text)},
                                        {"heads", heads.isEmpty() ? QString("all") : heads.join(",")},
                                        {"note", s.partner.mapNote}};
    }
}

}  // namespace

QJsonObject ExportController::record(const QString& view) const {
    const State& s = m_session.state();
    QJsonObject r;
    r["view"] = view;
    r["model"] = q(s.model.spec);
    r["model_fingerprint"] = q(s.model.fingerprint);
    r["model_family"] = q(s.model.family);
    r["device"] = q(s.model.device);
    if (!s.model.aligner.empty()) r["aligner"] = q(s.model.aligner);
    r["image"] = s.imagePath();
    r["text"] = s.text;
    r["method"] = s.view.method;
    {
        const MapOptions& o = s.view.map;
        r["map_options"] = QJsonObject{{"chefer_start_layer", o.cheferStartLayer ? *o.cheferStartLayer : s.model.cheferDefaultStartLayer},
                                       {"chefer_start_layer_is_reference_default", !o.cheferStartLayer.has_value()},
                                       {"gradcam_target", o.gradcamTarget},
                                       {"siglip_map", o.siglipMap},
                                       {"input_size", o.inputSize}};
    }
    if (s.view.method == "surgery") r["surgery_prompt_ensemble"] = s.model.surgeryEnsemble;
    r["preprocessing"] = q(s.model.preprocessing);
    r["whole_image"] = s.view.wholeImage;
    QStringList heads;
    for (const HeadId& h : s.selection) heads << h.name();
    r["selected_heads"] = heads.join(",");
    r["restricted_to_selected_heads"] = s.view.onlySelected;
    if (s.map.referenceCount > 0) r["reference_texts"] = QJsonObject{{"file", s.map.referenceFile}, {"count", s.map.referenceCount}};
    r["colormap"] = m_views.text->colormapName();
    r["opacity"] = m_views.text->opacity();
    QString metric;
    s.gridValues(&metric);
    r["grid_metric"] = metric;
    r["dataset"] = s.dataset.folder;
    r["ablated"] = s.ablation.ablated.join(",");
    if (!s.descriptions.empty()) {
        // How the head descriptions shown (grid tooltips, head panel) were computed.
        QJsonObject ts;
        ts["algorithm"] = "TextSpan, reference greedy (clip_text_span)";
        ts["convention"] = q(s.descriptions.front().convention);
        ts["rank"] = s.descriptions.front().rank;
        ts["texts_per_head"] = static_cast<int>(s.descriptions.front().picks.size());
        ts["text_pool"] = s.textPoolFile();
        r["textspan"] = ts;
    }
    addDockRecord(s, view, r);
    return r;
}

QString ExportController::finishExport(const QString& path, const QString& error) {
    if (!error.isEmpty()) m_session.showError(error);
    else m_session.showNotice(tr("Wrote %1 and its record %1.json").arg(path));
    return error;
}

QString ExportController::exportFolder() const {
    // The last folder written to; the user's pictures (or home) folder the first time.
    const QString last = QSettings().value("export/dir").toString();
    if (!last.isEmpty() && QFileInfo(last).isDir()) return last;
    const QString pictures = QStandardPaths::writableLocation(QStandardPaths::PicturesLocation);
    return QFileInfo(pictures).isDir() ? pictures : QDir::homePath();
}

void ExportController::exportDialog(const QString& view) {
    QSettings s;
    const QString path = QFileDialog::getSaveFileName(m_window, tr("Export figure"), exportFolder() + "/" + view + ".svg",
                                                      tr("SVG (*.svg);;PDF (*.pdf);;PNG (*.png)"));
    if (path.isEmpty()) return;
    s.setValue("export/dir", QFileInfo(path).path());
    int dpi = s.value("export/dpi", 300).toInt();
    if (path.endsWith(".png", Qt::CaseInsensitive)) {
        bool ok = false;
        dpi = QInputDialog::getInt(m_window, tr("PNG resolution"), tr("Dots per inch of the PNG (300 for print, 96 for screens):"), dpi, 24, 1200, 1, &ok);
        if (!ok) return;
        s.setValue("export/dpi", dpi);
    }
    finishExport(path, exportView(view, path, dpi));
}

void ExportController::numbersDialog(const QString& what) {
    const QString path = QFileDialog::getSaveFileName(m_window, tr("Export numbers"), exportFolder() + "/" + what + ".csv",
                                                      tr("CSV (*.csv);;JSON (*.json);;NumPy (*.npy)"));
    if (path.isEmpty()) return;
    QSettings().setValue("export/dir", QFileInfo(path).path());
    finishExport(path, exportData(what, path));
}


// Both models' maps of the image, side by side (the Second model dock's canvas beside the window's).
QString ExportController::exportTwoModels(const QString& path, int dpi) {
    const State& s = m_session.state();
    if (!s.comparison || !s.partner.open() || !s.hasImage() || s.partner.map.method.empty())
        return tr("%1: no second model's map to export (Compare with a model..., then open an image and a text)").arg(path);
    const ImageCanvas* a = m_views.canvas;
    const ImageCanvas* b = m_views.partner->canvas();
    const int h = std::max(420, a->height()), title = 24;  // each panel headed by its model's name
    const QSize sa = a->figureSize(h), sb = b->figureSize(h);
    const QString nameA = q(s.model.name), nameB = q(s.partner.model.name) + (s.partner.mapNote.isEmpty() ? QString() : " (" + s.partner.mapNote + ")");
    return exportFigure(
        [=](QPainter& p, const QRect& r) {
            p.save();
            QFont f = p.font();
            f.setBold(true);
            p.setFont(f);
            p.setPen(Qt::black);
            p.drawText(QRect(r.left(), r.top(), sa.width(), title), Qt::AlignLeft | Qt::AlignVCenter, nameA);
            p.drawText(QRect(r.left() + sa.width(), r.top(), r.width() - sa.width(), title), Qt::AlignLeft | Qt::AlignVCenter, nameB);
            p.restore();
            a->paintTo(p, QRect(r.left(), r.top() + title, sa.width(), r.height() - title));
            b->paintTo(p, QRect(r.left() + sa.width(), r.top() + title, r.width() - sa.width(), r.height() - title));
        },
        QSize(sa.width() + sb.width(), h + title), path, dpi, record("second-model"), "vitscope two models");
}

QString ExportController::exportView(const QString& view, const QString& path, int dpi) {
    const State& s = m_session.state();
    QWidget* w = nullptr;
    QString heading;  // charts say what they show: the ledger its text and score, the head chart its head
    if (view == "canvas") {
        if (!s.hasImage()) return tr("%1: no image to export").arg(path);
        const ImageCanvas* c = m_views.canvas;
        const QSize size = c->figureSize(std::max(420, c->height()));
        return exportFigure([c](QPainter& p, const QRect& r) { c->paintTo(p, r); }, size, path, dpi, record(view), "vitscope canvas");
    }
    if (view == "grid") {
        if (!s.hasModel()) return tr("%1: no model open").arg(path);
        w = m_views.grid;
    } else if (view == "ledger") {
        if (s.ledger.rows.empty()) return tr("%1: no ledger yet (open an image and enter a text)").arg(path);
        w = m_views.ledger->plot();
        heading = m_views.ledger->summaryText();
    } else if (view == "head") {
        if (s.focus.empty()) return tr("%1: no head chosen (click one in the grid)").arg(path);
        w = m_views.head->plot();
        heading = m_views.head->titleText();
    } else if (view == "ablation") {
        if (!s.ablation.taskSet) return tr("%1: no ablation outcome to export (set a task first)").arg(path);
        w = m_views.ablation->plot();
    } else if (view == "projector") {
        if (s.projection.result.x.empty()) return tr("%1: no layout to export (open a dataset, then Lay out)").arg(path);
        heading = m_views.projector->statusText();
        m_views.projector->setCursorShown(false);  // the keyboard's cursor is the screen's, not the figure's
        const QString failed = exportWidget(view, m_views.projector->plot(), heading, path, dpi);
        m_views.projector->setCursorShown(true);
        return failed;
    } else if (view == "comparison") {
        if (!s.comparison) return tr("%1: no comparison to export (Compare with a model... first)").arg(path);
        w = m_views.comparison->plot();
        heading = m_views.comparison->titleText();
    } else if (view == "second-model") {
        return exportTwoModels(path, dpi);
    } else if (view == "gallery") {
        w = m_views.gallery;
    } else if (view == "window") {
        w = m_window;
    } else {
        return tr("unknown view '%1'").arg(view);
    }
    return exportWidget(view, w, heading, path, dpi);
}

QString ExportController::exportWidget(const QString& view, QWidget* w, const QString& heading, const QString& path, int dpi) {
    // Charts lay themselves out for the figure's size (room for their axis titles and labels even
    // when their dock is narrow); other widgets are scaled as pictures, with their own aspect.
    auto* plot = qobject_cast<QCustomPlot*>(w);
    if (w->size().width() < 50) w->resize(w->sizeHint());
    const QSize own = w->size();
    QSize size;
    auto refit = [this](QWidget* chart) {
        if (chart == m_views.head->plot()) m_views.head->fitToWidth();
        if (chart == m_views.ledger->plot()) m_views.ledger->fitToWidth();
    };
    if (plot) {
        size = own.expandedTo(QSize(600, 380));
        w->resize(size);
        refit(w);
    } else {
        // The grid at the size its rows and colorbar take (a tall dock left its lower half empty).
        if (view == "grid") w->resize(w->sizeHint());
        const QSize at = w->size(), least(320, 240);
        const double grow = std::max({1.0, least.width() / double(at.width()), least.height() / double(at.height())});
        size = QSize(qRound(at.width() * grow), qRound(at.height() * grow));
    }
    FigurePainter paint = widgetPainter(w);
    if (!heading.isEmpty()) {
        const int titleH = 40;
        paint = [chart = paint, heading, titleH](QPainter& p, const QRect& r) {
            p.fillRect(r, Qt::white);
            p.setPen(Qt::black);
            p.drawText(QRect(r.left() + 6, r.top() + 2, r.width() - 12, titleH - 4), Qt::AlignLeft | Qt::AlignVCenter | Qt::TextWordWrap, heading);
            chart(p, r.adjusted(0, titleH, 0, 0));
        };
        size += QSize(0, titleH);
    }
    // The grid is drawn without the selection's outline (an interaction state, not data).
    if (view == "grid") m_views.grid->setSelectionShown(false);
    const QString err = exportFigure(paint, size, path, dpi, record(view), QString("vitscope %1").arg(view));
    if (view == "grid") m_views.grid->setSelectionShown(true);
    if (w->size() != own) {
        w->resize(own);
        if (plot) refit(w);
    }
    return err;
}

QString ExportController::exportData(const QString& what, const QString& path) {
    const State& s = m_session.state();
    QJsonObject r = record(what);
    if (what == "heatmap") {
        if (s.map.empty()) return tr("%1: no heatmap yet").arg(path);
        const FloatGrid& g = s.map.maps.front().patches;
        r["map_text"] = q(s.map.maps.front().text);
        r["map_method"] = q(s.map.maps.front().method);
        return exportMatrix(g.values, g.rows, g.cols, path, {}, r);
    }
    if (what == "grid") return exportGridData(path, r);
    if (what == "ledger") {
        if (s.ledger.rows.empty()) return tr("%1: no ledger yet").arg(path);
        // A term without a layer (embedding, final biases) or a head (MLP, biases) has none: NaN,
        // an empty cell in CSV and null in JSON; its name says what it is.
        std::vector<float> v;
        const float none = std::nanf("");
        QJsonArray names;
        for (const LedgerRow& row : s.ledger.rows) {
            v.insert(v.end(), {row.layer >= 0 ? float(row.layer) : none, row.head >= 0 ? float(row.head) : none, float(row.score)});
            names.append(q(row.name));
        }
        r["ledger_text"] = q(s.ledger.text);
        r["total"] = s.ledger.total;
        r["sum_of_terms"] = s.ledger.sumOfTerms;
        r["residual"] = s.ledger.residual;
        r["row_names"] = names;
        return exportMatrix(v, int(s.ledger.rows.size()), 3, path, {"layer", "head", "score"}, r);
    }
    return tr("unknown data '%1'").arg(what);
}

QString ExportController::exportGridData(const QString& path, QJsonObject r) {
    const State& s = m_session.state();
    if (!s.hasModel()) return tr("%1: no model open").arg(path);
    QString metric;
    const GridValues g = s.gridValues(&metric);
    if (g.empty()) return tr("%1: the grid shows no values (%2)").arg(path, metric);
    // One row per grid row: its heads (NaN where a Swin block has fewer), its MLP, MaxViT's MBConv.
    const int rows = g.heads.rows, heads = g.heads.cols, cols = heads + 1 + (g.side.empty() ? 0 : 1);
    std::vector<float> v;
    for (int l = 0; l < rows; ++l) {
        for (int h = 0; h < heads; ++h) v.push_back(h < s.model.headsIn(l) ? g.heads.at(l, h) : std::nanf(""));
        v.push_back(std::size_t(l) < g.mlp.size() ? g.mlp[std::size_t(l)] : std::nanf(""));
        if (!g.side.empty()) v.push_back(g.side[std::size_t(l)]);
    }
    QStringList names;
    for (int h = 0; h < heads; ++h) names << QString("head %1").arg(h);
    names << "mlp";
    if (!g.side.empty()) names << "mbconv";
    // SigLIP: the last row is the pooling heads (pool.h0..), another decomposition of the output.
    QJsonArray rowNames;
    for (int l = 0; l < rows; ++l)
        rowNames.append(s.model.poolHeads > 0 && l == s.model.layers ? QString("pool")
                        : std::size_t(l) < s.model.layerLabels.size() ? QString("layer %1 (%2)").arg(l).arg(q(s.model.layerLabels[std::size_t(l)]))
                                                                       : QString("layer %1").arg(l));
    r["row_names"] = rowNames;
    r["grid_metric"] = metric;
    return exportMatrix(v, rows, cols, path, names, r);
}

QString ExportController::checkFigure(const QStringList& texts, const QString& heads, QList<HeadId>* parsed) const {
    const State& s = m_session.state();
    QList<HeadId> columns;
    for (const QString& item : heads.split(',', Qt::SkipEmptyParts)) {
        const QString name = item.trimmed();
        HeadId h;
        bool ok1 = false, ok2 = false;
        if (name.startsWith("pool.h") && s.model.poolHeads > 0) {  // SigLIP's pooling heads: the grid's last row
            h = gridHead(s.model.layers, name.mid(6).toInt(&ok2), s.model.layers, true);
            ok1 = true;
        } else {
            const QStringList lh = name.split('.');
            h = {lh.value(0).toInt(&ok1), lh.value(1).toInt(&ok2)};
            ok1 = ok1 && lh.size() == 2;
        }
        if (!ok1 || !ok2) return tr("heads: '%1' is not a head name (layer.head, e.g. 3.1)").arg(name);
        if (h.layer < 0 || h.layer >= s.model.gridLayers() || h.head < 0 || h.head >= s.model.headsIn(h.layer))
            return tr("heads: %1 is not a head of %2").arg(name, q(s.model.name));
        columns << h;
    }
    QStringList lines;
    for (const QString& t : texts)
        if (!t.trimmed().isEmpty()) lines << t.trimmed();
    if (lines.isEmpty()) return tr("texts: the figure needs at least one text");
    // Word-vocabulary models read only their own words: name the first unknown one and its line.
    if (!s.model.vocabulary.empty()) {
        QSet<QString> known;
        for (const std::string& w : s.model.vocabulary) known.insert(q(w));
        for (int i = 0; i < lines.size(); ++i)
            for (const QString& w : lines[i].toLower().split(QRegularExpression("[^a-z0-9']+"), Qt::SkipEmptyParts))
                if (!known.contains(w)) return tr("texts, line %1: '%2' is not a word this model knows").arg(i + 1).arg(w);
    }
    if (parsed) *parsed = columns;
    return {};
}

QString ExportController::exportPanelFigure(const QStringList& texts, const QList<HeadId>& heads, const QString& path, int dpi, bool sharedScale) {
    const State& s = m_session.state();
    if (!s.hasImage()) return tr("%1: open an image first").arg(path);
    QStringList names;
    for (const HeadId& h : heads) names << h.name();
    const QString problem = checkFigure(texts, names.join(","), nullptr);
    if (!problem.isEmpty()) return tr("%1: %2").arg(path, problem);
    FigureJob job;
    job.base.method = heads.isEmpty() ? s.view.method.toStdString() : std::string("decomposition");
    if (heads.isEmpty() && s.view.onlySelected) job.base.heads = s.selectedPairs();
    job.base.subtractReference = s.view.subtractReference && s.referenceCount > 0;
    applyMapOptions(s.view.map, job.base);
    for (const QString& t : texts)
        if (!t.trimmed().isEmpty()) job.texts.push_back(t.trimmed().toStdString());
    for (const HeadId& h : heads) job.columns.emplace_back(h.layer, h.head);
    const RgbImage& c = s.image.crop;
    FigureStyle style{QImage(c.rgb.data(), c.width, c.height, 3 * c.width, QImage::Format_RGB888).copy(), m_views.text->opacity(),
                      colormapFromName(m_views.text->colormapName())};
    QJsonObject rec = record("figure");
    rec["texts"] = QJsonArray::fromStringList(texts);
    rec["figure_heads"] = QJsonArray::fromStringList(names);
    const int rows = static_cast<int>(job.texts.size());
    m_session.engine().run(
        job, this,
        [this, rows, heads, path, dpi, sharedScale, style, rec](std::vector<HeatmapResult> maps) {
            const FigureLayout f = figureLayout(maps, rows, static_cast<int>(heads.size()), sharedScale);
            QJsonObject rr = rec;
            rr["shared_colour_scale"] = sharedScale;
            if (f.oneBar()) rr["colour_scale"] = QJsonArray{f.lo, f.hi};
            const QString err = exportFigure([=](QPainter& p, const QRect& r) { paintFigure(p, r, f, style, maps, heads); }, f.size(), path, dpi,
                                             rr, "vitscope figure");
            finishExport(path, err);
            emit figureWritten(path, err);
        },
        [this, path](const JobFailure& f) {
            const QString err = f.cancelled ? tr("%1: the figure was cancelled").arg(path) : tr("%1: %2").arg(path, f.message);
            m_session.showError(err);
            emit figureWritten(path, err);
        });
    return {};
}

void ExportController::figureBuilder() {
    const State& st = m_session.state();
    QDialog dialog(m_window);
    dialog.setWindowTitle(tr("Figure builder"));
    auto* form = new QFormLayout(&dialog);
    // The builder remembers its last texts and heads (the current text and selection when it has none).
    const QString lastTexts = QSettings().value("figure/texts").toString();
    auto* texts = new QPlainTextEdit(lastTexts.isEmpty() ? st.text : lastTexts);
    texts->setPlaceholderText(tr("one text per line: one row each"));
    QStringList selected;
    for (const HeadId& h : st.selection) selected << h.name();
    const QString lastHeads = QSettings().value("figure/heads").toString();
    auto* heads = new QLineEdit(!lastHeads.isEmpty() ? lastHeads : selected.join(", "));
    heads->setPlaceholderText(tr("heads as columns, e.g. 3.1, 2.0 (empty: one map as on the canvas)"));
    auto* dpi = new QSpinBox;
    dpi->setRange(24, 1200);
    dpi->setValue(QSettings().value("export/dpi", 300).toInt());
    auto* shared = new QCheckBox(tr("One colour scale for every map"));
    shared->setChecked(true);
    auto* problem = new QLabel;
    problem->setObjectName("figureProblem");
    problem->setStyleSheet("color: #b00020;");
    problem->setWordWrap(true);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    for (auto [label, w] : {std::pair<QString, QWidget*>{tr("Texts"), texts}, {tr("Heads"), heads}, {tr("PNG dpi"), dpi}}) form->addRow(label, w);
    form->addRow(shared);
    form->addRow(problem);
    form->addRow(buttons);
    QList<HeadId> columns;
    // Checked in the dialog: it stays open with the problem named until the figure can be made.
    connect(buttons, &QDialogButtonBox::accepted, &dialog, [&] {
        const QString why = checkFigure(texts->toPlainText().split('\n'), heads->text(), &columns);
        problem->setText(why);
        if (why.isEmpty()) dialog.accept();
        else (why.startsWith(tr("heads")) ? static_cast<QWidget*>(heads) : texts)->setFocus();
    });
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    if (dialog.exec() != QDialog::Accepted) return;
    QSettings().setValue("figure/texts", texts->toPlainText());
    QSettings().setValue("figure/heads", heads->text());
    const QString path = QFileDialog::getSaveFileName(m_window, tr("Export figure"), exportFolder() + "/figure.pdf", tr("PDF (*.pdf);;SVG (*.svg);;PNG (*.png)"));
    if (path.isEmpty()) return;
    QSettings().setValue("export/dir", QFileInfo(path).path());
    QSettings().setValue("export/dpi", dpi->value());
    const QString err = exportPanelFigure(texts->toPlainText().split('\n', Qt::SkipEmptyParts), columns, path, dpi->value(), shared->isChecked());
    if (!err.isEmpty()) m_session.showError(err);
}

}  // namespace vitscope::ui
