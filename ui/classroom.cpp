#include "classroom.h"

#include "session.h"

#include <QHBoxLayout>

#include <algorithm>
#include <QKeyEvent>
#include <QResizeEvent>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace vitscope::ui {

namespace {
const char* const kTitles[] = {"1  Patches become tokens", "2  Layers add to the representation", "3  Heads inside each layer",
                               "4  Reading it with text"};
const char* const kBodies[] = {
    "The image is cut into square patches. Each patch becomes a token; a class token is added in "
    "front. The grid on the image shows the patches.",
    "Each layer adds its attention and MLP outputs to the class token. The bars show how much each "
    "layer adds to the image's match with the text; together they sum exactly to the model's score.",
    "Inside a layer, each attention head writes its own part. The grid colours every head by how "
    "much it wrote for this image; hover a cell for what the head tends to describe.",
    "Every part lives in the same space as text, so each image patch can be scored against words. "
    "The heatmap shows how much each patch adds to the image's score for the text.",
};
// Models without a class token (SigLIP): a learned probe pools every token at the end.
const char* const kPooledBodies[] = {
    "The image is cut into square patches. Each patch becomes a token. This model has no class "
    "token: at the end a learned probe reads every token and pools them. The grid on the image "
    "shows the patches.",
    "Each layer adds its attention and MLP outputs to every token; the probe then pools the tokens. "
    "The bars show how much each layer adds to the image's match with the text through that pool; "
    "together they sum exactly to the model's score.",
};
// Hierarchical models (Swin): window attention, patch merging, the mean of the last tokens.
const char* const kWindowedBodies[] = {
    "The image is cut into small square patches. Each patch becomes a token. This model has no class "
    "token: its layers attend within small windows, every few layers neighbouring tokens merge into "
    "one (a coarser grid), and at the end the last tokens are averaged.",
    "Each layer adds its attention and MLP outputs to every token; the merges carry them to the "
    "coarser grids and the average at the end reads them all. The bars show how much each layer adds "
    "to the image's match with the text; together they sum exactly to the model's score.",
    "Inside a layer, each attention head writes its own part. Early layers have few heads over many "
    "small tokens, later ones many heads over fewer, larger tokens: each row of the grid shows the "
    "heads its layer has, coloured by how much each wrote for this image.",
};
}  // namespace

Classroom::Classroom(QWidget* parent) : QWidget(parent) {
    auto* layout = new QHBoxLayout(this);
    m_prev = new QPushButton(QString::fromUtf8("\u25C0"));
    m_next = new QPushButton(QString::fromUtf8("\u25B6"));
    for (QPushButton* b : {m_prev, m_next}) {
        b->setFocusPolicy(Qt::NoFocus);
        b->setMinimumSize(56, 56);
        QFont f = b->font();
        f.setPointSizeF(f.pointSizeF() * 2);
        b->setFont(f);
    }
    auto* texts = new QVBoxLayout;
    m_title = new QLabel;
    m_title->setWordWrap(true);  // a projector's 1024 px cut the long titles
    m_body = new QLabel;
    m_body->setWordWrap(true);
    m_body->setAlignment(Qt::AlignLeft | Qt::AlignTop);
    m_title->installEventFilter(this);
    m_body->installEventFilter(this);
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Fixed);  // its wrapped texts' height: never squeezed, never padded
    QFont tf = m_title->font();
    tf.setPointSizeF(tf.pointSizeF() * 2.2);
    tf.setBold(true);
    m_title->setFont(tf);
    QFont bf = m_body->font();
    bf.setPointSizeF(bf.pointSizeF() * 1.6);
    m_body->setFont(bf);
    texts->addWidget(m_title);
    texts->addWidget(m_body);
    layout->addWidget(m_prev);
    layout->addLayout(texts, 1);
    layout->addWidget(m_next);
    setFocusPolicy(Qt::StrongFocus);
    setAutoFillBackground(true);
    connect(m_prev, &QPushButton::clicked, this, [this] { setStep(m_step - 1); });
    connect(m_next, &QPushButton::clicked, this, [this] { setStep(m_step + 1); });
    refresh();
}

void Classroom::setStep(int step) {
    step = std::clamp(step, 0, StepCount - 1);
    if (step == m_step) return;
    m_step = step;
    refresh();
    emit stepChanged(m_step);
}

