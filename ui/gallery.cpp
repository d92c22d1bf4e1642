#include "gallery.h"

#include "session.h"

#include "thumbnails.h"

#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace vitscope::ui {

QListWidget* hitList(int side) {
    auto* l = new QListWidget;
    l->setViewMode(QListView::IconMode);
    l->setIconSize({side, side});
    l->setResizeMode(QListView::Adjust);
    l->setGridSize(QSize(side + 14, side + 26));
    l->setUniformItemSizes(true);
    l->setMovement(QListView::Static);
    return l;
}

void fillHitList(QListWidget* list, const std::vector<Hit>& hits, Thumbnails* thumbs) {
    list->clear();
    for (const Hit& h : hits) {
        const QString path = QString::fromStdString(h.path);
        auto* item = new QListWidgetItem(QString::number(h.score, 'f', 3));
        item->setData(Qt::UserRole, path);
        item->setToolTip(QString("%1\nscore %2").arg(path).arg(h.score));
        const QImage img = thumbs->get(path);
        // A placeholder of the icon's size until the thumbnail arrives: with uniform item sizes the
        // first item sizes them all, and an icon-less first item made every cell a thin strip.
        item->setIcon(img.isNull() ? thumbnailPlaceholder(list->iconSize()) : QPixmap::fromImage(img));
        list->addItem(item);
    }
}

Gallery::Gallery(Thumbnails* thumbs, QWidget* parent) : QWidget(parent), m_thumbs(thumbs) {
    auto* layout = new QVBoxLayout(this);
    auto* row = new QHBoxLayout;
    m_query = new QLineEdit;
    m_query->setPlaceholderText(tr("a red object"));
    m_query->setObjectName("galleryQuery");
    m_byText = new QPushButton(tr("Search text"));
    m_byImage = new QPushButton(tr("By image..."));
    m_top = new QSpinBox;
    m_top->setRange(1, 200);
    m_top->setValue(20);
    m_top->setPrefix(tr("top "));
    connect(m_top, &QSpinBox::valueChanged, this, &Gallery::topChanged);
    row->addWidget(m_query, 1);
    row->addWidget(m_byText);
    row->addWidget(m_byImage);
    row->addWidget(m_top);
    layout->addLayout(row);
    m_resultsFor = new QLabel;
    m_resultsFor->setObjectName("galleryResultsFor");
    m_resultsFor->setWordWrap(true);
    layout->addWidget(m_resultsFor);
    auto* grid = new QGridLayout;
    m_heads = new QLabel(tr("Through the selected heads (select heads in the grid)"));
    m_heads->setWordWrap(true);
    m_global = hitList(72);
    m_restricted = hitList(72);
    grid->addWidget(new QLabel(tr("Whole representation")), 0, 0);
    grid->addWidget(m_heads, 0, 1);
    grid->addWidget(m_global, 1, 0);
    grid->addWidget(m_restricted, 1, 1);
    layout->addLayout(grid, 1);
    connect(m_byText, &QPushButton::clicked, this, [this] {
        if (!m_query->text().trimmed().isEmpty()) emit textQuery(m_query->text().trimmed());
    });
    connect(m_query, &QLineEdit::returnPressed, m_byText, &QPushButton::click);
    connect(m_byImage, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Query image"), {}, tr("Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff)"));
        if (!f.isEmpty()) emit imageQuery(f);
    });
    for (QListWidget* l : {m_global, m_restricted}) {
        connect(l, &QListWidget::itemClicked, this, [this](QListWidgetItem* it) { emit imageActivated(it->data(Qt::UserRole).toString()); });
    }
    connect(m_thumbs, &Thumbnails::ready, this, [this](const QString& path, const QImage& img) {
        for (QListWidget* l : {m_global, m_restricted})
            for (int i = 0; i < l->count(); ++i)
                if (l->item(i)->data(Qt::UserRole).toString() == path) l->item(i)->setIcon(QPixmap::fromImage(img));
    });
}

QString Gallery::query() const { return m_query->text(); }
int Gallery::top() const { return m_top->value(); }

void Gallery::setHeadsLabel(const QString& heads) {
    m_heads->setText(heads.isEmpty() ? tr("Through the selected heads (select heads in the grid)") : tr("Through heads %1").arg(heads));
}

void Gallery::setQueryText(const QString& text) { m_query->setText(text); }

void Gallery::clear() {
    m_result = RetrievalResult{};
    m_global->clear();
    m_restricted->clear();
    m_resultsFor->clear();
}
QString Gallery::resultsFor() const { return m_resultsFor->text(); }

void Gallery::setResult(const RetrievalResult& r) {
    m_result = r;
    const QString q = QString::fromStdString(r.query);
    if (r.byImage) {
        m_resultsFor->setText(tr("Results for images like %1").arg(QFileInfo(q).fileName()));
        m_resultsFor->setToolTip(q);
    } else {
        m_resultsFor->setText(tr("Results for \"%1\"").arg(q));
        m_resultsFor->setToolTip(QString());
        m_query->setText(q);
    }
    fillHitList(m_global, r.global, m_thumbs);
    fillHitList(m_restricted, r.restricted, m_thumbs);
    QStringList names;
    for (const std::string& c : r.components) names << QString::fromStdString(c);
    if (throughNeurons()) {  // "mlp.L/N" each (Session::retrieveThroughNeurons)
        for (QString& n : names) n = n.section('/', 1);
        m_heads->setText(tr("Through neurons %1 of %2")
                             .arg(names.join(", "), QString::fromStdString(r.components.front()).section('/', 0, 0)));
        return;
    }
    setHeadsLabel(names.join(", "));
}

bool Gallery::throughNeurons() const {
    return !m_result.components.empty() && m_result.components.front().find('/') != std::string::npos;
}

int Gallery::globalCount() const { return m_global->count(); }
int Gallery::restrictedCount() const { return m_restricted->count(); }
QString Gallery::globalPath(int i) const { return m_global->item(i)->data(Qt::UserRole).toString(); }
QString Gallery::restrictedPath(int i) const { return m_restricted->item(i)->data(Qt::UserRole).toString(); }


void Gallery::render(const State& s, QFlags<Aspect> changed) {
    if (changed & Aspect::Retrieval) {
        const RetrievalState& r = s.retrieval;
        if (r.result.global.empty() && r.result.restricted.empty()) clear();
        else setResult(r.result);
        if (!r.byImage) setQueryText(r.query);  // the box shows what is searched (Ctrl+R, "Retrieve with this head")
        const QSignalBlocker block(m_top);
        m_top->setValue(r.top);
    }
    if ((changed & (Aspect::Selection | Aspect::Model)) && !(throughNeurons() && !(changed & Aspect::Model))) {
        QStringList names;
        for (const HeadId& h : s.selection) names << h.name();
        setHeadsLabel(names.join(", "));
    }
}

}  // namespace vitscope::ui
