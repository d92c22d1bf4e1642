#include "colormap.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace vitscope::ui {

namespace {

using Stop = std::array<double, 3>;

// Samples of each map at equal steps (RGB 0..1), interpolated linearly.
const std::vector<Stop>& stops(ColormapKind kind) {
    static const std::vector<Stop> viridis{{0.267, 0.005, 0.329}, {0.283, 0.141, 0.458}, {0.254, 0.265, 0.530}, {0.207, 0.372, 0.553},
                                           {0.164, 0.471, 0.558}, {0.128, 0.567, 0.551}, {0.135, 0.659, 0.518}, {0.267, 0.749, 0.441},
                                           {0.478, 0.821, 0.318}, {0.741, 0.873, 0.150}, {0.993, 0.906, 0.144}};
    static const std::vector<Stop> inferno{{0.001, 0.000, 0.014}, {0.087, 0.045, 0.225}, {0.258, 0.039, 0.406}, {0.416, 0.090, 0.433},
                                           {0.578, 0.148, 0.404}, {0.735, 0.216, 0.330}, {0.865, 0.317, 0.226}, {0.954, 0.469, 0.099},
                                           {0.988, 0.645, 0.040}, {0.964, 0.843, 0.273}, {0.988, 0.998, 0.645}};
    static const std::vector<Stop> jet{{0.0, 0.0, 0.5}, {0.0, 0.0, 1.0}, {0.0, 0.5, 1.0}, {0.0, 1.0, 1.0}, {0.5, 1.0, 0.5},
                                       {1.0, 1.0, 0.0}, {1.0, 0.5, 0.0}, {1.0, 0.0, 0.0}, {0.5, 0.0, 0.0}};
    static const std::vector<Stop> turbo{{0.190, 0.072, 0.232}, {0.271, 0.385, 0.832}, {0.159, 0.658, 0.965}, {0.098, 0.878, 0.772},
                                         {0.396, 0.992, 0.427}, {0.737, 0.949, 0.207}, {0.965, 0.781, 0.220}, {0.985, 0.518, 0.126},
                                         {0.866, 0.264, 0.040}, {0.647, 0.091, 0.009}, {0.480, 0.016, 0.011}};
    switch (kind) {
    case ColormapKind::Inferno: return inferno;
    case ColormapKind::Jet: return jet;
    case ColormapKind::Turbo: return turbo;
    case ColormapKind::Viridis: break;
    }
    return viridis;
}

}  // namespace

QStringList colormapNames() { return {"viridis", "inferno", "jet", "turbo"}; }

ColormapKind colormapFromName(const QString& name) {
    if (name == "inferno") return ColormapKind::Inferno;
    if (name == "jet") return ColormapKind::Jet;
    if (name == "turbo") return ColormapKind::Turbo;
    return ColormapKind::Viridis;
}

QColor colormapColor(ColormapKind kind, double t) {
    const std::vector<Stop>& s = stops(kind);
    if (!std::isfinite(t)) t = 0;
    t = std::clamp(t, 0.0, 1.0) * static_cast<double>(s.size() - 1);
    const std::size_t i = std::min(static_cast<std::size_t>(t), s.size() - 2);
    const double f = t - static_cast<double>(i);
    auto mix = [&](int c) { return (1 - f) * s[i][static_cast<std::size_t>(c)] + f * s[i + 1][static_cast<std::size_t>(c)]; };
    return QColor::fromRgbF(static_cast<float>(mix(0)), static_cast<float>(mix(1)), static_cast<float>(mix(2)));
}

QImage colorize(const std::vector<float>& values, int rows, int cols, ColormapKind kind, float lo, float hi, int alpha) {
    QImage img(cols, rows, QImage::Format_ARGB32);
    if (rows <= 0 || cols <= 0 || values.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols)) return {};
    if (lo == hi) {
        lo = *std::min_element(values.begin(), values.end());
        hi = *std::max_element(values.begin(), values.end());
    }
    const float span = hi > lo ? hi - lo : 1.f;
    std::array<QRgb, 256> lut;
    for (int i = 0; i < 256; ++i) {
        QColor c = colormapColor(kind, i / 255.0);
        c.setAlpha(alpha);
        lut[static_cast<std::size_t>(i)] = c.rgba();
    }
    for (int r = 0; r < rows; ++r) {
        auto* line = reinterpret_cast<QRgb*>(img.scanLine(r));
        for (int c = 0; c < cols; ++c) {
            const float v = (values[static_cast<std::size_t>(r) * cols + c] - lo) / span;
            line[c] = lut[static_cast<std::size_t>(std::clamp(static_cast<int>(v * 255.f + 0.5f), 0, 255))];
        }
    }
    return img;
}

}  // namespace vitscope::ui
