#pragma once
// Classroom mode's walkthrough: how the representation is built, one step at a time (patches ->
// layers -> heads -> text), shown as a large banner; Left / Right (or the buttons) move.
#include <QWidget>

class QLabel;
class QPushButton;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;

class Classroom : public QWidget {
    Q_OBJECT
public:
    enum Step { Patches = 0, Layers, Heads, Text, StepCount };
    explicit Classroom(QWidget* parent = nullptr);
    int step() const { return m_step; }
    void setStep(int step);
    // The session's model and image: the facts the steps state (patches, layers, strongest head).
    void render(const State& s, QFlags<Aspect> changed);
    QString title() const;
    QString body() const;

signals:
    void stepChanged(int step);

protected:
    void keyPressEvent(QKeyEvent* e) override;
    void showEvent(QShowEvent* e) override;
    bool eventFilter(QObject* watched, QEvent* e) override;

private:
    void setFacts(const QString& patches, const QString& layers, const QString& heads, const QString& text);
    // The model pools its tokens with a learned probe (SigLIP) instead of reading a class token.
    void setPooled(bool pooled);
    void setWindowed(bool windowed);  // Swin: windows, merging, the mean of the last tokens
    void refresh();
    QString bodyFor(int step) const;  // a step's text with its facts
    // The wrapped texts' heights at their current widths become the labels' minimum heights, so
    // the window's layout gives the banner the room it needs (the canvas below shrinks instead);
    // redone whenever a label's width changes.
    void fitTexts();
    int m_step = 0;
    QString m_facts[StepCount];
    bool m_pooled = false;
    bool m_windowed = false;
    QLabel* m_title;
    QLabel* m_body;
    QPushButton* m_prev;
    QPushButton* m_next;
};

}  // namespace vitscope::ui
