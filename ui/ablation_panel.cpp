#include "ablation_panel.h"

#include "session.h"

#include "plot_legend.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

namespace vitscope::ui {

AblationPanel::AblationPanel(QWidget* parent) : QWidget(parent) {
    // Left: where the task comes from; right: the heads and the accuracies.
    auto* outer = new QHBoxLayout(this);
    auto* setup = new QVBoxLayout;
    auto* layout = new QVBoxLayout;
    outer->addLayout(setup, 2);
    outer->addLayout(layout, 3);
    m_demo = new QPushButton(tr("Load the spurious-split demo"));
    m_task = new QLabel(tr("No task: load the demo, or open a dataset with labels.csv"));
    m_task->setWordWrap(true);
    buildHeadList();
    QHBoxLayout* row = buildHeadButtons();
    buildResultViews();
    QGroupBox* form = buildTaskForm();
    setup->addWidget(m_demo);
    setup->addWidget(form);
    setup->addWidget(m_task);
    setup->addStretch(1);
    layout->addWidget(new QLabel(tr("Heads to mean-ablate")));
    layout->addWidget(m_heads);
    layout->addLayout(row);
    auto* results = new QHBoxLayout;
    results->addWidget(m_table, 2);
    results->addWidget(m_plot, 3);
    layout->addLayout(results, 1);
    connectControls();
}

void AblationPanel::buildHeadList() {
    m_heads = new QListWidget;
    m_heads->setObjectName("ablationHeads");
    m_heads->setFlow(QListView::LeftToRight);
    m_heads->setWrapping(true);
    m_heads->setResizeMode(QListView::Adjust);
    m_heads->setMaximumHeight(70);
}

QHBoxLayout* AblationPanel::buildHeadButtons() {
    auto* row = new QHBoxLayout;
    m_topK = new QSpinBox;
    m_topK->setRange(1, 64);
    m_topK->setValue(6);
    m_topK->setPrefix(tr("top "));
    m_discover = new QPushButton(tr("Tick discovered spurious heads"));
    m_clear = new QPushButton(tr("Clear"));
    row->addWidget(m_discover);
    row->addWidget(m_topK);
    row->addWidget(m_clear);
    return row;
}

void AblationPanel::buildResultViews() {
    m_table = new QTableWidget(0, 3);
    m_table->setHorizontalHeaderLabels({tr("group"), tr("before"), tr("after")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    m_table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);  // group names whole
    m_table->verticalHeader()->setVisible(false);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setMinimumHeight(170);
    m_plot = new QCustomPlot;
    m_plot->setObjectName("ablationPlot");
    m_plot->setMinimumHeight(150);
}

QHBoxLayout* AblationPanel::pathRow(QLineEdit*& edit, const QString& placeholder, bool folder) {
    auto* row = new QHBoxLayout;
    edit = new QLineEdit;
    edit->setPlaceholderText(placeholder);
    auto* browse = new QPushButton("...");
    browse->setMaximumWidth(32);
    QLineEdit* e = edit;
    connect(browse, &QPushButton::clicked, this, [this, e, folder] {
        const QString f = folder ? QFileDialog::getExistingDirectory(this, tr("Reference image folder"))
                                 : QFileDialog::getOpenFileName(this, tr("Choose a file"));
        if (!f.isEmpty()) e->setText(f);
    });
    row->addWidget(edit, 1);
    row->addWidget(browse);
    return row;
}

QGroupBox* AblationPanel::buildTaskForm() {
    // Any dataset with labels: the task form.
    auto* form = new QGroupBox(tr("Task on the open dataset"));
    auto* formLayout = new QFormLayout(form);
    formLayout->addRow(tr("labels.csv"), pathRow(m_labels, tr("file column + label columns, paths relative to it"), false));
    m_column = new QLineEdit("label");
    formLayout->addRow(tr("label column"), m_column);
    formLayout->addRow(tr("classes"), pathRow(m_classes, tr("label<TAB>prompt lines"), false));
    m_groups = new QLineEdit;
    m_groups->setPlaceholderText(tr("optional: columns forming groups, e.g. group,background"));
    formLayout->addRow(tr("group columns"), m_groups);
    formLayout->addRow(tr("reference images"), pathRow(m_reference, tr("another split: the means come from it"), true));
    m_spurious = new QLineEdit;
    m_spurious->setPlaceholderText(tr("spurious descriptions, comma separated"));
    m_core = new QLineEdit;
    m_core->setPlaceholderText(tr("core descriptions, comma separated"));
    formLayout->addRow(tr("spurious"), m_spurious);
    formLayout->addRow(tr("core"), m_core);
    auto* setTask = new QPushButton(tr("Set task"));
    formLayout->addRow(setTask);
    connect(setTask, &QPushButton::clicked, this, &AblationPanel::requestTask);
    return form;
}

void AblationPanel::connectControls() {
    connect(m_demo, &QPushButton::clicked, this, &AblationPanel::demoRequested);
    connect(m_discover, &QPushButton::clicked, this, [this] { emit discoverRequested(m_topK->value()); });
    connect(m_clear, &QPushButton::clicked, this, [this] {
        setTicked({});
        emit ablationChanged({});
    });
    connect(m_heads, &QListWidget::itemChanged, this, [this] {
        if (!m_silent) emit ablationChanged(ticked());
    });
}

void AblationPanel::setHeads(int layers, int heads, const std::vector<int>& headsPerLayer) {
    m_silent = true;
    m_heads->clear();
    for (int l = 0; l < layers; ++l)
        for (int h = 0; h < (headsPerLayer.empty() ? heads : headsPerLayer[static_cast<std::size_t>(l)]); ++h) {
            auto* it = new QListWidgetItem(QString("%1.%2").arg(l).arg(h));
            it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
            it->setCheckState(Qt::Unchecked);
            m_heads->addItem(it);
        }
    m_silent = false;
}

void AblationPanel::setTaskText(const QString& text) { m_task->setText(text); }

void AblationPanel::setTaskForm(const QString& labels, const QString& column, const QString& classes, const QString& groups,
                                const QString& reference) {
    m_labels->setText(labels);
    m_column->setText(column);
    m_classes->setText(classes);
    m_groups->setText(groups);
    m_reference->setText(reference);
}

QString AblationPanel::labelsField() const { return m_labels->text(); }

void AblationPanel::setDiscoveryTexts(const QString& spurious, const QString& core) {
    m_spurious->setText(spurious);
    m_core->setText(core);
}

namespace {
QStringList commaList(const QString& text) {
    QStringList out;
    for (const QString& t : text.split(',', Qt::SkipEmptyParts))
        if (!t.trimmed().isEmpty()) out << t.trimmed();
    return out;
}
}  // namespace

QStringList AblationPanel::spuriousTexts() const { return commaList(m_spurious->text()); }
QStringList AblationPanel::coreTexts() const { return commaList(m_core->text()); }

void AblationPanel::requestTask() {
    emit taskRequested(m_labels->text().trimmed(), m_column->text().trimmed(), m_classes->text().trimmed(), commaList(m_groups->text()),
                       m_reference->text().trimmed());
}

QStringList AblationPanel::ticked() const {
    QStringList out;
    for (int i = 0; i < m_heads->count(); ++i)
        if (m_heads->item(i)->checkState() == Qt::Checked) out << m_heads->item(i)->text();
    return out;
}

void AblationPanel::setTicked(const QStringList& names) {
    m_silent = true;
    for (int i = 0; i < m_heads->count(); ++i) m_heads->item(i)->setCheckState(names.contains(m_heads->item(i)->text()) ? Qt::Checked : Qt::Unchecked);
    m_silent = false;
}

void AblationPanel::setHeadTicked(const QString& name, bool on) {
    for (int i = 0; i < m_heads->count(); ++i)
        if (m_heads->item(i)->text() == name) m_heads->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
}

QString AblationPanel::tableText() const {
    QStringList lines;
    for (int r = 0; r < m_table->rowCount(); ++r)
        lines << QString("%1\t%2\t%3").arg(m_table->item(r, 0)->text(), m_table->item(r, 1)->text(), m_table->item(r, 2)->text());
    return lines.join('\n');
}

void AblationPanel::clearOutcome(const QString& why) {
    m_outcome = AblationOutcome{};
    m_table->setRowCount(0);
    m_plot->clearPlottables();
    m_plot->replot();
    m_plot->hide();  // no outcome, no chart (an empty one collapsed and overprinted its labels)
    setTaskText(why);
}

void AblationPanel::setOutcome(const AblationOutcome& o) {
    m_outcome = o;
    m_plot->show();
    fillTable(o);
    plotBars(o);
}

void AblationPanel::fillTable(const AblationOutcome& o) {
    auto pct = [](double v) { return QString::number(100 * v, 'f', 2) + "%"; };
    m_table->setRowCount(0);
    // What a group's name is made of: the values of the group columns, in their order.
    const QStringList columns = commaList(m_groups->text());
    m_table->setHorizontalHeaderLabels({columns.isEmpty() ? tr("group") : columns.join(" / "), tr("before"), tr("after")});
    QString example;
    if (!o.groups.empty()) {
        const QString name = QString::fromStdString(o.groups.front().group);
        const QStringList values = name.split('/');
        QStringList parts;
        for (int i = 0; i < values.size() && i < columns.size(); ++i) parts << QString("%1 %2").arg(columns[i], values[i]);
        if (!parts.isEmpty()) example = QString(" (\"%1\": %2)").arg(name, parts.join(tr(" and ")));
    }
    m_table->setToolTip(columns.isEmpty() ? QString()
                                          : tr("Each row: the images whose %1 have the values named%2, their count, and the "
                                               "accuracy before and after mean-ablating the ticked heads")
                                                .arg(columns.join(tr(" and ")), example));
    auto addRow = [&](const QString& name, double before, double after) {
        const int r = m_table->rowCount();
        m_table->insertRow(r);
        m_table->setItem(r, 0, new QTableWidgetItem(name));
        m_table->setItem(r, 1, new QTableWidgetItem(pct(before)));
        m_table->setItem(r, 2, new QTableWidgetItem(pct(after)));
    };
    addRow(tr("accuracy"), o.accuracyBefore, o.accuracyAfter);
    if (!o.groups.empty()) addRow(tr("worst group"), o.worstBefore, o.worstAfter);
    for (const GroupAccuracy& g : o.groups) addRow(QString("%1 (%2)").arg(QString::fromStdString(g.group)).arg(g.count), g.before, g.after);
}

void AblationPanel::plotBars(const AblationOutcome& o) {
    // Grouped bars: before / after per group.
    m_plot->clearPlottables();
    QVector<double> keys, before, after;
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    int k = 0;
    auto add = [&](const QString& name, double b, double a) {
        keys << ++k;
        before << 100 * b;
        after << 100 * a;
        ticker->addTick(k, name);
    };
    add(tr("all"), o.accuracyBefore, o.accuracyAfter);
    for (const GroupAccuracy& g : o.groups) add(QString::fromStdString(g.group), g.before, g.after);
    auto* group = new QCPBarsGroup(m_plot);
    auto* b1 = new QCPBars(m_plot->xAxis, m_plot->yAxis);
    b1->setName(tr("before"));
    b1->setData(keys, before);
    b1->setBrush(QColor(150, 150, 150));
    b1->setWidth(0.35);
    b1->setBarsGroup(group);
    auto* b2 = new QCPBars(m_plot->xAxis, m_plot->yAxis);
    b2->setName(tr("after ablation"));
    b2->setData(keys, after);
    b2->setBrush(QColor(59, 82, 139));
    b2->setWidth(0.35);
    b2->setBarsGroup(group);
    m_plot->xAxis->setTicker(ticker);
    m_plot->xAxis->setRange(0.4, k + 0.6);
    m_plot->yAxis->setRange(0, 105);
    m_plot->yAxis->setLabel(tr("accuracy (%)"));
    placeLegendBelow(m_plot, 2);
    m_plot->legend->setVisible(true);
    m_plot->legend->setFont(QFont(font().family(), 7));
    m_plot->replot();
}

void AblationPanel::render(const State& s, QFlags<Aspect> changed) {
    if (changed & Aspect::Model) setHeads(s.model.layers, s.model.heads, s.model.headsPerLayer);
    if (!(changed & (Aspect::Ablation | Aspect::Model))) return;
    const AblationState& a = s.ablation;
    // The form follows the session's task when that changes (a new dataset offers its labels, the
    // demo fills it); what the user types stays until then.
    const AblationTask& t = a.task;
    if (t.labels != m_shownTask.labels || t.classes != m_shownTask.classes || t.referenceImages != m_shownTask.referenceImages ||
        t.labelColumn != m_shownTask.labelColumn || t.groupColumns != m_shownTask.groupColumns) {
        QStringList groups;
        for (const std::string& g : t.groupColumns) groups << QString::fromStdString(g);
        setTaskForm(QString::fromStdString(t.labels), QString::fromStdString(t.labelColumn), QString::fromStdString(t.classes),
                    groups.join(","), QString::fromStdString(t.referenceImages));
        m_shownTask = t;
    }
    if (!a.spuriousTexts.isEmpty()) setDiscoveryTexts(a.spuriousTexts, a.coreTexts);
    const QString text = !a.taskText.isEmpty() ? a.taskText
                         : s.hasModel()        ? tr("No task set: give labels.csv, a classes file and a reference split, then Set task "
                                                    "(or Load the spurious demo).")
                                               : QString();
    if (a.taskSet) {
        setTaskText(text);
        setOutcome(a.outcome);
    } else {
        clearOutcome(text);
    }
    setTicked(a.ablated);
}

void AblationPanel::connectTo(Session* s) {
    connect(this, &AblationPanel::demoRequested, s, &Session::loadSpuriousDemo);
    connect(this, &AblationPanel::ablationChanged, s, &Session::ablate);
    connect(this, &AblationPanel::discoverRequested, s, [this, s](int k) {
        s->discoverSpurious(spuriousTexts(), coreTexts(), k);
    });
    connect(this, &AblationPanel::taskRequested, s,
            [s](const QString& labels, const QString& column, const QString& classes, const QStringList& groups, const QString& reference) {
                AblationTask task;
                task.labels = labels.toStdString();
                task.labelColumn = column.isEmpty() ? "label" : column.toStdString();
                task.classes = classes.toStdString();
                for (const QString& g : groups) task.groupColumns.push_back(g.toStdString());
                task.referenceImages = reference.toStdString();
                s->setAblationTask(task);
            });
}

}  // namespace vitscope::ui
