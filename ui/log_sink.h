#pragma once
// Forwards spdlog lines (from any thread) to a text panel on the GUI thread through queued calls.
#include <QPointer>
#include <QPlainTextEdit>

#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>

namespace vitscope::ui {

class PanelSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit PanelSink(QPlainTextEdit* panel) : m_panel(panel) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}

private:
    QPointer<QPlainTextEdit> m_panel;
};

// Adds a PanelSink to the default logger (call before any worker logs).
std::shared_ptr<PanelSink> attachLogPanel(QPlainTextEdit* panel);

}  // namespace vitscope::ui
