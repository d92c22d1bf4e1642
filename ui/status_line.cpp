#include "status_line.h"

#include "session.h"

#include <QEvent>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QStatusBar>
#include <QStyle>
#include <QTimer>

#include <algorithm>
#include <cmath>

namespace vitscope::ui {

namespace {

// A rate as a reader takes it in: "0.04/s", "0.4/s" for slow jobs, "230/s" for fast ones.
QString rateText(double perSecond) {
    if (perSecond < 0.1) return QString::number(perSecond, 'g', 2);  // (never "0.0")
    return QString::number(perSecond, 'f', perSecond < 10 ? 1 : 0);
}

QString etaText(double seconds) {
    if (seconds < 1) return QObject::tr("< 1 s");
    if (seconds < 120) return QObject::tr("%1 s").arg(std::lround(seconds));
    return QObject::tr("%1 min").arg(std::lround(seconds / 60));
}

}  // namespace

StatusLine::StatusLine(QStatusBar* bar, Session& session) : QObject(bar) {
    m_model = new QLabel(tr("no model"));
    m_model->setObjectName("statusModel");
    m_message = new QLabel;
    m_message->setObjectName("statusMessage");
    m_message->setMinimumWidth(40);
    m_message->installEventFilter(this);
    m_job = new QLabel;
    m_job->setObjectName("statusJob");
    m_progress = new QProgressBar;
    m_progress->setMaximumWidth(200);
    m_progress->hide();
    m_cancel = new QPushButton(tr("Cancel"));
    m_cancel->hide();
    m_expire = new QTimer(this);
    m_expire->setSingleShot(true);
    bar->addWidget(m_model);
    bar->addWidget(m_message, 1);
    bar->addPermanentWidget(m_job);
    bar->addPermanentWidget(m_progress);
    bar->addPermanentWidget(m_cancel);
    // The bar's height is the same with a long job's Cancel and progress bar as without: a job
    // starting or ending never resizes the docks above it (the head panel's list stays put).
    const int tallest =
        std::max({m_cancel->sizeHint().height(), m_progress->sizeHint().height(), m_job->sizeHint().height()});
    bar->setMinimumHeight(tallest + 2 * bar->style()->pixelMetric(QStyle::PM_LayoutVerticalSpacing, nullptr, bar) + 4);
    connect(m_cancel, &QPushButton::clicked, &session, &Session::cancelLongJob);
    connect(m_expire, &QTimer::timeout, this, [this] { showMessage({}, false); });
}

void StatusLine::render(const State& s, QFlags<Aspect> changed) {
    if (changed & Aspect::Model) {
        const ModelSummary& m = s.model;
        m_model->setText(!s.hasModel() ? tr("no model")
                                       : tr("%1 (%2, %3 layers x %4 heads%5) on %6")
                                             .arg(QString::fromStdString(m.name), QString::fromStdString(m.family))
                                             .arg(m.layers)
                                             .arg(m.heads)
                                             .arg((m.poolHeads > 0 ? tr(", attention-pooled (%1 pooling heads)").arg(m.poolHeads) : QString()) +
                                                  (m.clip ? QString() : tr(", through its aligner")))
                                             .arg(QString::fromStdString(m.device) + (m.precision == "fp32" ? QString() : ", " + QString::fromStdString(m.precision))));
    }
    if (changed & Aspect::Message) showMessage(s.message.text, s.message.error);
    if (changed & (Aspect::Job | Aspect::Model)) {
        const LongJob& j = s.job;
        const bool progress = j.running() && j.total > 0;
        m_progress->setVisible(progress);
        m_cancel->setVisible(j.running());
        if (progress) {
            m_progress->setRange(0, static_cast<int>(std::min<qint64>(j.total, 1 << 30)));
            m_progress->setValue(static_cast<int>(std::min<qint64>(j.done, 1 << 30)));
        }
        const QString what = j.stage.isEmpty() ? j.label : j.stage;
        m_job->setText(!s.modelLoading.isEmpty() ? tr("opening %1").arg(s.modelLoading)
                       : !j.running()            ? QString()
                       : !progress               ? what
                       : j.perSecond > 0
                           ? tr("%1: %2 / %3, %4/s, ETA %5")
                                 .arg(what)
                                 .arg(j.done)
                                 .arg(j.total)
                                 .arg(rateText(j.perSecond), etaText(j.eta))
                           : tr("%1: %2 / %3").arg(what).arg(j.done).arg(j.total));  // (no rate known yet)
    }
}

void StatusLine::showMessage(const QString& text, bool error) {
    m_fullMessage = text;
    m_message->setStyleSheet(error ? "color: #b00020;" : QString());
    m_message->setToolTip(text);
    m_message->setText(m_message->fontMetrics().elidedText(text, Qt::ElideRight, std::max(40, m_message->width() - 4)));
    if (!text.isEmpty()) m_expire->start(error ? 30000 : 12000);
}

bool StatusLine::eventFilter(QObject* watched, QEvent* event) {
    if (watched == m_message && event->type() == QEvent::Resize)
        m_message->setText(m_message->fontMetrics().elidedText(m_fullMessage, Qt::ElideRight, std::max(40, m_message->width() - 4)));
    return QObject::eventFilter(watched, event);
}

QString StatusLine::text() const { return m_model->text() + " | " + m_fullMessage + " | " + m_job->text(); }
QString StatusLine::message() const { return m_fullMessage; }

}  // namespace vitscope::ui
