#pragma once
// Figure export: any view to PNG (chosen DPI), SVG or PDF, drawn by the same painting code as the
// screen (vector text, rectangles and plots in SVG / PDF); the numbers behind it as CSV / JSON /
// .npy; and beside every export a reproducibility record FILE.json (model hash, method,
// settings, time).
#include <QJsonObject>
#include <QString>

#include <functional>
#include <vector>

class QCustomPlot;
class QPainter;
class QWidget;

namespace vitscope::ui {

// Paints a figure of `size` logical pixels (at 96 dpi). exportFigure passes a QCPPainter, which
// plotPainter needs; the others take any QPainter.
using FigurePainter = std::function<void(QPainter&, const QRect&)>;

// A painter for a widget: QCustomPlot through its own renderer, other widgets through
// QWidget::render.
FigurePainter widgetPainter(QWidget* w);
FigurePainter plotPainter(QCustomPlot* plot);

// Writes PATH by its suffix (.png, .svg, .pdf); `dpi` sets the PNG's resolution (the figure is
// laid out at 96 dpi and scaled). Writes PATH.json with `record` plus the format, size and dpi.
// Returns an empty string on success, else a one-line error.
QString exportFigure(const FigurePainter& paint, const QSize& size, const QString& path, int dpi, QJsonObject record,
                     const QString& title = {});

// Numbers: a rows x cols float table as .csv (with an optional header row), .json or .npy.
QString exportMatrix(const std::vector<float>& values, int rows, int cols, const QString& path, const QStringList& columnNames,
                     QJsonObject record);

// The record written beside exports; fields added by the caller.
QString writeRecord(const QString& exportPath, QJsonObject record);

}  // namespace vitscope::ui
