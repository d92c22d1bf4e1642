#include "figure_export.h"

#include "io/npy.h"

#include <qcustomplot.h>

#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QPainter>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QWidget>

#include <cmath>
#include <cstring>
#include <exception>

namespace vitscope::ui {

FigurePainter widgetPainter(QWidget* w) {
    if (auto* plot = qobject_cast<QCustomPlot*>(w)) return plotPainter(plot);
    return [w](QPainter& p, const QRect& r) {
        p.save();
        p.translate(r.topLeft());
        const double sx = r.width() / double(std::max(1, w->width())), sy = r.height() / double(std::max(1, w->height()));
        p.scale(sx, sy);
        w->render(&p, QPoint(), QRegion(), QWidget::DrawChildren);
        p.restore();
    };
}

FigurePainter plotPainter(QCustomPlot* plot) {
    return [plot](QPainter& p, const QRect& r) {
        // QCustomPlot lays itself out for the target size and draws vector primitives. exportFigure
        // always paints through a QCPPainter, so the cast is to the painter's real type.
        p.save();
        p.translate(r.topLeft());
        plot->toPainter(static_cast<QCPPainter*>(&p), r.width(), r.height());
        p.restore();
    };
}

QString writeRecord(const QString& exportPath, QJsonObject record) {
    record["file"] = QFileInfo(exportPath).fileName();
    record["written"] = QDateTime::currentDateTimeUtc().toString(Qt::ISODate);
    record["application"] = "vitscope 0.1.0";
    QSaveFile f(exportPath + ".json");
    if (!f.open(QIODevice::WriteOnly)) return QString("%1: cannot write the record (%2)").arg(exportPath + ".json", f.errorString());
    f.write(QJsonDocument(record).toJson());
    if (!f.commit()) return QString("%1: cannot write the record (%2)").arg(exportPath + ".json", f.errorString());
    return {};
}

namespace {
// The figure as a PNG of `dpi` (24..1200); empty on success, else a one-line error.
QString writePng(const FigurePainter& paint, const QSize& size, const QString& path, int dpi) {
    if (dpi < 24 || dpi > 1200) return QString("%1: DPI %2 is outside 24..1200").arg(path).arg(dpi);
    const QRect rect(QPoint(0, 0), size);
    const double scale = dpi / 96.0;
    QImage img(qRound(size.width() * scale), qRound(size.height() * scale), QImage::Format_ARGB32);
    img.fill(Qt::white);
    // Painted at the screen's 96 dpi metrics and scaled once by dpi / 96: with the image's own
    // dpi during painting, point-sized fonts were scaled a second time (~3x too large at 300).
    img.setDotsPerMeterX(qRound(96 / 0.0254));
    img.setDotsPerMeterY(qRound(96 / 0.0254));
    {
        QCPPainter p(&img);
        p.setRenderHint(QPainter::Antialiasing);
        p.setRenderHint(QPainter::TextAntialiasing);
        p.scale(scale, scale);
        paint(p, rect);
    }
    img.setDotsPerMeterX(qRound(dpi / 0.0254));  // the file says its resolution
    img.setDotsPerMeterY(qRound(dpi / 0.0254));
    if (!img.save(path, "PNG")) return QString("%1: cannot write the PNG").arg(path);
    return {};
}

QString writeSvg(const FigurePainter& paint, const QSize& size, const QString& path, const QString& title) {
    const QRect rect(QPoint(0, 0), size);
    QSvgGenerator gen;
    gen.setFileName(path);
    gen.setSize(size);
    gen.setViewBox(rect);
    gen.setResolution(96);
    gen.setTitle(title.isEmpty() ? "vitscope figure" : title);
    gen.setDescription("Exported by vitscope");
    QCPPainter p;
    if (!p.begin(&gen)) return QString("%1: cannot write the SVG").arg(path);
    p.setMode(QCPPainter::pmVectorized);
    p.setMode(QCPPainter::pmNoCaching);
    paint(p, rect);
    p.end();
    return {};
}

QString writePdf(const FigurePainter& paint, const QSize& size, const QString& path, const QString& title) {
    const QRect rect(QPoint(0, 0), size);
    QPdfWriter pdf(path);
    pdf.setResolution(96);
    pdf.setPageSize(QPageSize(QSizeF(size.width() / 96.0 * 72.0, size.height() / 96.0 * 72.0), QPageSize::Point));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    pdf.setTitle(title.isEmpty() ? "vitscope figure" : title);
    pdf.setCreator("vitscope");
    QCPPainter p;
    if (!p.begin(&pdf)) return QString("%1: cannot write the PDF").arg(path);
    // Pixel images (the model's crop, the maps) go in losslessly (Qt's default is JPEG).
    p.setRenderHint(QPainter::LosslessImageRendering, true);
    p.setMode(QCPPainter::pmVectorized);
    p.setMode(QCPPainter::pmNoCaching);
    paint(p, rect);
    p.end();
    return {};
}
}  // namespace

QString exportFigure(const FigurePainter& paint, const QSize& size, const QString& path, int dpi, QJsonObject record, const QString& title) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (size.isEmpty()) return QString("%1: nothing to export (empty view)").arg(path);
    record["format"] = suffix;
    record["width_px_at_96dpi"] = size.width();
    record["height_px_at_96dpi"] = size.height();
    QString error;
    if (suffix == "png") {
        error = writePng(paint, size, path, dpi);
        record["dpi"] = dpi;
    } else if (suffix == "svg") {
        error = writeSvg(paint, size, path, title);
    } else if (suffix == "pdf") {
        error = writePdf(paint, size, path, title);
    } else {
        return QString("%1: unknown figure format '%2' (png, svg or pdf)").arg(path, suffix);
    }
    if (!error.isEmpty()) return error;
    if (!QFileInfo(path).exists() || QFileInfo(path).size() == 0) return QString("%1: the figure was not written").arg(path);
    return writeRecord(path, record);
}

