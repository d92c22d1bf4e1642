#pragma once
// The window's views, built once by the main window; each renders from the session's state.
#include <QFlags>

class QPlainTextEdit;
class QWidget;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class AblationPanel;
class Classroom;
class Gallery;
class GridControls;
class HeadGrid;
class HeadPanel;
class ImageCanvas;
class LedgerView;
class TextControls;
class ComparisonView;
class ConceptPanel;
class PartnerView;
class Projector;
class Thumbnails;

struct Views {
    Thumbnails* thumbs = nullptr;
    GridControls* gridControls = nullptr;
    HeadGrid* grid = nullptr;
    TextControls* text = nullptr;
    Classroom* classroom = nullptr;  // the walkthrough's banner over the canvas
    ImageCanvas* canvas = nullptr;
    HeadPanel* head = nullptr;
    LedgerView* ledger = nullptr;
    Gallery* gallery = nullptr;
    AblationPanel* ablation = nullptr;
    Projector* projector = nullptr;
    ComparisonView* comparison = nullptr;
    PartnerView* partner = nullptr;
    ConceptPanel* concepts = nullptr;
    QPlainTextEdit* log = nullptr;

    void render(const State& s, QFlags<Aspect> changed) const;
};

// Brings the dock holding `w` to the front of its tabs.
void raiseDockOf(QWidget* w);

}  // namespace vitscope::ui
