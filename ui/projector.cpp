#include "projector.h"

#include "colormap.h"
#include "session.h"
#include "thumbnails.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSignalBlocker>
#include <QToolTip>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>
#include <map>
#include <cmath>

namespace vitscope::ui {

namespace {

constexpr int kBins = 9;  // colour steps of the text score (one scatter graph each)
constexpr std::size_t kRasterPoints = 20000;  // above: points drawn as pixels (Projector::paintPoints)

std::string joinNames(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

}  // namespace

Projector::Projector(Thumbnails* thumbs, QWidget* parent) : QWidget(parent), m_thumbs(thumbs) {
    auto* layout = new QVBoxLayout(this);
    auto* row = new QHBoxLayout;
    m_method = new QComboBox;
    m_method->setObjectName("projectorMethod");
    m_method->addItems({"umap", "tsne", "pca", "text-axes"});
    m_method->setToolTip(tr("UMAP and t-SNE with their references' defaults (umap-learn, scikit-learn), PCA, or text axes: "
                            "x = score of A minus score of B, y = C minus D"));
    m_points = new QComboBox;
    m_points->setObjectName("projectorPoints");
    m_points->addItems({tr("whole representation"), tr("selected heads"), tr("heads as points"), tr("heads' principal directions")});
    m_points->setToolTip(tr("What each image is: its whole representation, or the sum of the selected heads' contributions; "
                            "or the heads themselves, each its mean direction over the images, or each head's top 3 principal "
                            "directions (TextSpan's span: the right singular vectors of its terms), one point each "
                            "(a click focuses a head, Select picks heads)"));
    m_layOut = new QPushButton(tr("Lay out"));
    m_layOut->setObjectName("projectorLayOut");
    m_select = new QPushButton(tr("Select"));
    m_select->setObjectName("projectorSelect");
    m_select->setCheckable(true);
    m_select->setToolTip(tr("Draw around points to pick them (a lasso; a straight drag picks its rectangle). Off: drag pans, the wheel zooms, a click opens an image"));
    row->addWidget(new QLabel(tr("Layout")));
    row->addWidget(m_method);
    row->addWidget(m_points);
    m_colour = new QComboBox;
    m_colour->setObjectName("projectorColour");
    m_colour->addItem(tr("colour: text score"), QString());
    m_colour->setToolTip(tr("Colour the points by the text's score, or by a column of the dataset's labels.csv"));
    row->addWidget(m_layOut);
    row->addWidget(m_colour);
    row->addWidget(m_select);
    row->addStretch(1);
    layout->addLayout(row);
    m_axesRow = new QWidget;
    auto* axes = new QHBoxLayout(m_axesRow);
    axes->setContentsMargins(0, 0, 0, 0);
    const char* names[4] = {"x: A", "minus B", "y: C", "minus D"};
    for (int i = 0; i < 4; ++i) {
        axes->addWidget(new QLabel(tr(names[i])));
        m_axes[i] = new QLineEdit;
        m_axes[i]->setObjectName(QString("projectorAxis%1").arg(i));
        axes->addWidget(m_axes[i], 1);
        connect(m_axes[i], &QLineEdit::returnPressed, this, &Projector::requestLayout);
    }
    m_axesRow->hide();
    layout->addWidget(m_axesRow);
    buildPlot(layout);
}

void Projector::buildPlot(QVBoxLayout* layout) {
    m_status = new QLabel(tr("Open a dataset, then Lay out."));
    m_status->setWordWrap(true);
    layout->addWidget(m_status);
    m_plot = new QCustomPlot;
    m_plot->setObjectName("projectorPlot");
    m_plot->setMinimumHeight(160);
    m_plot->setFocusPolicy(Qt::StrongFocus);  // Tab reaches the points (projector_keys.cpp)
    m_plot->installEventFilter(this);
    m_plot->setToolTip(tr("Keyboard: arrows move from point to point, Space picks or unpicks, Enter opens, Ctrl+A picks the "
                          "points in view, Escape clears the picks, Shift+arrows pan, + and - zoom, Home shows every point"));
    m_plot->setInteractions(QCP::Interactions(QCP::iRangeDrag) | QCP::iRangeZoom);
    m_plot->xAxis->setTickLabels(false);
    m_plot->yAxis->setTickLabels(false);
    QFont legendFont = font();
    legendFont.setPointSizeF(legendFont.pointSizeF() * 0.85);
    m_plot->legend->setFont(legendFont);
    m_plot->legend->setBrush(QColor(255, 255, 255, 210));
    m_plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    layout->addWidget(m_plot, 3);
    m_picked = new QListWidget;
    m_picked->setObjectName("projectorPicked");
    m_picked->setViewMode(QListView::IconMode);
    m_picked->setIconSize({48, 48});
    m_picked->setResizeMode(QListView::Adjust);
    m_picked->setMaximumHeight(80);
    m_picked->hide();
    layout->addWidget(m_picked, 1);
    connectPlot();
}

void Projector::connectPlot() {
    connect(m_method, &QComboBox::currentTextChanged, this, [this](const QString& m) { m_axesRow->setVisible(m == "text-axes"); });
    connect(m_layOut, &QPushButton::clicked, this, &Projector::requestLayout);
    connect(m_colour, &QComboBox::activated, this, [this](int i) { emit colourRequested(m_colour->itemData(i).toString()); });
    // Select: a lasso (the pressed button's path) picks the points inside it; a path with no area,
    // the rectangle from press to release. Off: drag pans, the wheel zooms.
    connect(m_select, &QPushButton::toggled, this, [this](bool on) {
        m_plot->setInteractions(on ? QCP::Interactions(QCP::iRangeZoom) : QCP::Interactions(QCP::iRangeDrag) | QCP::iRangeZoom);
    });
    // A click (press and release in one place, not selecting) opens the nearest point's image within 8 px.
    connect(m_plot, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        m_pressed = e->position();
        m_lasso = QPolygonF{e->position()};
    });
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        if (!m_select->isChecked() || !(e->buttons() & Qt::LeftButton) || m_lasso.isEmpty()) return;
        m_lasso << e->position();
        drawLasso();
    });
    connect(m_plot, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
        if (m_select->isChecked()) {
            m_lasso << e->position();
            pickInLasso();
            return;
        }
        if ((e->position() - m_pressed).manhattanLength() > 4) return;
        activateRow(nearestRow(e->position(), 8));
    });
    connectHover();
}

