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
    // Errors in red, warnings in amber: they stand out among the lifecycle lines.
    const QString colour = msg.level >= spdlog::level::err ? QStringLiteral("#b00020") : msg.level == spdlog::level::warn ? QStringLiteral("#8a5a00") : QString();
    const QString html = colour.isEmpty() ? line.toHtmlEscaped() : QString("<span style=\"color:%1\">%2</span>").arg(colour, line.toHtmlEscaped());
    QMetaObject::invokeMethod(
        panel, [panel, html] {
            if (panel) panel->appendHtml(html);
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
