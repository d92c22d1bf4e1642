#pragma once
// The controls above the canvas (the text, the heatmap method, the view settings) and above the
// grid (its metric and the property box). They show the session's state and say what the user
// asks for through signals; they compute nothing.
#include "colormap.h"

#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QSlider;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class WordCompleter;

class TextControls : public QWidget {
    Q_OBJECT
public:
    explicit TextControls(QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);
    QString text() const;  // as typed (not yet entered)
    QComboBox* textBox() const { return m_text; }
    WordCompleter* wordCompleter() const { return m_words; }
    double opacity() const;
    QString colormapName() const;
    void setOpacity(double opacity);        // a display setting (not the session's)
    void setColormapName(const QString& name);
    void setViewSettingsShown(bool shown);  // the second row; off in classroom mode

signals:
    void textEntered(const QString& text);
    void methodChosen(const QString& method);
    void onlySelectedToggled(bool on);
    void perHeadToggled(bool on);
    void opacityChanged(double opacity);
    void colormapChanged(vitscope::ui::ColormapKind kind);
    void exportRequested();  // Ctrl+E typed in the text box (its own binding of it loses)

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void buildMethods();
    QWidget* buildViewRow();

    QComboBox* m_text;
    QComboBox* m_method;
    QCheckBox* m_onlySelected;
    QCheckBox* m_perHead;
    QLabel* m_opacityLabel;
    QSlider* m_opacity;
    QComboBox* m_colormap;
    QWidget* m_viewRow;
    WordCompleter* m_words;
};

class GridControls : public QWidget {
    Q_OBJECT
public:
    explicit GridControls(QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);

signals:
    void metricChosen(int metric);  // GridMetric
    void propertyEntered(const QString& property);

private:
    QComboBox* m_metric;
    QLineEdit* m_property;
};

}  // namespace vitscope::ui