void Classroom::setFacts(const QString& patches, const QString& layers, const QString& heads, const QString& text) {
    m_facts[Patches] = patches;
    m_facts[Layers] = layers;
    m_facts[Heads] = heads;
    m_facts[Text] = text;
    refresh();
}

void Classroom::setPooled(bool pooled) {
    m_pooled = pooled;
    refresh();
}

void Classroom::setWindowed(bool windowed) {
    m_windowed = windowed;
    refresh();
}

QString Classroom::title() const { return m_title->text(); }
QString Classroom::body() const { return m_body->text(); }

void Classroom::refresh() {
    m_title->setText(tr(kTitles[m_step]));
    m_body->setText(bodyFor(m_step));
    m_prev->setEnabled(m_step > 0);
    m_next->setEnabled(m_step < StepCount - 1);
    fitTexts();
}

void Classroom::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    fitTexts();  // skipped while hidden (every new image updates the facts)
}

void Classroom::fitTexts() {
    if (!isVisible()) return;
    // From the font's metrics (QLabel::heightForWidth answers at least the minimum height set
    // before, so a width that grows would never give the height back). The tallest step's texts
    // set the height, so the banner, and the picture under it, keep their place through the steps.
    auto need = [](const QLabel* l, const QString& text) {
        const int w = std::max(1, l->contentsRect().width());
        return l->fontMetrics().boundingRect(QRect(0, 0, w, 100000), Qt::TextWordWrap, text).height() + l->contentsMargins().top() +
               l->contentsMargins().bottom() + 2;
    };
    int title = 0, body = 0;
    for (int step = 0; step < StepCount; ++step) {
        title = std::max(title, need(m_title, tr(kTitles[step])));
        body = std::max(body, need(m_body, bodyFor(step)));
    }
    if (m_title->minimumHeight() != title) m_title->setMinimumHeight(title);
    if (m_body->minimumHeight() != body) m_body->setMinimumHeight(body);
}

QString Classroom::bodyFor(int step) const {
    QString body = m_windowed && step < 3 ? tr(kWindowedBodies[step]) : m_pooled && step < 2 ? tr(kPooledBodies[step]) : tr(kBodies[step]);
    if (!m_facts[step].isEmpty()) body += "\n" + m_facts[step];
    return body;
}

bool Classroom::eventFilter(QObject* watched, QEvent* e) {
    if (e->type() == QEvent::Resize && (watched == m_title || watched == m_body)) {
        const auto* r = static_cast<QResizeEvent*>(e);
        if (r->size().width() != r->oldSize().width()) fitTexts();
    }
    return QWidget::eventFilter(watched, e);
}

void Classroom::keyPressEvent(QKeyEvent* e) {
    if (e->key() == Qt::Key_Right || e->key() == Qt::Key_Space || e->key() == Qt::Key_PageDown) setStep(m_step + 1);
    else if (e->key() == Qt::Key_Left || e->key() == Qt::Key_Backspace || e->key() == Qt::Key_PageUp) setStep(m_step - 1);
    else QWidget::keyPressEvent(e);
}


void Classroom::render(const State& s, QFlags<Aspect> changed) {
    if (!(changed & (Aspect::Model | Aspect::Image))) return;
    const ModelSummary& m = s.model;
    setPooled(m.poolHeads > 0);
    setWindowed(!m.headsPerLayer.empty());
    if (!s.hasImage() || !s.hasModel()) {
        setFacts({}, {}, {}, {});
        return;
    }
    const QString patches = tr("This model cuts its %1 px input into %2 x %3 patches of %4 px.")
                                .arg(m.imageSize)
                                .arg(s.image.gridH)
                                .arg(s.image.gridW)
                                .arg(m.patchSize);
    QString layers = m.headsPerLayer.empty()
                         ? tr("%1 layers, each with %2 heads and an MLP.").arg(m.layers).arg(m.heads)
                         : tr("%1 layers in %2 stages, with %3 to %4 heads and an MLP each.")
                               .arg(m.layers)
                               .arg(QString::fromStdString(m.layerLabels.back()).section('.', 0, 0).mid(1).toInt() + 1)
                               .arg(m.headsPerLayer.front())
                               .arg(m.headsPerLayer.back());
    if (m.poolHeads > 0) layers += tr(" No class token: %1 pooling heads read every token.").arg(m.poolHeads);
    setFacts(patches, layers, tr("The strongest head for this image is %1.").arg(s.strongestHead().name()), QString());
}

}  // namespace vitscope::ui