void Projector::activateRow(int row) {
    if (row < 0) return;
    if (row < int(m_pointNames.size())) {  // a head: selected and in focus
        emit rowsPicked({row});
        if (const HeadId h = pointHead(m_pointNames[row]); h.valid()) emit headActivated(h);
    } else if (row < m_paths.size()) {
        emit imageActivated(m_paths[row]);
    }
}

void Projector::paintPoints() {
    QCPAxisRect* rect = m_plot->axisRect();
    if (!m_raster) {
        if (!rect->background().isNull()) rect->setBackground(QPixmap());
        return;
    }
    const QRect area = rect->rect();
    const double range[4] = {m_plot->xAxis->range().lower, m_plot->xAxis->range().upper, m_plot->yAxis->range().lower,
                             m_plot->yAxis->range().upper};
    if (m_paintedVersion == m_pointsVersion && m_paintedRect == area && std::equal(range, range + 4, m_paintedRange) &&
        !rect->background().isNull())
        return;  // the same points in the same view: the raster stands
    m_paintedVersion = m_pointsVersion;
    m_paintedRect = area;
    std::copy(range, range + 4, m_paintedRange);
    QImage img(area.size(), QImage::Format_ARGB32_Premultiplied);
    img.fill(Qt::transparent);
    for (int g = 0; g < m_plot->graphCount(); ++g) {
        const QCPGraph* graph = m_plot->graph(g);
        if (graph == m_cursorGraph) continue;  // drawn by QCustomPlot (one point)
        const bool ring = graph == m_pickedGraph;  // picked: a 6 x 6 black frame around the point
        const QRgb c = graph->scatterStyle().pen().color().rgba();
        for (auto it = graph->data()->constBegin(); it != graph->data()->constEnd(); ++it) {
            // The 2 x 2 pixels ending at the point's nearest pixel (as a 2 px disc covers it); the axis
            // rect draws its background one pixel up, hence the row's + 1.
            const int px = qRound(m_plot->xAxis->coordToPixel(it->key)) - 1 - area.left();
            const int py = qRound(m_plot->yAxis->coordToPixel(it->value)) - area.top();
            const int from = ring ? -2 : 0, to = ring ? 4 : 2;
            for (int dy = from; dy < to; ++dy)
                for (int dx = from; dx < to; ++dx)
                    if ((!ring || dx == from || dy == from || dx == to - 1 || dy == to - 1) && px + dx >= 0 && py + dy >= 0 &&
                        px + dx < img.width() && py + dy < img.height())
                        reinterpret_cast<QRgb*>(img.scanLine(py + dy))[px + dx] = c;
        }
    }
    rect->setBackgroundScaled(false);
    rect->setBackground(QPixmap::fromImage(img));
}

