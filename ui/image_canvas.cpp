#include "image_canvas.h"

#include "session.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QHelpEvent>
#include <QMimeData>
#include <QPaintEngine>
#include <QPainter>
#include <QToolTip>
#include <QUrl>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace vitscope::ui {

ImageCanvas::ImageCanvas(QWidget* parent) : QWidget(parent) {
    setAcceptDrops(true);
    setMinimumSize(240, 200);
    setAccessibleName("Image canvas");
    m_message = tr("Drop an image here, or use File > Open image");
}

void ImageCanvas::setImage(const QImage& crop, const QString& path) {
    m_crop = crop;
    m_path = path;
    m_message.clear();
    clearMap();
}

void ImageCanvas::setMap(const MapLayer& map) {
    m_map = map;
    m_message.clear();  // an earlier error no longer applies to what is shown
    update();
}

void ImageCanvas::setSmallMultiples(const std::vector<MapLayer>& maps) {
    m_multiples = maps;
    update();
}

void ImageCanvas::clearMap() {
    m_map = {};
    m_multiples.clear();
    update();
}

void ImageCanvas::setOpacity(double opacity) {
    m_opacity = std::clamp(opacity, 0.0, 1.0);
    update();
}

void ImageCanvas::setColormap(ColormapKind kind) {
    m_colormap = kind;
    update();
}

void ImageCanvas::setFontScale(double scale) {
    m_fontScale = scale;
    update();
}

void ImageCanvas::setPatchGrid(int rows, int cols) {
    m_gridRows = rows;
    m_gridCols = cols;
    update();
}

void ImageCanvas::setMessage(const QString& text) {
    m_message = text;
    update();
}

void ImageCanvas::drawMap(QPainter& p, const QRect& box, const MapLayer& m, bool withBar, int captionLines) const {
    // No room is kept for the colorbar of a plain image, except where the picture must keep its
    // place and size whether a map is on it or not (classroom mode's steps).
    withBar = withBar && (!m.values.empty() || m_keepBarRoom);
    const int barW = withBar ? std::max(12, box.width() / 28) : 0;
    const int labelW = withBar ? p.fontMetrics().horizontalAdvance("-0.000e+00") : 0;
    const int lines = captionLines > 0 ? captionLines : int(m.caption.count('\n')) + 1;
    const int captionH = m.caption.isEmpty() ? 0 : lines * p.fontMetrics().height() + 4;
    const int besideSide = std::min(box.width() - barW - labelW - 12, box.height() - captionH);
    // Classroom mode: the colorbar goes below the picture where that leaves the picture larger
    // (a projector's panel is taller than wide once the grid and the ledger have their room).
    const int belowSide = std::min(box.width(), box.height() - captionH - barW - p.fontMetrics().height() - 10);
    const bool below = withBar && m_keepBarRoom && belowSide > besideSide;
    const int side = std::max(8, below ? belowSide : besideSide);
    const QRect img(box.left(), box.top() + captionH, side, side);
    if (p.device() == this) m_shownPicture = img;
    p.setPen(palette().text().color());  // captions in the text's colour (a previous frame left a pale pen)
    if (!m.caption.isEmpty()) {
        // Too long for the box (classroom type, a narrow panel): smaller type down to the
        // unscaled size first, then elided in the middle (its end is the text the map is for).
        p.save();
        QFont f = p.font();
        const int wide = p.fontMetrics().horizontalAdvance(m.caption);
        if (wide > box.width() && m_fontScale > 1.0)
            f.setPointSizeF(std::max(f.pointSizeF() / m_fontScale, f.pointSizeF() * box.width() / wide));
        p.setFont(f);
        QStringList shown;
        for (const QString& line : m.caption.split('\n'))
            shown << p.fontMetrics().elidedText(line, Qt::ElideMiddle, box.width());
        p.drawText(QRect(box.left(), box.top(), box.width(), captionH), Qt::AlignLeft | Qt::AlignVCenter,
                   shown.join('\n'));
        p.restore();
    }
    if (!m_crop.isNull()) p.drawImage(img, m_crop);
    if (!m.values.empty()) {
        const QImage overlay = colorize(m.values, m.rows, m.cols, m_colormap, m.lo, m.hi, static_cast<int>(std::lround(255 * m_opacity)));
        p.save();
        // Smooth on screen; in a PDF or SVG the map's pixels stay pixels (the reader interpolates
        // nothing), as an image in a paper's figure.
        const QPaintEngine* engine = p.paintEngine();
        const bool vector = engine && (engine->type() == QPaintEngine::Pdf || engine->type() == QPaintEngine::SVG);
        p.setRenderHint(QPainter::SmoothPixmapTransform, !vector);
        p.drawImage(img, overlay);
        p.restore();
        outlineMarked(p, img, m);
    }
    if (m_gridRows > 0 && m_gridCols > 0) {
        p.setPen(QPen(QColor(255, 255, 255, 200), 1));
        for (int r = 1; r < m_gridRows; ++r) p.drawLine(img.left(), img.top() + r * img.height() / m_gridRows, img.right(), img.top() + r * img.height() / m_gridRows);
        for (int c = 1; c < m_gridCols; ++c) p.drawLine(img.left() + c * img.width() / m_gridCols, img.top(), img.left() + c * img.width() / m_gridCols, img.bottom());
    }
    p.setPen(palette().mid().color());
    p.drawRect(img.adjusted(0, 0, -1, -1));
    if (!withBar || m.values.empty()) return;
    const bool fixed = m.lo < m.hi;
    const float lo = fixed ? m.lo : *std::min_element(m.values.begin(), m.values.end());
    const float hi = fixed ? m.hi : *std::max_element(m.values.begin(), m.values.end());
    if (below) paintColorbarBelow(p, QRect(img.left(), img.bottom() + 6, img.width(), barW), lo, hi);
    else paintColorbar(p, QRect(img.right() + 8, img.top(), barW, img.height()), labelW, lo, hi);
}

