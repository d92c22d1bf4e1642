#include "word_completer.h"

#include <QAbstractItemView>
#include <QCompleter>
#include <QLineEdit>
#include <QStringListModel>

namespace vitscope::ui {

WordCompleter::WordCompleter(QLineEdit* edit, QObject* parent) : QObject(parent), m_edit(edit) {
    m_completer = new QCompleter(this);
    m_completer->setModel(new QStringListModel(m_completer));
    m_completer->setCaseSensitivity(Qt::CaseInsensitive);
    m_completer->setCompletionMode(QCompleter::PopupCompletion);
    m_completer->setWidget(edit);
    connect(edit, &QLineEdit::textEdited, this, &WordCompleter::onEdited);
    connect(m_completer, qOverload<const QString&>(&QCompleter::activated), this, &WordCompleter::insert);
}

void WordCompleter::setWords(const QStringList& words) {
    m_words = words;
    m_words.sort();
    static_cast<QStringListModel*>(m_completer->model())->setStringList(m_words);
    if (m_words.isEmpty()) m_completer->popup()->hide();
}

QString WordCompleter::currentWord(int* start) const {
    const QString text = m_edit->text();
    const int end = m_edit->cursorPosition();
    int begin = end;
    while (begin > 0 && text[begin - 1].isLetterOrNumber()) --begin;
    if (start) *start = begin;
    return text.mid(begin, end - begin);
}

void WordCompleter::onEdited() {
    const QString word = currentWord();
    if (m_words.isEmpty() || word.isEmpty()) {
        m_completer->popup()->hide();
        return;
    }
    m_completer->setCompletionPrefix(word);
    if (m_completer->completionCount() == 0 ||
        (m_completer->completionCount() == 1 && m_completer->currentCompletion().compare(word, Qt::CaseInsensitive) == 0)) {
        m_completer->popup()->hide();
        return;
    }
    m_completer->popup()->setCurrentIndex(m_completer->completionModel()->index(0, 0));
    m_completer->complete();
}

void WordCompleter::insert(const QString& word) {
    int start = 0;
    const QString current = currentWord(&start);
    QString text = m_edit->text();
    // The combo box's own (whole-text) completion may have put a selected suffix after the cursor.
    if (m_edit->hasSelectedText() && m_edit->selectionStart() >= start + current.size())
        text.remove(m_edit->selectionStart(), m_edit->selectedText().size());
    text.replace(start, current.size(), word);
    m_edit->setText(text);
    m_edit->setCursorPosition(start + static_cast<int>(word.size()));
}

}  // namespace vitscope::ui