void Projector::connectHover() {
    connect(m_plot, &QCustomPlot::afterLayout, this, &Projector::paintPoints);  // the axis rect as it will be drawn
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        if (e->buttons() != Qt::NoButton) return;
        const int row = nearestRow(e->position(), 8);
        const QString tip = hoverText(row);
        if (tip.isEmpty()) QToolTip::hideText();
        else QToolTip::showText(e->globalPosition().toPoint(), tip, m_plot);
    });
    for (auto signal : {&QListWidget::itemClicked, &QListWidget::itemActivated})
        connect(m_picked, signal, this, [this](QListWidgetItem* it) { emit imageActivated(it->data(Qt::UserRole).toString()); });
    connect(m_thumbs, &Thumbnails::ready, this, [this](const QString& path, const QImage& img) {
        for (int i = 0; i < m_picked->count(); ++i)
            if (m_picked->item(i)->data(Qt::UserRole).toString() == path) m_picked->item(i)->setIcon(QPixmap::fromImage(img));
    });
}

QString Projector::hoverText(int row) const {
    if (row < 0) return {};
    if (row < m_pointNames.size()) {
        const QString head = m_pointNames[row].section(' ', 0, 0), k = m_pointNames[row].section('#', 1, 1);
        return k.isEmpty() ? tr("head %1 (click: its descriptions)").arg(head)
                           : tr("head %1, its principal direction %2 (click: its descriptions)").arg(head, k);
    }
    if (row >= m_paths.size()) return {};
    // The image itself (rich text loads the file), its name and what colours it.
    QString detail;
    if (row < int(m_colourValues.size())) detail = m_colourValues[std::size_t(row)];
    return QString("<img src=\"%1\" width=\"96\" height=\"96\"><br>%2%3")
        .arg(QUrl::fromLocalFile(m_paths[row]).toString().toHtmlEscaped(), QFileInfo(m_paths[row]).fileName().toHtmlEscaped(),
             detail.isEmpty() ? QString() : "<br>" + detail.toHtmlEscaped());
}

void Projector::requestLayout() {
    QStringList axes;
    for (QLineEdit* e : m_axes) axes << e->text().trimmed();
    static const char* points[4] = {"whole", "selected", "heads", "head-directions"};
    emit layoutRequested(m_method->currentText(), points[std::clamp(m_points->currentIndex(), 0, 3)], axes);
}

QString Projector::statusText() const { return m_status->text(); }

int Projector::nearestRow(const QPointF& pixel, double within) const {
    int best = -1;
    double bestD = within * within;
    for (std::size_t i = 0; i < m_x.size(); ++i) {
        const double dx = m_plot->xAxis->coordToPixel(m_x[i]) - pixel.x(), dy = m_plot->yAxis->coordToPixel(m_y[i]) - pixel.y();
        if (dx * dx + dy * dy <= bestD) {
            bestD = dx * dx + dy * dy;
            best = int(i);
        }
    }
    return best;
}

bool Projector::pointPosition(int row, QPointF* pixel) const {
    if (row < 0 || row >= int(m_x.size())) return false;
    *pixel = {m_plot->xAxis->coordToPixel(m_x[std::size_t(row)]), m_plot->yAxis->coordToPixel(m_y[std::size_t(row)])};
    return true;
}