void ImageCanvas::outlineMarked(QPainter& p, const QRect& img, const MapLayer& m) {
    if (!std::isfinite(m.mark) || m.rows < 1 || m.cols < 1 ||
        m.values.size() != std::size_t(m.rows) * std::size_t(m.cols))
        return;
    p.save();
    p.setPen(QPen(QColor(230, 20, 20), 2));
    p.setBrush(Qt::NoBrush);
    for (int r = 0; r < m.rows; ++r)
        for (int c = 0; c < m.cols; ++c)
            if (m.values[std::size_t(r) * std::size_t(m.cols) + std::size_t(c)] > m.mark)
                p.drawRect(QRect(QPoint(img.left() + c * img.width() / m.cols, img.top() + r * img.height() / m.rows),
                                 QPoint(img.left() + (c + 1) * img.width() / m.cols - 1,
                                        img.top() + (r + 1) * img.height() / m.rows - 1))
                               .adjusted(1, 1, -1, -1));
    p.restore();
}

void ImageCanvas::paintMark(QPainter& p, const QRect& bar, int labelW, const MapLayer& m) {
    if (!(m.mark >= m.lo && m.mark <= m.hi) || m.lo >= m.hi) return;  // the mark across the bar, its value beside it
    const int y = bar.bottom() - int(std::lround((m.mark - m.lo) / (m.hi - m.lo) * bar.height()));
    p.save();
    p.setPen(QPen(QColor(230, 20, 20), 2));
    p.drawLine(bar.left() - 3, y, bar.right() + 3, y);
    const int fh = p.fontMetrics().height();
    if (y - fh / 2 > bar.top() + fh && y + fh / 2 < bar.bottom() - fh)  // (not over the ends' labels)
        p.drawText(QRect(bar.right() + 4, y - fh / 2, labelW, fh), Qt::AlignLeft | Qt::AlignVCenter,
                   QString::number(m.mark, 'g', 3));
    p.restore();
}

