#include "views.h"

#include "ablation_panel.h"
#include "classroom.h"
#include "controls.h"
#include "gallery.h"
#include "head_grid.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "projector.h"
#include "comparison_view.h"
#include "concept_panel.h"
#include "partner_view.h"
#include "session.h"

#include <QDockWidget>

namespace vitscope::ui {

void Views::render(const State& s, QFlags<Aspect> changed) const {
    gridControls->render(s, changed);
    grid->render(s, changed);
    text->render(s, changed);
    classroom->render(s, changed);
    canvas->render(s, changed);
    head->render(s, changed);
    ledger->render(s, changed);
    gallery->render(s, changed);
    ablation->render(s, changed);
    projector->render(s, changed);
    comparison->render(s, changed);
    partner->render(s, changed);
    concepts->render(s, changed);
}

void raiseDockOf(QWidget* w) {
    for (QWidget* p = w; p; p = p->parentWidget())
        if (auto* d = qobject_cast<QDockWidget*>(p)) {
            d->raise();
            return;
        }
}

}  // namespace vitscope::ui