void Projector::drawLasso() {
    if (!m_lassoCurve) {
        m_lassoCurve = new QCPCurve(m_plot->xAxis, m_plot->yAxis);
        m_lassoCurve->setPen(QPen(QColor(40, 40, 40), 1, Qt::DashLine));
        m_lassoCurve->removeFromLegend();
    }
    QVector<double> xs, ys;
    for (const QPointF& p : m_lasso) {
        xs << m_plot->xAxis->pixelToCoord(p.x());
        ys << m_plot->yAxis->pixelToCoord(p.y());
    }
    xs << xs.front();
    ys << ys.front();
    m_lassoCurve->setData(xs, ys);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void Projector::pickInLasso() {
    QPolygonF area = m_lasso;
    m_lasso.clear();
    if (m_lassoCurve) {
        m_plot->removePlottable(m_lassoCurve);
        m_lassoCurve = nullptr;
        m_plot->replot();
    }
    const QRectF box = area.boundingRect();
    if (box.width() < 3 && box.height() < 3) return;  // a click, not a pick
    // A path without area (a straight drag): the rectangle it spans.
    double twiceArea = 0;
    for (int i = 0; i < area.size(); ++i) {
        const QPointF& a = area[i];
        const QPointF& b = area[(i + 1) % area.size()];
        twiceArea += a.x() * b.y() - b.x() * a.y();
    }
    if (std::abs(twiceArea) < 0.25 * box.width() * box.height()) area = QPolygonF(box);
    QVector<int> rows;
    for (std::size_t i = 0; i < m_x.size(); ++i)
        if (area.containsPoint({m_plot->xAxis->coordToPixel(m_x[i]), m_plot->yAxis->coordToPixel(m_y[i])}, Qt::OddEvenFill)) rows << int(i);
    emit rowsPicked(rows);
}

void Projector::render(const State& s, QFlags<Aspect> changed) {
    if (!(changed & (Aspect::Projection | Aspect::Model | Aspect::Dataset))) return;
    const ProjectionState& p = s.projection;
    m_layOut->setEnabled(s.dataset.ready());
    if ((changed & Aspect::Model) && p.result.x.empty()) m_select->setChecked(false);  // nothing to pick: drag pans again
    offerColumns(s);
    if (!p.computing && p.result.x.empty()) {
        m_status->setText(s.dataset.ready() ? tr("%1 images: choose a layout, then Lay out.").arg(s.dataset.summary.count)
                                            : tr("Open a dataset (File > Open image folder as dataset), then Lay out."));
    }
    if (p.computing) m_status->setText(tr("laying out %1...").arg(QString::fromStdString(p.request.method)));
    // Drawn again only for another layout or other colours: a pick keeps the view as zoomed.
    const ProjectionResult& r = p.result;
    const bool same = r.x == m_x && r.y == m_y && r.color == m_drawnColor && r.labels == m_drawnLabels && r.pointNames == m_drawnNames &&
                      r.request.colorText == m_drawnColorText && !r.x.empty();
    if (!same) draw(s);
    showPicked(s);
}

void Projector::draw(const State& s) {
    const ProjectionResult& r = s.projection.result;
    m_plot->clearGraphs();
    m_plot->clearPlottables();
    m_lassoCurve = nullptr;
    m_pickedGraph = nullptr;
    m_cursorGraph = nullptr;
    m_cursor = -1;
    ++m_pointsVersion;
    m_x = r.x;
    m_y = r.y;
    m_drawnColor = r.color;
    m_drawnLabels = r.labels;
    m_drawnNames = r.pointNames;
    m_drawnColorText = r.request.colorText;
    keepRows(r);
    m_plot->clearItems();
    if (r.x.empty()) {
        m_plot->legend->setVisible(false);
        m_plot->replot();
        return;
    }
    const bool coloured = r.color.size() == r.x.size();
    float lo = 0, hi = 1;
    if (coloured) {
        lo = *std::min_element(r.color.begin(), r.color.end());
        hi = *std::max_element(r.color.begin(), r.color.end());
    }
    const bool byLabels = r.labels.size() == r.x.size();
    QString colourText;
    if (byLabels) {
        colourText = addCategories(r);
    } else {
        addScatter(r, coloured ? kBins : 1, lo, hi);
        if (coloured) colourText = tr("; colour: score for \"%1\" (%2 .. %3)").arg(QString::fromStdString(r.request.colorText)).arg(lo, 0, 'g', 3).arg(hi, 0, 'g', 3);
    }
    m_plot->legend->setVisible(byLabels);
    if (byLabels) fitLegend();
    // Many points: the graphs keep the data and the legend, and the points are drawn as pixels into
    // the axis rect's background at every replot (paintPoints): QCustomPlot's per-point shapes take
    // ~200 ms a frame at 100,000 points.
    m_raster = r.x.size() > kRasterPoints;
    for (int g = 0; g < m_plot->graphCount(); ++g) m_plot->graph(g)->setVisible(!m_raster);
    m_plot->rescaleAxes();
    const double margin = r.pointNames.empty() ? 1.08 : 1.25;  // room for the heads' names
    m_plot->xAxis->scaleRange(margin);
    m_plot->yAxis->scaleRange(margin);
    if (!r.pointNames.empty()) nameHeads(r);
    labelAxes(r.request);
    m_status->setText(describe(r) + colourText);
    m_plot->replot();
}

QString Projector::describe(const ProjectionResult& r) const {
    const ProjectionRequest& q = r.request;
    const QString what = q.headDirections > 0  ? tr("heads' top %1 principal directions").arg(q.headDirections)
                         : !r.pointNames.empty() ? tr("heads' mean directions")
                         : r.components.empty()  ? tr("whole representation")
                                                 : tr("heads %1").arg(QString::fromStdString(joinNames(r.components)));
    const QString points = r.pointNames.empty() ? tr("images") : q.headDirections > 0 ? tr("points") : tr("heads");
    return tr("%1 %2, %3 of the %4 (%5 s)").arg(r.x.size()).arg(points, QString::fromStdString(q.method), what).arg(r.seconds, 0, 'f', 1);
}

void Projector::keepRows(const ProjectionResult& r) {
    m_paths.clear();
    for (const std::string& p : r.paths) m_paths << QString::fromStdString(p);
    m_pointNames.clear();
    for (const std::string& n : r.pointNames) m_pointNames << QString::fromStdString(n);
    m_colourValues.clear();
    for (std::size_t i = 0; i < r.labels.size(); ++i)
        m_colourValues.push_back(QString("%1: %2").arg(QString::fromStdString(r.request.colorColumn), QString::fromStdString(r.labels[i])));
    for (std::size_t i = 0; i < r.color.size(); ++i)
        m_colourValues.push_back(tr("score for \"%1\": %2").arg(QString::fromStdString(r.request.colorText)).arg(r.color[i], 0, 'g', 3));
}

void Projector::addScatter(const ProjectionResult& r, int requestedBins, float lo, float hi) {
    const int bins = hi > lo ? requestedBins : 1;
    std::vector<QVector<double>> xs(static_cast<std::size_t>(bins)), ys(static_cast<std::size_t>(bins));
    for (std::size_t i = 0; i < r.x.size(); ++i) {
        const auto b = static_cast<std::size_t>(bins == 1 ? 0 : std::min(bins - 1, int((r.color[i] - lo) / (hi - lo) * bins)));
        xs[b] << r.x[i];
        ys[b] << r.y[i];
    }
    const int size = r.x.size() > 20000 ? 2 : r.x.size() > 2000 ? 4 : 6;
    for (int b = 0; b < bins; ++b) {
        QCPGraph* g = m_plot->addGraph();
        g->setLineStyle(QCPGraph::lsNone);
        const QColor c = bins == 1 ? QColor(59, 82, 139) : colormapColor(ColormapKind::Viridis, (b + 0.5) / bins);
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, c, c, size));
        g->setData(xs[std::size_t(b)], ys[std::size_t(b)]);  // (QCPGraph sorts them by x)
    }
}