void ImageCanvas::paintColorbarBelow(QPainter& p, const QRect& bar, float lo, float hi) const {
    // Low values at the left end, high at the right, each end's value under it.
    QImage ramp(256, 1, QImage::Format_RGB32);
    for (int x = 0; x < 256; ++x) ramp.setPixel(x, 0, colormapColor(m_colormap, x / 255.0).rgb());
    p.save();
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);
    p.drawImage(bar, ramp);
    p.restore();
    p.setPen(palette().text().color());
    p.drawRect(bar.adjusted(0, 0, -1, -1));
    const QRect labels(bar.left(), bar.bottom() + 2, bar.width(), p.fontMetrics().height());
    p.drawText(labels, Qt::AlignLeft | Qt::AlignTop, QString::number(lo, 'g', 3));
    p.drawText(labels, Qt::AlignRight | Qt::AlignTop, QString::number(hi, 'g', 3));
}

void ImageCanvas::paintColorbar(QPainter& p, const QRect& bar, int labelW, float lo, float hi) const {
    // One 1 x 256 image of the colormap stretched over the bar: no seams between rows in vector
    // exports (a line per row left hairline gaps in SVG / PDF viewers).
    QImage ramp(1, 256, QImage::Format_RGB32);
    for (int y = 0; y < 256; ++y) ramp.setPixel(0, y, colormapColor(m_colormap, 1.0 - y / 255.0).rgb());
    p.save();
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);
    p.drawImage(bar, ramp);
    p.restore();
    p.setPen(palette().text().color());
    p.drawRect(bar.adjusted(0, 0, -1, -1));
    const int fh = p.fontMetrics().height();
    p.drawText(QRect(bar.right() + 4, bar.top(), labelW, fh), Qt::AlignLeft | Qt::AlignTop, QString::number(hi, 'g', 3));
    p.drawText(QRect(bar.right() + 4, bar.bottom() - fh, labelW, fh), Qt::AlignLeft | Qt::AlignBottom, QString::number(lo, 'g', 3));
}

void ImageCanvas::paintTo(QPainter& p, const QRect& target) const {
    p.save();
    QFont f = p.font();
    f.setPointSizeF(std::max(6.0, f.pointSizeF() * m_fontScale));
    p.setFont(f);
    p.fillRect(target, Qt::white);
    p.setPen(Qt::black);
    if (m_crop.isNull()) {
        p.drawText(target, Qt::AlignCenter | Qt::TextWordWrap, m_message);
        p.restore();
        return;
    }
    // A message (an error about what is shown) gets its own strip at the bottom, never over the
    // image or the colorbar.
    int messageH = 0;
    if (!m_message.isEmpty()) {
        const QRect need = p.fontMetrics().boundingRect(QRect(0, 0, target.width() - 16, target.height() / 3),
                                                        Qt::AlignLeft | Qt::TextWordWrap, m_message);
        messageH = std::min(target.height() / 3, need.height() + 10);
    }
    const QRect body = target.adjusted(0, 0, 0, -messageH);
    // Main view on top; small multiples in rows below when present.
    const int rowsH = multiplesHeight(body.height(), body.width());
    const QRect main(body.left() + 6, body.top() + 6, body.width() - 12, body.height() - rowsH - 12);
    MapLayer shown = m_mapShown ? m_map : MapLayer{};
    if (shown.caption.isEmpty()) shown.caption = QString(m_path).section('/', -1);
    drawMap(p, main, shown, m_showBar);
    if (p.device() == this) {
        m_shownMultiples.clear();
        m_shownCaptions.clear();
        m_shownTips.clear();
    }
    if (rowsH > 0) paintMultiples(p, body, rowsH);
    if (messageH > 0) {
        const QRect strip(target.left(), target.bottom() - messageH + 1, target.width(), messageH);
        p.fillRect(strip, QColor(253, 236, 234));
        p.setPen(QColor(170, 30, 30));
        p.drawText(strip.adjusted(8, 4, -8, -4), Qt::AlignVCenter | Qt::AlignLeft | Qt::TextWordWrap, m_message);
    }
    p.restore();
}

