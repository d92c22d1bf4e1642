#include "partner_view.h"

#include "gallery.h"
#include "head_grid.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "session.h"
#include "thumbnails.h"

#include <qcustomplot.h>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

QList<HeadId> headIds(const HeadPairs& cells, const ModelSummary& m) {
    QList<HeadId> out;
    for (const auto& [l, h] : cells) out << gridHead(l, h, m.layers, m.poolHeads > 0);
    return out;
}

struct RankedHead {
    std::pair<int, int> cell;
    QString name;
    float score = 0;
};

// A model's heads by a property's score (the grid's values), largest first.
std::vector<RankedHead> rankHeads(const GridValues& g, const ModelSummary& m) {
    std::vector<RankedHead> out;
    for (int l = 0; l < g.heads.rows; ++l)
        for (int h = 0; h < g.heads.cols; ++h) {
            const float v = g.heads.values[std::size_t(l * g.heads.cols + h)];
            if (std::isfinite(v)) out.push_back({{l, h}, gridHead(l, h, m.layers, m.poolHeads > 0).name(), v});
        }
    std::stable_sort(out.begin(), out.end(), [](const RankedHead& a, const RankedHead& b) { return a.score > b.score; });
    return out;
}

}  // namespace

State partnerSide(const State& s) {
    State b;
    const PartnerState& p = s.partner;
    b.model = p.model;
    b.image = p.image;
    b.text = s.text;
    b.view = s.view;
    b.view.subtractReference = false;
    if (!p.map.method.empty()) {
        b.view.method = q(p.map.method);
        b.map.maps = {p.map};
        b.map.options = s.view.map;
        b.map.restrictedTo = headIds(p.mapHeads, p.model);
    }
    b.ledger = p.ledger;
    b.metric = s.metric == GridMetric::Property || s.metric == GridMetric::TextScore ? s.metric : GridMetric::DirectEffect;
    b.property = s.property;
    b.scores = p.scores;
    if (s.comparison) {
        b.selection = headIds(s.comparison->assignedInB(s.selectedPairs()), p.model);

    }
    return b;
}

PartnerView::PartnerView(Thumbnails* thumbs, QWidget* parent) : QWidget(parent), m_thumbs(thumbs) {
    auto* layout = new QVBoxLayout(this);
    m_title = new QLabel;
    m_title->setObjectName("partnerTitle");
    m_title->setWordWrap(true);
    layout->addWidget(m_title);
    m_body = new QWidget;
    auto* body = new QHBoxLayout(m_body);
    body->setContentsMargins(0, 0, 0, 0);
    m_grid = new HeadGrid;
    m_grid->setObjectName("partnerGrid");
    m_canvas = new ImageCanvas;
    m_canvas->setObjectName("partnerCanvas");
    m_tabs = new QTabWidget;
    m_ledger = new LedgerView;
    m_tabs->addTab(m_ledger, tr("Ledger"));
    auto* ranking = new QWidget;
    auto* rankingLayout = new QVBoxLayout(ranking);
    m_rankingNote = new QLabel;
    m_rankingNote->setWordWrap(true);
    m_ranking = new QTableWidget(0, 5);
    m_ranking->setObjectName("partnerRanking");
    m_ranking->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_ranking->verticalHeader()->setVisible(false);
    rankingLayout->addWidget(m_rankingNote);
    rankingLayout->addWidget(m_ranking, 1);
    m_tabs->addTab(ranking, tr("Property ranking"));
    auto* retrieval = new QWidget;
    auto* retrievalLayout = new QVBoxLayout(retrieval);
    m_retrievalNote = new QLabel;
    m_retrievalNote->setWordWrap(true);
    m_hitsA = hitList(64);
    m_hitsB = hitList(64);
    auto* lists = new QHBoxLayout;
    lists->addWidget(m_hitsA);
    lists->addWidget(m_hitsB);
    retrievalLayout->addWidget(m_retrievalNote);
    retrievalLayout->addLayout(lists, 1);
    m_tabs->addTab(retrieval, tr("Retrieval"));
    // Smaller floors than the main views': the dock shares the window's height with the main map (at
    // 1024 x 768 about 250 px), and the canvas and chart scale down to it.
    m_canvas->setMinimumSize(160, 120);
    m_ledger->plot()->setMinimumHeight(110);
    body->addWidget(m_grid, 2);
    body->addWidget(m_canvas, 3);
    body->addWidget(m_tabs, 3);
    layout->addWidget(m_body, 1);
    connect(m_thumbs, &Thumbnails::ready, this, [this](const QString& path, const QImage& img) {
        for (QListWidget* l : {m_hitsA, m_hitsB})
            for (int i = 0; i < l->count(); ++i)
                if (l->item(i)->data(Qt::UserRole).toString() == path) l->item(i)->setIcon(QPixmap::fromImage(img));
    });
    m_body->hide();
    m_title->setText(tr("Compare the heads with another model (Comparison dock): it then stays open here beside this one, "
                        "on the same image, text and heads."));
}

void PartnerView::connectTo(Session* session) {
    connect(m_grid, &HeadGrid::selectionChanged, session, &Session::selectPartnerHeads);
    connect(m_canvas, &ImageCanvas::fileDropped, session, &Session::openImage);
    for (QListWidget* l : {m_hitsA, m_hitsB})
        connect(l, &QListWidget::itemClicked, session, [session](QListWidgetItem* it) { session->openImage(it->data(Qt::UserRole).toString()); });
}

QString PartnerView::titleText() const { return m_title->text(); }
QString PartnerView::retrievalText() const { return m_retrievalNote->text(); }

