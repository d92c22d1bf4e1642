#include "settings.h"

#include "resources.h"

#include <QSettings>

namespace vitscope::ui {

SessionOptions restoredSessionOptions(const QString& dataDir, const QString& device, bool restore) {
    SessionOptions so;
    so.dataDir = dataDir;
    so.device = device;
    so.bundledModel = QString::fromStdString(bundledModelDir("shapes-clip"));
    if (!restore) return so;
    QSettings s;
    so.view.method = s.value("view/method", "decomposition").toString();
    so.view.wholeImage = s.value("view/wholeImage", false).toBool();
    so.textspan.perHead = s.value("textspan/perHead", 10).toInt();
    so.textspan.rank = s.value("textspan/rank", 80).toInt();
    so.textspan.convention = s.value("textspan/convention", "exact").toString();
    if (s.contains("heatmap/cheferStartLayer")) so.view.map.cheferStartLayer = s.value("heatmap/cheferStartLayer").toInt();
    so.view.map.gradcamTarget = s.value("heatmap/gradcamTarget", "auto").toString();
    so.view.map.siglipMap = s.value("heatmap/siglipMap", "pool").toString();
    so.view.map.inputSize = s.value("heatmap/inputSize", 0).toInt();
    return so;
}

void saveSessionSettings(const State& st) {
    QSettings s;
    s.setValue("view/method", st.view.method);
    s.setValue("view/wholeImage", st.view.wholeImage);
    s.setValue("textspan/perHead", st.textspan.perHead);
    s.setValue("textspan/rank", st.textspan.rank);
    s.setValue("textspan/convention", st.textspan.convention);
    if (st.view.map.cheferStartLayer) s.setValue("heatmap/cheferStartLayer", *st.view.map.cheferStartLayer);
    else s.remove("heatmap/cheferStartLayer");
    s.setValue("heatmap/gradcamTarget", st.view.map.gradcamTarget);
    s.setValue("heatmap/siglipMap", st.view.map.siglipMap);
    s.setValue("heatmap/inputSize", st.view.map.inputSize);
}

}  // namespace vitscope::ui