int ImageCanvas::multiplesHeight(int bodyH, int width) const {
    if (!m_mapShown || m_multiples.empty()) return 0;
    int rows = 1;
    std::map<int, int> perRow;
    for (const MapLayer& m : m_multiples) rows = std::max(rows, 1 + m.row), ++perRow[m.row];
    int n = 1;
    for (const auto& [row, count] : perRow) n = std::max(n, count);
    return rows == 1 ? std::min(bodyH / 3, width / n + 20) : std::min(bodyH / 2, rows * (width / n + 20));
}

// The caption of a small multiple `width` pixels wide: its own where it fits, else the first of its
// shorter forms whose every line fits, else the shortest.
static QString fittedCaption(const QFontMetrics& fm, const MapLayer& m, int width) {
    if (fm.horizontalAdvance(m.caption) <= width || m.shortCaptions.isEmpty()) return m.caption;
    for (const QString& form : m.shortCaptions) {
        const QStringList lines = form.split('\n');
        if (std::all_of(lines.begin(), lines.end(), [&](const QString& l) { return fm.horizontalAdvance(l) <= width; }))
            return form;
    }
    return m.shortCaptions.last();
}

void ImageCanvas::paintMultiples(QPainter& p, const QRect& body, int height) const {
    // Rows of maps on their shared scale, each row with one colorbar at its end (when they share one).
    int rows = 1;
    for (const MapLayer& m : m_multiples) rows = std::max(rows, 1 + m.row);
    const MapLayer& first = m_multiples.front();
    const bool shared =
        first.lo < first.hi && std::all_of(m_multiples.begin(), m_multiples.end(), [&](const MapLayer& m) {
            return m.lo == first.lo && m.hi == first.hi && !m.values.empty();
        });
    const int barW = shared ? 12 : 0, labelW = shared ? p.fontMetrics().horizontalAdvance("-0.000e+00") : 0;
    const int rowH = height / rows;
    for (int row = 0; row < rows; ++row) {
        std::vector<MapLayer> maps;
        for (const MapLayer& m : m_multiples)
            if (m.row == row) maps.push_back(m);
        if (maps.empty()) continue;
        const int n = static_cast<int>(maps.size());
        // Maps side by side (packed, not spread over the width), the colorbar right after them.
        const int widest = (body.width() - 12 - (shared ? barW + labelW + 12 : 0)) / n;
        int lines = 1;
        QStringList whole;
        for (const MapLayer& m : maps) whole << m.caption;
        // The captions fitted to the maps' width, which their lines' height narrows: until it holds.
        int captionH = 0, side = 0;
        for (int pass = 0, before = -1; pass < 4 && lines != before; ++pass) {
            before = lines;
            captionH = lines * p.fontMetrics().height() + 4;  // as drawMap lays a map out
            side = std::max(8, std::min(widest - 12, rowH - 6 - captionH));
            lines = 1;
            for (std::size_t i = 0; i < maps.size(); ++i) {
                maps[i].caption = whole[int(i)];
                maps[i].caption = fittedCaption(p.fontMetrics(), maps[i], side + 6);
                lines = std::max(lines, int(maps[i].caption.count('\n')) + 1);
            }
        }
        captionH = lines * p.fontMetrics().height() + 4;
        side = std::max(8, std::min(widest - 12, rowH - 6 - captionH));
        const int slot = side + 12;
        const int top = body.bottom() - height + row * rowH;
        for (int i = 0; i < n; ++i) {
            const QRect box(body.left() + 6 + i * slot, top, slot - 6, rowH - 6);
            drawMap(p, box, maps[std::size_t(i)], false, lines);
            if (p.device() == this) {
                m_shownMultiples.push_back(box);
                m_shownCaptions << maps[std::size_t(i)].caption;
                m_shownTips << whole[i];
            }
        }
        if (shared) {
            const QRect bar(body.left() + 6 + n * slot - 2, top + captionH, barW, side);
            paintColorbar(p, bar, labelW, first.lo, first.hi);
            paintMark(p, bar, labelW, first);
        }
    }
}

