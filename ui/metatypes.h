#pragma once
// Explorer's result types travel in QVariants through queued signals.
#include "explore/explorer.h"

#include <QMetaType>

Q_DECLARE_METATYPE(vitscope::ModelSummary)
Q_DECLARE_METATYPE(vitscope::ImageResult)
Q_DECLARE_METATYPE(vitscope::HeatmapResult)
Q_DECLARE_METATYPE(std::vector<vitscope::HeatmapResult>)
Q_DECLARE_METATYPE(vitscope::Ledger)
Q_DECLARE_METATYPE(vitscope::DatasetSummary)
Q_DECLARE_METATYPE(std::vector<vitscope::HeadDescription>)
Q_DECLARE_METATYPE(std::vector<vitscope::ComponentValue>)
Q_DECLARE_METATYPE(std::vector<vitscope::Hit>)
Q_DECLARE_METATYPE(vitscope::RetrievalResult)
Q_DECLARE_METATYPE(vitscope::AblationOutcome)

namespace vitscope::ui {
// What the spurious-split demo job opens in one go.
struct DemoLoaded {
    ModelSummary model;
    DatasetSummary dataset;
    AblationOutcome outcome;
};
}  // namespace vitscope::ui
Q_DECLARE_METATYPE(vitscope::ui::DemoLoaded)
