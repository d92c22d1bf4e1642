#pragma once
// The session's settings across runs (QSettings): read once at start into SessionOptions, written
// when the window closes. Nothing reads them at request time.
#include "session.h"

namespace vitscope::ui {

// `restore` false: the defaults (tests, --no-restore).
SessionOptions restoredSessionOptions(const QString& dataDir, const QString& device, bool restore);
void saveSessionSettings(const State& state);  // view, TextSpan and heatmap settings

}  // namespace vitscope::ui