bool ImageCanvas::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        const QPoint at = static_cast<QHelpEvent*>(e)->pos();
        for (std::size_t i = 0; i < m_shownMultiples.size() && int(i) < m_shownTips.size(); ++i)
            if (m_shownMultiples[i].contains(at)) {
                QToolTip::showText(static_cast<QHelpEvent*>(e)->globalPos(), m_shownTips[int(i)], this);
                return true;
            }
        QToolTip::hideText();
        return true;
    }
    return QWidget::event(e);
}

QSize ImageCanvas::figureSize(int height) const {
    // paintTo's and drawMap's geometry run backwards from the height.
    QFont f = font();
    f.setPointSizeF(std::max(6.0, f.pointSizeF() * m_fontScale));
    const QFontMetrics fm(f);
    const bool withBar = m_showBar && !m_map.values.empty();
    const int labelW = withBar ? fm.horizontalAdvance("-0.000e+00") : 0;
    const int captionH = fm.height() + 4;  // a caption is always drawn (the file name without a map)
    const int n = static_cast<int>(m_multiples.size());
    int width = height;
    for (int pass = 0; pass < 6; ++pass) {
        int messageH = 0;
        if (!m_message.isEmpty())
            messageH = std::min(height / 3, fm.boundingRect(QRect(0, 0, std::max(1, width - 16), height / 3), Qt::AlignLeft | Qt::TextWordWrap, m_message).height() + 10);
        const int bodyH = height - messageH;
        const int rowH = n == 0 ? 0 : multiplesHeight(bodyH, width);
        const int side = std::max(8, bodyH - rowH - 12 - captionH);
        int boxW = side + labelW + 12;
        for (int i = 0; i < 3 && withBar; ++i) boxW = side + std::max(12, boxW / 28) + labelW + 12;
        width = boxW + 12 + 2;
    }
    return {width, height};
}

void ImageCanvas::setInputNote(const QString& note) {
    m_inputNote = note;
    update();
}

void ImageCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    if (m_inputNote.isEmpty() || m_crop.isNull()) {
        paintTo(p, rect());
        return;
    }
    // The note in a strip of its own under the view (screen only; figures show the view alone).
    const QRect need = p.fontMetrics().boundingRect(QRect(0, 0, width() - 16, height() / 4), Qt::AlignLeft | Qt::TextWordWrap, m_inputNote);
    const int noteH = std::min(height() / 4, need.height() + 8);
    paintTo(p, rect().adjusted(0, 0, 0, -noteH));
    const QRect strip(0, height() - noteH, width(), noteH);
    p.fillRect(strip, Qt::white);
    p.setPen(palette().placeholderText().color());
    p.drawText(strip.adjusted(8, 2, -8, -2), Qt::AlignLeft | Qt::AlignVCenter | Qt::TextWordWrap, m_inputNote);
}