namespace {
// The numbers as a float32 [rows, cols] array for .npy.
NpyArray npyMatrix(const std::vector<float>& values, int rows, int cols) {
    NpyArray a;
    a.dtype = DType::F32;
    a.shape = {rows, cols};
    a.bytes.resize(values.size() * sizeof(float));
    std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
    return a;
}

QByteArray csvText(const std::vector<float>& values, int rows, int cols, const QStringList& columnNames,
                   const QJsonArray& rowNames) {
    QByteArray out;
    const bool named = rowNames.size() == rows;
    auto quoted = [](QString t) {
        if (!t.contains(',') && !t.contains('"') && !t.contains('\n')) return t;
        return "\"" + t.replace("\"", "\"\"") + "\"";
    };
    if (columnNames.size() == cols) out += ((named ? QStringList{"name"} : QStringList{}) + columnNames).join(',').toUtf8() + "\n";
    for (int r = 0; r < rows; ++r) {
        QStringList cells;
        if (named) cells << quoted(rowNames[r].toString());
        for (int c = 0; c < cols; ++c) {
            const float v = values[std::size_t(r) * cols + c];
            cells << (std::isnan(v) ? QString() : QString::number(v, 'g', 9));
        }
        out += cells.join(',').toUtf8() + "\n";
    }
    return out;
}

QByteArray jsonText(const std::vector<float>& values, int rows, int cols, const QStringList& columnNames,
                    const QJsonObject& record) {
    QJsonArray table;
    for (int r = 0; r < rows; ++r) {
        QJsonArray row;
        for (int c = 0; c < cols; ++c) {
            const float v = values[std::size_t(r) * cols + c];
            row.append(std::isnan(v) ? QJsonValue() : QJsonValue(double(v)));
        }
        table.append(row);
    }
    QJsonObject o;
    o["shape"] = QJsonArray{rows, cols};
    if (columnNames.size() == cols) o["columns"] = QJsonArray::fromStringList(columnNames);
    if (record.contains("row_names")) o["rows"] = record["row_names"];
    o["values"] = table;
    return QJsonDocument(o).toJson();
}
}  // namespace

QString exportMatrix(const std::vector<float>& values, int rows, int cols, const QString& path, const QStringList& columnNames, QJsonObject record) {
    if (rows <= 0 || cols <= 0 || values.size() != std::size_t(rows) * std::size_t(cols)) return QString("%1: no numbers to export").arg(path);
    const QString suffix = QFileInfo(path).suffix().toLower();
    record["format"] = suffix;
    record["shape"] = QJsonArray{rows, cols};
    if (suffix == "npy") {
        const NpyArray a = npyMatrix(values, rows, cols);
        try {
            writeNpy(path.toStdString(), a);
        } catch (const std::exception& e) {
            return QString::fromStdString(e.what());
        }
        return writeRecord(path, record);
    }
    QByteArray out;
    if (suffix == "csv") {
        // Rows named in the record ("mlp.3", "layer 2 (stage 1)") get their name as the first
        // column; a NaN (no value: a term's head, a block's missing head) is an empty cell.
        const QJsonArray rowNames = record.value("row_names").toArray();
        out = csvText(values, rows, cols, columnNames, rowNames);
    } else if (suffix == "json") {
        out = jsonText(values, rows, cols, columnNames, record);
    } else {
        return QString("%1: unknown data format '%2' (csv, json or npy)").arg(path, suffix);
    }
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly) || f.write(out) != out.size() || !f.commit()) return QString("%1: cannot write (%2)").arg(path, f.errorString());
    return writeRecord(path, record);
}

}  // namespace vitscope::ui
