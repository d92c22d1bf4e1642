#include "log_sink.h"

#include <spdlog/spdlog.h>

#include <QMetaObject>
#include <QString>


namespace vitscope::ui {

void PanelSink::sink_it_(const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    QString line = QString::fromUtf8(formatted.data(), static_cast<int>(formatted.size())).trimmed();
    QPointer<QPlainTextEdit> panel = m_panel;
    if (!panel) return;
    QMetaObject::invokeMethod(
        panel, [panel, line] {
            if (panel) panel->appendPlainText(line);
        },
        Qt::QueuedConnection);
}

std::shared_ptr<PanelSink> attachLogPanel(QPlainTextEdit* panel) {
    auto sink = std::make_shared<PanelSink>(panel);
    sink->set_pattern("%H:%M:%S  %l: %v");
    spdlog::default_logger()->sinks().push_back(sink);
    return sink;
}

}  // namespace vitscope::ui