void ImageCanvas::dragEnterEvent(QDragEnterEvent* e) {
    if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void ImageCanvas::dropEvent(QDropEvent* e) {
    const QList<QUrl> urls = e->mimeData()->urls();
    if (urls.isEmpty()) return;
    e->acceptProposedAction();
    emit fileDropped(urls.first().toLocalFile());
}


namespace {

// What of a map's settings a reader needs to know (the references' options it was made with).
QString methodSettings(const State& s) {
    const HeatmapResult& r = s.map.maps.front();
    const MapOptions& o = s.map.options;
    QString out;
    if (r.method == "chefer") {
        const int start = o.cheferStartLayer.value_or(s.model.cheferDefaultStartLayer);
        out += start < 0 ? QObject::tr(" (last layer)") : start == 0 ? QObject::tr(" (every layer)") : QObject::tr(" (from layer %1)").arg(start);
    } else if (r.method == "gradcam") {
        const bool labels = s.map.referenceCount > 0 && o.gradcamTarget != "logit";
        out += labels ? QObject::tr(" (probability over %1 reference texts)").arg(s.map.referenceCount) : QObject::tr(" (the text's logit)");
    } else if (r.method == "decomposition" && s.model.poolHeads > 0 && s.map.restrictedTo.isEmpty()) {
        out += o.siglipMap == "encoder" ? QObject::tr(" (encoder heads through the frozen pool)") : QObject::tr(" (pooling heads' per-token terms)");
    }
    if (o.inputSize > 0 && (r.method == "gradcam" || r.method == "chefer" || r.method == "legrad")) out += QObject::tr(" at %1 px").arg(o.inputSize);
    return out;
}

// The main map's caption: what it is, for which text, minus what, through which heads.
QString mapCaption(const State& s) {
    const HeatmapResult& r = s.map.maps.front();
    const QString text = QString::fromStdString(r.text);
    QString caption = r.method == "decomposition" ? QObject::tr("decomposition (score contributions): %1").arg(text)
                      : r.method == "neuron"      ? QObject::tr("%1: activation at each patch").arg(text)
                                                  : QString("%1: %2").arg(QString::fromStdString(r.method), text);
    // Only the decomposition and CLIP Surgery subtract the reference texts (Grad-CAM takes them as
    // its label list, said with its settings; the others read no text list).
    if ((r.method == "decomposition" || r.method == "surgery") && s.map.referenceCount > 0)
        caption += QObject::tr(" - mean of %1 reference texts (%2)").arg(s.map.referenceCount).arg(QFileInfo(s.map.referenceFile).fileName());
    caption += methodSettings(s);
    if (!s.map.restrictedTo.isEmpty()) {
        QStringList names;
        for (const HeadId& h : s.map.restrictedTo) names << h.name();
        caption += " [" + names.join(", ") + "]";
    }
    return caption;
}

// Per-head maps on one colour scale (the heads' contributions compare directly), one colorbar.
// With test-time registers: the model's map and the intervened model's side by side, on one scale.
std::vector<MapLayer> mapMultiples(const State& s) {
    std::vector<MapLayer> multiples;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::size_t i = s.map.withRegisters ? 0 : 1; i < s.map.maps.size(); ++i) {
        const FloatGrid& g = s.map.maps[i].patches;
        const QString name = s.map.withRegisters ? (i == 0 ? QObject::tr("the model") : QObject::tr("with register"))
                             : i - 1 < std::size_t(s.map.heads.size())
                                 ? QObject::tr("head %1").arg(s.map.heads[int(i - 1)].name())
                                 : QString();
        multiples.push_back({name, g.values, g.rows, g.cols});
        lo = std::min(lo, g.minValue());
        hi = std::max(hi, g.maxValue());
    }
    for (MapLayer& m : multiples)
        if (lo < hi) m.lo = lo, m.hi = hi;
    return multiples;
}

// View > Token norms of every block, under a token-norm map of the same image.
bool normBlocksShown(const State& s) {
    const NeuronToolsState& t = s.neuronTools;
    return t.normsPerBlock && t.normBlocks && t.normBlocksImage == s.imagePath() && !s.map.empty() &&
           s.map.maps.front().method == "token-norms";
}

// ... and with test-time registers beside: the intervened model's blocks in a second row.
bool registerBlocksShown(const State& s) {
    return normBlocksShown(s) && s.map.withRegisters && s.neuronTools.normBlocksRegisters;
}

// Every block's output token norms on one scale (0 to the largest norm of any block of any row), each
// captioned "bL max / median" (shorter where a map is narrow: two lines, then rounded, then "bL"),
// the outlier threshold marked; a second row for the test-time-register model ("bL reg ...").
std::vector<MapLayer> normBlockLayers(const State& s) {
    std::vector<const TokenNormBlocks*> rows{&*s.neuronTools.normBlocks};
    if (registerBlocksShown(s)) rows.push_back(&*s.neuronTools.normBlocksRegisters);
    float hi = 0;
    for (const TokenNormBlocks* b : rows)
        for (const HeatmapResult& r : b->maps) hi = std::max(hi, r.patches.maxValue());
    std::vector<MapLayer> out;
    for (std::size_t row = 0; row < rows.size(); ++row) {
        const TokenNormBlocks& b = *rows[row];
        for (std::size_t i = 0; i < b.maps.size(); ++i) {
            const FloatGrid& g = b.maps[i].patches;
            const QString name = row == 0 ? QString("b%1").arg(i) : QObject::tr("b%1 reg").arg(i);
            const QString numbers = QString("%1 / %2").arg(b.maxNorm[i], 0, 'f', 1).arg(b.medianNorm[i], 0, 'f', 1);
            MapLayer m{name + " " + numbers, g.values, g.rows, g.cols, 0.0f, hi};
            m.shortCaptions =
                QStringList{name + "\n" + numbers,
                            name + "\n" + QString("%1/%2").arg(b.maxNorm[i], 0, 'g', 2).arg(b.medianNorm[i], 0, 'g', 2),
                            row == 0 ? name : QString("b%1r").arg(i)};
            m.mark = static_cast<float>(b.threshold);
            m.row = int(row);
            out.push_back(std::move(m));
        }
    }
    return out;
}

}  // namespace

