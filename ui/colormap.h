#pragma once
// Colormaps for heatmaps, the head grid and colorbars (the same four names as the CLI).
#include <QColor>
#include <QImage>
#include <QString>
#include <QStringList>

#include <vector>

namespace vitscope::ui {

enum class ColormapKind { Viridis, Inferno, Jet, Turbo };

QStringList colormapNames();
ColormapKind colormapFromName(const QString& name);  // unknown names give viridis
QColor colormapColor(ColormapKind kind, double t);    // t in [0, 1], clamped

// A rows x cols float map as an ARGB image, normalised to [lo, hi] (min / max when lo == hi).
QImage colorize(const std::vector<float>& values, int rows, int cols, ColormapKind kind, float lo, float hi, int alpha = 255);

}  // namespace vitscope::ui