void Projector::nameHeads(const ProjectionResult& r) {
    if (r.pointNames.size() > 200) return;  // a cloud of labels says nothing
    for (std::size_t i = 0; i < r.pointNames.size(); ++i) {
        auto* label = new QCPItemText(m_plot);
        label->position->setCoords(r.x[i], r.y[i]);
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        label->setPadding(QMargins(4, 0, 0, 2));
        label->setText(QString::fromStdString(r.pointNames[i]));
        label->setClipToAxisRect(true);
    }
}

void Projector::offerColumns(const State& s) {
    QStringList columns;
    for (const std::string& c : s.dataset.summary.labelColumns) columns << QString::fromStdString(c);
    QStringList offered;
    for (int i = 1; i < m_colour->count(); ++i) offered << m_colour->itemData(i).toString();
    if (offered != columns) {
        const QSignalBlocker block(m_colour);
        while (m_colour->count() > 1) m_colour->removeItem(1);
        for (const QString& c : columns) m_colour->addItem(tr("colour: %1").arg(c), c);
    }
    m_colour->setEnabled(s.projection.result.pointNames.empty());  // heads as points: coloured by layer
    const int at = m_colour->findData(s.projection.colourColumn);
    const QSignalBlocker block(m_colour);
    m_colour->setCurrentIndex(std::max(0, at));
}