void ImageCanvas::render(const State& s, QFlags<Aspect> changed) {
    if (changed & (Aspect::Image | Aspect::Model)) {
        if (!s.hasImage()) {
            m_crop = QImage();
            m_path.clear();
            clearMap();
            setInputNote({});
            setMessage(s.modelLoading.isEmpty() && s.hasModel() ? tr("Drop an image here, or use File > Open image") : tr("Opening the model..."));
        } else {
            const RgbImage& c = s.image.crop;
            setImage(QImage(c.rgb.data(), c.width, c.height, 3 * c.width, QImage::Format_RGB888).copy(), s.imagePath());
            // Say what of the image the model sees when it is not all of it (or when it is squashed).
            const QString note = QString::fromStdString(s.image.inputNote);
            setInputNote(note.isEmpty()          ? QString()
                         : s.image.wholeImage    ? tr("The model sees %1 (View > Whole image).").arg(note)
                                                 : tr("The model sees %1; View > Whole image analyses all of it.").arg(note));
        }
    }
    if (changed & (Aspect::Map | Aspect::Image | Aspect::Model)) {
        if (s.map.empty() || !s.hasImage()) {
            clearMap();
        } else {
            const HeatmapResult& r = s.map.maps.front();
            QString caption = mapCaption(s);
            if (registerBlocksShown(s))
                caption += tr("; below, every block of the model and (second row) of the test-time-register model on "
                              "one scale, "
                              "captioned max / median (outlined: norm > %1)")
                               .arg(s.neuronTools.normBlocks->threshold, 0, 'g', 3);
            else if (normBlocksShown(s))
                caption += tr("; below, every block on one scale, captioned max / median (outlined: norm > %1)")
                               .arg(s.neuronTools.normBlocks->threshold, 0, 'g', 3);
            setMap({caption, r.pixels.values, r.pixels.rows, r.pixels.cols});
            setSmallMultiples(normBlocksShown(s) ? normBlockLayers(s) : mapMultiples(s));
        }
    }
    if ((changed & Aspect::Message) && s.message.error && s.message.aboutCanvas) setMessage(s.message.text);
}

void ImageCanvas::dismissMessage() { setMessage({}); }

void ImageCanvas::setColorbarRoomKept(bool kept) {
    m_keepBarRoom = kept;
    update();
}

void ImageCanvas::setMapShown(bool shown) {
    m_mapShown = shown;
    update();
}

void ImageCanvas::paintPanel(QPainter& p, const QRect& target, const QImage& crop, const MapLayer& map, double opacity,
                             ColormapKind colormap, bool colorbar) {
    ImageCanvas c;
    c.m_crop = crop;
    c.m_map = map;
    c.m_message.clear();
    c.m_opacity = opacity;
    c.m_colormap = colormap;
    c.m_showBar = colorbar;
    c.paintTo(p, target);
}

}  // namespace vitscope::ui