void PartnerView::render(const State& s, QFlags<Aspect> changed) {
    const QFlags<Aspect> relevant = Aspect::Partner | Aspect::Comparison | Aspect::Model | Aspect::Selection | Aspect::Grid | Aspect::Text |
                                    Aspect::View | Aspect::Retrieval | Aspect::Image;
    if (!(changed & relevant)) return;
    const bool open = s.comparison && s.partner.open();
    m_body->setVisible(open);
    if (!open) {
        m_title->setText(s.comparing ? tr("Opening the compared model...")
                                     : tr("Compare the heads with another model (Comparison dock): it then stays open here beside this one, "
                                          "on the same image, text and heads."));
        return;
    }
    const State b = partnerSide(s);
    // The grid, canvas and ledger draw the compared side as they draw the open model's.
    const QFlags<Aspect> all = Aspect::Model | Aspect::Image | Aspect::Map | Aspect::Ledger | Aspect::Grid | Aspect::Selection | Aspect::Descriptions;
    m_grid->render(b, all);
    if (changed & (Aspect::Partner | Aspect::Comparison | Aspect::Model | Aspect::Image)) m_canvas->render(b, all);
    if (changed & (Aspect::Partner | Aspect::Comparison | Aspect::Model)) m_ledger->render(b, all);
    QString title = tr("%1 beside %2, through the head assignment (outlined: the heads assigned to the selection; click its heads to select theirs)")
                        .arg(q(s.partner.model.name), q(s.model.name));
    if (!s.partner.mapNote.isEmpty()) title += " - " + s.partner.mapNote;
    m_title->setText(title);
    showRanking(s);
    showRetrieval(s);
}

void PartnerView::showRanking(const State& s) {
    m_ranking->setRowCount(0);
    m_ranking->setHorizontalHeaderLabels({q(s.model.name), tr("score"), tr("assigned (rank)"), q(s.partner.model.name), tr("score")});
    if (s.metric != GridMetric::Property || s.scores.property.empty() || s.partner.scores.property != s.scores.property) {
        m_rankingNote->setText(s.metric == GridMetric::Property ? tr("scoring the property on both models...")
                                                                : tr("Colour the grid by a property (Grid: property score) to rank both models' heads by it."));
        return;
    }
    const std::vector<RankedHead> a = rankHeads(s.scores.grid, s.model), b = rankHeads(s.partner.scores.grid, s.partner.model);
    m_rankingNote->setText(tr("Heads by their score for the property \"%1\", largest first; \"assigned\": the head of %2 assigned to the head of "
                              "%3 on its left, and its rank in %2")
                               .arg(q(s.scores.property), q(s.partner.model.name), q(s.model.name)));
    const int rows = int(std::max(a.size(), b.size()));
    m_ranking->setRowCount(rows);
    for (int r = 0; r < rows; ++r) {
        auto set = [&](int column, const QString& text) { m_ranking->setItem(r, column, new QTableWidgetItem(text)); };
        if (r < int(a.size())) {
            set(0, a[std::size_t(r)].name);
            set(1, QString::number(a[std::size_t(r)].score, 'f', 3));
            const HeadPairs match = s.comparison->assignedInB({a[std::size_t(r)].cell});
            const auto it = match.empty() ? b.end() : std::find_if(b.begin(), b.end(), [&](const RankedHead& h) { return h.cell == match.front(); });
            set(2, it == b.end() ? tr("none") : QString("%1 (%2)").arg(it->name).arg(it - b.begin() + 1));
        }
        if (r < int(b.size())) {
            set(3, b[std::size_t(r)].name);
            set(4, QString::number(b[std::size_t(r)].score, 'f', 3));
        }
    }
    m_ranking->resizeColumnsToContents();
}

void PartnerView::showRetrieval(const State& s) {
    const RetrievalResult& a = s.retrieval.result;
    const RetrievalResult& b = s.partner.retrieval;
    if (s.retrieval.query.isEmpty() || b.query != a.query || b.query.empty()) {
        m_retrievalNote->setText(tr("Search in the Retrieval dock: the same search runs here through the heads of %1 assigned to the selection.")
                                     .arg(q(s.partner.model.name)));
        m_hitsA->clear();
        m_hitsB->clear();
        return;
    }
    const bool restricted = !s.selection.isEmpty();
    const std::vector<Hit>& hitsA = restricted ? a.restricted : a.global;
    const std::vector<Hit>& hitsB = restricted ? b.restricted : b.global;
    int shared = 0;
    for (const Hit& h : hitsB)
        shared += std::any_of(hitsA.begin(), hitsA.end(), [&](const Hit& x) { return x.path == h.path; }) ? 1 : 0;
    QStringList headsB;
    for (const HeadId& h : headIds(s.comparison->assignedInB(s.selectedPairs()), s.partner.model)) headsB << h.name();
    m_retrievalNote->setText(restricted ? tr("\"%1\": left %2 through %3, right %4 through its assigned heads %5; %6 of %7 images in both")
                                              .arg(q(a.query), q(s.model.name), tr("the selected heads (%1)").arg(s.selection.size()),
                                                   q(s.partner.model.name), headsB.join(", "))
                                              .arg(shared)
                                              .arg(hitsB.size())
                                        : tr("\"%1\": left %2, right %3 (whole representations; select heads to retrieve through them and "
                                             "their matches); %4 of %5 images in both")
                                              .arg(q(a.query), q(s.model.name), q(s.partner.model.name))
                                              .arg(shared)
                                              .arg(hitsB.size()));
    fillHitList(m_hitsA, hitsA, m_thumbs);
    fillHitList(m_hitsB, hitsB, m_thumbs);
}

}  // namespace vitscope::ui