QString Projector::addCategories(const ProjectionResult& r) {
    static const QColor palette[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
                                       {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    std::map<std::string, int> counts;
    for (const std::string& v : r.labels) ++counts[v];
    std::vector<std::pair<int, std::string>> byCount;
    for (const auto& [v, n] : counts) byCount.emplace_back(-n, v);
    std::sort(byCount.begin(), byCount.end());  // most frequent first, then by name
    const std::size_t shown = std::min<std::size_t>(byCount.size(), byCount.size() > 10 ? 9 : 10);  // the 10th colour for "other"
    std::map<std::string, int> index;
    for (std::size_t k = 0; k < shown; ++k) index[byCount[k].second] = int(k);
    const int groups = int(shown) + (byCount.size() > shown ? 1 : 0);
    std::vector<QVector<double>> xs(static_cast<std::size_t>(groups)), ys(static_cast<std::size_t>(groups));
    for (std::size_t i = 0; i < r.x.size(); ++i) {
        const auto it = index.find(r.labels[i]);
        const std::size_t g = it == index.end() ? std::size_t(groups - 1) : std::size_t(it->second);
        xs[g] << r.x[i];
        ys[g] << r.y[i];
    }
    const int size = r.x.size() > 20000 ? 2 : r.x.size() > 2000 ? 4 : 6;
    // Values that all name colours (the shapes world's "color" column) are drawn in those colours.
    bool named = true;
    for (std::size_t k = 0; k < shown; ++k) named = named && QColor::isValidColorName(QString::fromStdString(byCount[k].second));
    for (int g = 0; g < groups; ++g) {
        QCPGraph* graph = m_plot->addGraph();
        graph->setLineStyle(QCPGraph::lsNone);
        const QColor c = g >= int(shown) ? QColor(190, 190, 190)
                         : named       ? QColor::fromString(QString::fromStdString(byCount[std::size_t(g)].second))
                                       : palette[g];
        graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, c, c, size));
        graph->setData(xs[std::size_t(g)], ys[std::size_t(g)]);
        const QString value = g < int(shown) ? QString::fromStdString(byCount[std::size_t(g)].second) : tr("other");
        graph->setName(QString("%1 (%2)").arg(value.isEmpty() ? tr("no label") : value).arg(xs[std::size_t(g)].size()));
    }
    if (!r.pointNames.empty()) return tr("; colour: layer");
    return tr("; colour: labels column \"%1\" (%2 values)").arg(QString::fromStdString(r.request.colorColumn)).arg(counts.size());
}

