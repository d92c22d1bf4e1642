#pragma once
// The status bar: the model and its device, the session's last message (errors in red, elided to
// the room there is, in full as the tooltip), and the long job with its progress and Cancel.
#include <QFlags>
#include <QObject>
#include <QString>

class QLabel;
class QProgressBar;
class QPushButton;
class QStatusBar;
class QTimer;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class Session;

class StatusLine : public QObject {
    Q_OBJECT
public:
    StatusLine(QStatusBar* bar, Session& session);
    void render(const State& s, QFlags<Aspect> changed);
    QString text() const;     // model | message | job, as shown
    QString message() const;  // the message as shown in full ("" once it has timed out)

private:
    void showMessage(const QString& text, bool error);
    bool eventFilter(QObject* watched, QEvent* event) override;  // re-elides on resize

    QLabel* m_model;
    QLabel* m_message;
    QLabel* m_job;
    QProgressBar* m_progress;
    QPushButton* m_cancel;
    QTimer* m_expire;
    QString m_fullMessage;
};

}  // namespace vitscope::ui
