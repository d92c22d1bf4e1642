#pragma once
// The compared model beside the open one (Session::compareHeads keeps it open): its head grid,
// coloured by the same metric, with the heads assigned to the open model's selection outlined;
// its canvas for the same image, text and method; its completeness ledger; both models' heads
// ranked by the grid's property side by side; retrieval through the matched heads beside the
// open model's. Clicking its heads selects the open model's heads assigned to them.
#include <QFlags>
#include <QWidget>

class QLabel;
class QListWidget;
class QTableWidget;
class QTabWidget;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class HeadGrid;
class ImageCanvas;
class LedgerView;
class Session;
class Thumbnails;

// The compared model's side of `s` as a state of its own, which the grid, canvas and ledger
// render as they render the open model's: its model, image, map, ledger and property scores, the
// open text and metric, and the selection carried through the head assignment.
State partnerSide(const State& s);

class PartnerView : public QWidget {
    Q_OBJECT
public:
    explicit PartnerView(Thumbnails* thumbs, QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);
    void connectTo(Session* session);

    HeadGrid* grid() const { return m_grid; }
    ImageCanvas* canvas() const { return m_canvas; }
    LedgerView* ledger() const { return m_ledger; }
    QTableWidget* ranking() const { return m_ranking; }
    QListWidget* hitsA() const { return m_hitsA; }
    QListWidget* hitsB() const { return m_hitsB; }
    QTabWidget* tabs() const { return m_tabs; }
    QString titleText() const;
    QString retrievalText() const;

private:
    void showRanking(const State& s);
    void showRetrieval(const State& s);

    Thumbnails* m_thumbs;
    QLabel* m_title;
    QWidget* m_body;
    HeadGrid* m_grid;
    ImageCanvas* m_canvas;
    QTabWidget* m_tabs;
    LedgerView* m_ledger;
    QLabel* m_rankingNote;
    QTableWidget* m_ranking;
    QLabel* m_retrievalNote;
    QListWidget* m_hitsA;
    QListWidget* m_hitsB;
};

}  // namespace vitscope::ui