void Projector::labelAxes(const ProjectionRequest& q) {
    if (q.method == "text-axes") {
        m_plot->xAxis->setLabel(QString("\"%1\" - \"%2\"").arg(QString::fromStdString(q.axes[0]), QString::fromStdString(q.axes[1])));
        m_plot->yAxis->setLabel(QString("\"%1\" - \"%2\"").arg(QString::fromStdString(q.axes[2]), QString::fromStdString(q.axes[3])));
        m_plot->xAxis->setTickLabels(true);
        m_plot->yAxis->setTickLabels(true);
    } else {
        m_plot->xAxis->setLabel(QString());
        m_plot->yAxis->setLabel(QString());
        m_plot->xAxis->setTickLabels(false);
        m_plot->yAxis->setTickLabels(false);
        // A layout's distances the same both ways: the finer axis widened to the coarser one's scale.
        m_plot->replot();  // (the axis rect's size)
        const double xPerPixel = m_plot->xAxis->range().size() / std::max(1, m_plot->axisRect()->width());
        const double yPerPixel = m_plot->yAxis->range().size() / std::max(1, m_plot->axisRect()->height());
        if (xPerPixel > yPerPixel) m_plot->yAxis->setScaleRatio(m_plot->xAxis, 1.0);
        else m_plot->xAxis->setScaleRatio(m_plot->yAxis, 1.0);
    }
}



int Projector::highlighted() const { return m_pickedGraph ? m_pickedGraph->dataCount() : 0; }

void Projector::ringPicked(const QVector<int>& rows) {
    if (!m_pickedGraph && rows.isEmpty()) return;
    if (!m_pickedGraph) {
        m_pickedGraph = m_plot->addGraph();
        m_pickedGraph->setName(tr("picked"));
        m_pickedGraph->removeFromLegend();
        m_pickedGraph->setLineStyle(QCPGraph::lsNone);
        m_pickedGraph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 1.5), Qt::NoBrush, 9));
    }
    QVector<double> xs, ys;
    for (int row : rows)
        if (row >= 0 && std::size_t(row) < m_x.size()) {
            xs << m_x[std::size_t(row)];
            ys << m_y[std::size_t(row)];
        }
    m_pickedGraph->setData(xs, ys, true);
    ++m_pointsVersion;  // pixel mode frames them in the raster
    m_pickedGraph->setVisible(!m_raster);  // pixel mode: paintPoints frames them
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void Projector::fitLegend() {
    // One column while it fits the plot's height, more columns otherwise (a short dock at 1024 x 768).
    m_plot->replot();  // (the axis rect's and the legend's sizes)
    int entries = 0;  // (itemCount counts the grid's empty cells too)
    for (int i = 0; i < m_plot->legend->itemCount(); ++i) entries += m_plot->legend->item(i) != nullptr;
    const int rowHeight = std::max(1, QFontMetrics(m_plot->legend->font()).height() + 4);
    int fit = std::min(entries, std::max(1, (m_plot->axisRect()->height() - 12) / rowHeight));
    // The estimate first, then a row less while the legend as laid out is still taller than the plot.
    for (;; --fit) {
        m_plot->legend->setFillOrder(QCPLegend::foRowsFirst, false);
        m_plot->legend->setWrap(fit);
        m_plot->legend->setFillOrder(QCPLegend::foRowsFirst, true);
        m_plot->replot();
        if (fit <= 1 || m_plot->legend->outerRect().height() <= m_plot->axisRect()->height() - 4) break;
    }
}

void Projector::showPicked(const State& s) {
    const QVector<int>& rows = s.projection.picked;
    m_pickedRows = rows;
    ringPicked(rows);
    m_picked->clear();
    m_picked->setVisible(!rows.isEmpty() && !m_paths.isEmpty());  // picked heads show as the grid's selection
    for (int row : rows) {
        if (row < 0 || row >= m_paths.size()) continue;
        const QString path = m_paths[row];
        auto* item = new QListWidgetItem(QFileInfo(path).fileName(), m_picked);
        item->setData(Qt::UserRole, path);
        item->setToolTip(path);
        const QImage img = m_thumbs->get(path);
        item->setIcon(img.isNull() ? thumbnailPlaceholder(m_picked->iconSize()) : QPixmap::fromImage(img));
        if (m_picked->count() >= 200) break;  // a strip, not a gallery of thousands
    }
    if (!rows.isEmpty()) m_status->setText(m_status->text().section(" | ", 0, 0) + tr(" | %1 picked").arg(rows.size()));
}

}  // namespace vitscope::ui
