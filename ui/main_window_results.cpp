// MainWindow: what happens when the engine's results arrive (one handler per job kind).
#include "main_window.h"

#include <spdlog/spdlog.h>

#include <limits>

#include "ablation_panel.h"
#include "classroom.h"
#include "gallery.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "metatypes.h"
#include "word_completer.h"

#include <algorithm>

#include <QCheckBox>
#include <QComboBox>
#include <QProgressBar>
#include <QPushButton>
#include <QLineEdit>
#include <QStandardItemModel>
#include <QDockWidget>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSettings>
#include <QCompleter>
#include <QDir>
#include <QLineEdit>
#include <QStatusBar>

#include <cmath>

namespace vitscope::ui {

void MainWindow::onFinished(quint64 id, const QString& kind, const QVariant& result) {
    if (id == m_longJob) {
        m_longJob = 0;
        m_progress->hide();
        m_cancel->hide();
        m_statusJob->clear();
    }
    using Handler = void (MainWindow::*)(const QVariant&);
    static const QHash<QString, Handler> handlers{
        {"model", &MainWindow::onModel},
        {"image", &MainWindow::onImage},
        {"heatmap", &MainWindow::onHeatmap},
        {"ledger", &MainWindow::onLedger},
        {"dataset", &MainWindow::onDataset},
        {"describe", &MainWindow::onDescribe},
        {"topimages", &MainWindow::onTopImages},
        {"retrieve", &MainWindow::onRetrieve},
        {"property", &MainWindow::onProperty},
        {"ablate", &MainWindow::onAblate},
        {"discover", &MainWindow::onDiscover},
        {"demo", &MainWindow::onDemo},
        {"task", &MainWindow::onTask},
        {"reference", &MainWindow::onReference},
    };
    if (const Handler h = handlers.value(kind)) (this->*h)(result);
}

void MainWindow::onReference(const QVariant& result) {
    m_referenceCount = result.toInt();
    m_subtractReference->setEnabled(m_referenceCount > 0);
    m_subtractReference->setToolTip(tr("Heatmaps show the text's map minus the mean map of %1 texts from %2")
                                        .arg(m_referenceCount)
                                        .arg(m_referenceFile));
    const QSignalBlocker block(m_subtractReference);
    m_subtractReference->setChecked(m_referenceCount > 0);
    statusBar()->showMessage(tr("%1 reference texts loaded; heatmaps subtract their mean").arg(m_referenceCount), 5000);
    requestHeatmap();
}

void MainWindow::applyModel(const ModelSummary& s) {
    m_model = s;
    // Nothing of the previous model stays on screen.
    m_canvas->clearMap();
    m_ledger->clear();
    m_headPanel->clear();
    m_gallery->clear();
    m_ablation->clearOutcome(tr("Set the task again for %1 (Apply task)").arg(QString::fromStdString(s.name)));
    // Reference texts are embeddings of the model's text side: read them again for a new model.
    m_referenceCount = 0;
    m_lastQuery.clear();  // results of another model's dataset are not rerun
    if (!m_referenceFile.isEmpty()) loadReferenceTexts(m_referenceFile);
    m_descriptions.clear();
    m_normValues.clear();
    m_normConv.clear();
    m_propertyConv.clear();
    m_ledgerValues.clear();
    m_propertyValues.clear();
    m_propertyMlp.clear();
    m_datasetReady = false;
    m_grid->setShape(s.gridLayers(), s.heads, s.poolHeads > 0);
    if (!s.headsPerLayer.empty()) {
        QStringList labels;
        for (const std::string& l : s.layerLabels) labels << QString::fromStdString(l);
        m_grid->setRows(s.headsPerLayer, labels);
    }
    if (s.convBlocks > 0) m_grid->setSideColumn(tr("MBConv"));
    // The methods the model defines (core's rule: Swin and MaxViT have no class-token attention);
    // the menu keeps the others, disabled.
    {
        auto* items = qobject_cast<QStandardItemModel*>(m_method->model());
        for (int i = 0; items && i < items->rowCount(); ++i)
            items->item(i)->setEnabled(std::find(s.heatmapMethods.begin(), s.heatmapMethods.end(), items->item(i)->text().toStdString()) !=
                                       s.heatmapMethods.end());
        if (items && !items->item(m_method->currentIndex())->isEnabled()) m_method->setCurrentIndex(0);
    }
    m_classroom->setPooled(s.poolHeads > 0);
    m_classroom->setWindowed(!s.headsPerLayer.empty());
    // A model without a class token (SigLIP) has its pooling probe where CLIP has the class token.
    m_method->setItemData(3, s.poolHeads > 0 ? tr("The pooling probe's attention over the patches (text-independent)")
                                             : tr("Last layer's class-token attention (text-independent)"),
                          Qt::ToolTipRole);
    m_method->setItemData(4, s.poolHeads > 0 ? tr("The pooling probe's attention carried through the rollout of all layers (text-independent)")
                                             : tr("Attention rollout over all layers (text-independent)"),
                          Qt::ToolTipRole);
    m_ablation->setHeads(s.layers, s.heads, s.headsPerLayer);
    m_statusModel->setText(tr("%1 (%2, %3 layers x %4 heads%5) on %6")
                               .arg(QString::fromStdString(s.name), QString::fromStdString(s.family))
                               .arg(s.layers)
                               .arg(s.heads)
                               .arg((s.poolHeads > 0 ? tr(", attention-pooled (%1 pooling heads)").arg(s.poolHeads) : QString()) +
                                    (s.clip ? QString() : tr(", through its aligner")))
                               .arg(QString::fromStdString(s.device)));
    setWindowTitle(QString("vitscope - %1").arg(QString::fromStdString(s.name)));
    // The property box completes this model's word lists and names a few of them.
    {
        QStringList names;
        for (const std::string& n : s.propertyNames) names << QString::fromStdString(n);
        auto* completer = new QCompleter(names, m_property);
        completer->setCaseSensitivity(Qt::CaseInsensitive);
        completer->setFilterMode(Qt::MatchStartsWith);
        delete m_property->completer();
        m_property->setCompleter(completer);
        m_property->setPlaceholderText(names.isEmpty() ? tr("property: a file of texts")
                                                       : tr("property: %1...").arg(QStringList(names.mid(0, 3)).join(", ")));
        m_property->setToolTip(tr("Rank heads by a property: one of this model's word lists (%1) or a file of texts, one per line; Enter")
                                   .arg(names.join(", ")));
    }
    // Word-vocabulary models complete the word being typed from the words they know.
    {
        QStringList words;
        for (const std::string& w : s.vocabulary) words << QString::fromStdString(w);
        m_words->setWords(words);
        m_text->lineEdit()->setToolTip(words.isEmpty() ? QString()
                                                       : tr("This model knows %1 words; the list completes the word being typed")
                                                             .arg(words.size()));
    }
    // The text box offers the pool.
    const QString pool = textPoolFile();
    const QString current = m_text->currentText();
    m_text->clear();
    if (!pool.isEmpty()) {
        QFile f(pool);
        if (f.open(QIODevice::ReadOnly)) {
            int n = 0;
            while (!f.atEnd() && n < 3000) {
                const QString line = QString::fromUtf8(f.readLine()).trimmed();
                if (!line.isEmpty() && !line.startsWith('#')) m_text->addItem(line), ++n;
            }
        }
    }
    m_text->setEditText(current);
}

void MainWindow::onModel(const QVariant& result) {
    const ModelSummary s = result.value<ModelSummary>();
    applyModel(s);
    addRecent("recent/models", QString::fromStdString(s.spec));
    QSettings().setValue("session/model", QString::fromStdString(s.spec));
    // Nothing of the previous model stays on screen: every view is cleared, then the image and
    // the dataset the user has open are analysed again by this model (its own cache is built).
    const QString image = m_canvas->hasImage() ? m_canvas->imagePath() : m_options.image;
    emit modelReady();
    QString dataset = !m_datasetFolder.isEmpty() ? m_datasetFolder : m_options.dataset;
    const bool bundled = QFileInfo(QString::fromStdString(s.spec)).fileName().startsWith("shapes-");
    if (dataset.isEmpty() && bundled) dataset = m_options.dataDir + "/shapes-world/images";
    if (!image.isEmpty()) openImage(image);
    if (!dataset.isEmpty()) openDataset(dataset);
}

void MainWindow::onImage(const QVariant& result) {
    m_image = result.value<ImageResult>();
    const QImage crop(m_image.crop.rgb.data(), m_image.crop.width, m_image.crop.height, 3 * m_image.crop.width, QImage::Format_RGB888);
    m_canvas->setImage(crop.copy(), QString::fromStdString(m_image.path));
    // Say what of the image the model sees when it is not all of it (or when it is squashed).
    const QString note = QString::fromStdString(m_image.inputNote);
    m_canvas->setInputNote(note.isEmpty() ? QString()
                                          : m_image.wholeImage ? tr("The model sees %1 (View > Whole image).").arg(note)
                                                               : tr("The model sees %1; View > Whole image analyses all of it.").arg(note));
    m_normValues = m_image.headNorms.values;
    m_normMlp = m_image.mlpNorms;
    // MaxViT: block K's MBConv sits on the row of its first attention unit.
    m_normConv.clear();
    if (m_model.convBlocks > 0) {
        m_normConv.assign(static_cast<std::size_t>(m_model.gridLayers()), std::nanf(""));
        for (std::size_t k = 0; k < m_image.convNorms.size(); ++k)
            m_normConv[k * static_cast<std::size_t>(m_model.layersPerConv)] = m_image.convNorms[k];
    }
    updateGridMetric();
    addRecent("recent/images", QString::fromStdString(m_image.path));
    m_log->appendPlainText(tr("%1 decomposed in %2 ms").arg(QString::fromStdString(m_image.path)).arg(1000 * m_image.seconds, 0, 'f', 1));
    float best = -1;
    HeadId strongest;
    for (int l = 0; l < m_image.headNorms.rows; ++l)
        for (int h = 0; h < m_image.headNorms.cols; ++h)
            if (m_image.headNorms.at(l, h) > best)
                best = m_image.headNorms.at(l, h), strongest = gridHead(l, h, m_model.layers, m_model.poolHeads > 0);
    m_strongestHead = strongest;
    // The opening view (nothing typed yet): its text, the head that writes most for the image
    // selected (its panel fills once the heads are described) and the gallery for the text.
    const bool opening = !m_image.openingText.empty() && m_text->currentText().trimmed().isEmpty();
    m_classroom->setFacts(tr("This model cuts its %1 px input into %2 x %3 patches of %4 px.").arg(m_model.imageSize).arg(m_image.gridH).arg(m_image.gridW).arg(m_model.patchSize),
                          (m_model.headsPerLayer.empty()
                               ? tr("%1 layers, each with %2 heads and an MLP.").arg(m_model.layers).arg(m_model.heads)
                               : tr("%1 layers in %2 stages, with %3 to %4 heads and an MLP each.")
                                     .arg(m_model.layers)
                                     .arg(QString::fromStdString(m_model.layerLabels.back()).section('.', 0, 0).mid(1).toInt() + 1)
                                     .arg(m_model.headsPerLayer.front())
                                     .arg(m_model.headsPerLayer.back())) +
                              (m_model.poolHeads > 0 ? tr(" No class token: %1 pooling heads read every token.").arg(m_model.poolHeads) : QString()),
                          tr("The strongest head for this image is %1.").arg(strongest.name()), QString());
    emit imageReady();
    if (opening) {
        setText(QString::fromStdString(m_image.openingText));
        if (strongest.valid()) m_grid->setSelection({strongest});
        if (m_datasetReady) runRetrieval(QString::fromStdString(m_image.openingText));
        return;
    }
    requestHeatmap();
    requestLedger();
}

void MainWindow::onHeatmap(const QVariant& result) {
    const auto maps = result.value<std::vector<HeatmapResult>>();
    if (maps.empty()) return;
    m_lastHeatmap = maps.front();
    if (m_classroomOn && m_classroom->step() == Classroom::Patches) {
        // The patches step shows the bare patches: a map that arrives late (asked for before the
        // step) waits until the walkthrough moves on or ends.
        emit heatmapReady();
        return;
    }
    const HeatmapResult& r = maps.front();
    QString caption = QString("%1: %2").arg(QString::fromStdString(r.method), QString::fromStdString(r.text));
    if (r.method == "decomposition")
        caption = tr("decomposition (score contributions): %1").arg(QString::fromStdString(r.text));
    const bool textual = r.method != "attention" && r.method != "rollout";
    if (textual && m_subtractReference->isChecked() && m_referenceCount > 0)
        caption += tr(" - mean of %1 reference texts (%2)").arg(m_referenceCount).arg(QFileInfo(m_referenceFile).fileName());
    if (m_onlySelected->isChecked() && !m_grid->selection().isEmpty()) {
        QStringList names;
        for (const HeadId& h : m_grid->selection()) names << h.name();
        caption += " [" + names.join(", ") + "]";
    }
    m_canvas->setMap({caption, r.pixels.values, r.pixels.rows, r.pixels.cols});
    std::vector<MapLayer> multiples;
    const QList<HeadId> sel = m_grid->selection();
    // Per-head maps on one colour scale (the heads' contributions compare directly), one colorbar.
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::size_t i = 1; i < maps.size(); ++i) {
        const QString name = i - 1 < std::size_t(sel.size()) ? tr("head %1").arg(sel[int(i - 1)].name()) : QString();
        multiples.push_back({name, maps[i].patches.values, maps[i].patches.rows, maps[i].patches.cols});
        lo = std::min(lo, maps[i].patches.minValue());
        hi = std::max(hi, maps[i].patches.maxValue());
    }
    if (lo < hi)
        for (MapLayer& m : multiples) {
            m.lo = lo;
            m.hi = hi;
        }
    m_canvas->setSmallMultiples(multiples);
    m_log->appendPlainText(tr("heatmap (%1) in %2 ms").arg(QString::fromStdString(r.method)).arg(1000 * r.seconds, 0, 'f', 1));
    emit heatmapReady();
}

void MainWindow::onLedger(const QVariant& result) {
    m_lastLedger = result.value<Ledger>();
    m_ledger->setLedger(m_lastLedger, m_model.heads);
    m_ledgerValues = m_lastLedger.headScores.values;
    if (m_metric->currentIndex() == 1) updateGridMetric();
    emit ledgerReady();
}

void MainWindow::onDataset(const QVariant& result) {
    const DatasetSummary d = result.value<DatasetSummary>();
    m_datasetReady = true;
    QSettings().setValue("session/dataset", m_datasetFolder);
    addRecent("recent/datasets", m_datasetFolder);
    m_log->appendPlainText(tr("dataset %1: %2 images cached in %3 (%4 skipped)")
                               .arg(QString::fromStdString(d.images))
                               .arg(d.count)
                               .arg(QString::fromStdString(d.cacheDir))
                               .arg(d.skipped));
    statusBar()->showMessage(tr("%1 images ready").arg(d.count), 5000);
    // Labels beside the images (the folder or its parent, as the shapes world and its splits
    // have them) are offered as an ablation task.
    for (const QString& dir : {m_datasetFolder, QFileInfo(m_datasetFolder).dir().path()})
        if (QFileInfo(dir + "/labels.csv").isFile() && m_ablation->offerLabels(QDir(dir).absoluteFilePath("labels.csv"))) break;
    emit datasetReady_();
    if (!m_canvas->hasImage() && d.count > 0) {
        // The opening view: an image and a text that show what the tool does (Explorer::firstView).
        submitImage([](Explorer& x) {
            const Explorer::FirstView v = x.firstView();
            ImageResult r = x.analyseImage(v.image);
            r.openingText = v.text;
            return r;
        });
    }
    describeHeads();
}

void MainWindow::onDescribe(const QVariant& result) {
    m_descriptions = result.value<std::vector<HeadDescription>>();
    QStringList tips;
    for (int i = 0; i < m_model.gridLayers() * m_model.heads; ++i) tips << QString();
    for (const HeadDescription& d : m_descriptions) {
        QStringList texts;
        for (const TextPick& p : d.picks) texts << QString::fromStdString(p.text);
        tips[d.layer * m_model.heads + d.index] =
            texts.join("; ") + tr("\n(TextSpan on %1-convention terms, text rank %2)").arg(QString::fromStdString(d.convention)).arg(d.rank);
    }
    m_grid->setDescriptions(tips);
    updateGridMetric();
    const QList<HeadId> sel = m_grid->selection();
    if (!sel.isEmpty()) showHeadPanel(sel.back());
    // Say what came of it: how many heads, where to look.
    const QString said = tr("%1 heads described with TextSpan (%2 texts each): hover a cell for its texts, click it for its chart")
                             .arg(m_descriptions.size())
                             .arg(m_descriptions.empty() ? 0 : int(m_descriptions.front().picks.size()));
    m_statusJob->setText(tr("%1 heads described").arg(m_descriptions.size()));
    statusBar()->showMessage(said, 15000);
    spdlog::info("{}", said.toStdString());
    emit descriptionsReady();
}

void MainWindow::onTopImages(const QVariant& result) {
    m_headPanel->setTopImages(result.value<std::vector<Hit>>());
    emit headPanelReady();
}

void MainWindow::onRetrieve(const QVariant& result) {
    m_gallery->setResult(result.value<RetrievalResult>());
    raiseDockOf(m_gallery);
    emit retrievalReady();
}

void MainWindow::onProperty(const QVariant& result) {
    m_propertyName = m_requestedProperty;
    m_propertyConv.clear();
    m_propertyValues.assign(static_cast<std::size_t>(m_model.gridLayers() * m_model.heads), std::nanf(""));
    m_propertyMlp.assign(static_cast<std::size_t>(m_model.gridLayers()), std::nanf(""));
    for (const ComponentValue& c : result.value<std::vector<ComponentValue>>()) {
        if (c.head >= 0 && c.layer >= 0) m_propertyValues[static_cast<std::size_t>(c.layer * m_model.heads + c.head)] = static_cast<float>(c.value);
        else if (c.layer >= 0 && c.name.rfind("mlp.", 0) == 0) m_propertyMlp[static_cast<std::size_t>(c.layer)] = static_cast<float>(c.value);
        else if (c.name == "pool.mlp" && m_model.poolHeads > 0) m_propertyMlp[static_cast<std::size_t>(m_model.layers)] = static_cast<float>(c.value);
        else if (c.name.rfind("conv.", 0) == 0 && m_model.convBlocks > 0) {
            if (m_propertyConv.empty()) m_propertyConv.assign(static_cast<std::size_t>(m_model.gridLayers()), std::nanf(""));
            const std::size_t row = static_cast<std::size_t>(std::stoi(c.name.substr(5)) * m_model.layersPerConv);
            if (row < m_propertyConv.size()) m_propertyConv[row] = static_cast<float>(c.value);
        }
    }
    updateGridMetric();
}

void MainWindow::onAblate(const QVariant& result) {
    m_ablation->setOutcome(result.value<AblationOutcome>());
    emit ablationReady();
}

void MainWindow::onDiscover(const QVariant& result) {
    QStringList names;
    for (const ComponentValue& c : result.value<std::vector<ComponentValue>>()) names << QString::fromStdString(c.name);
    m_ablation->setTicked(names);
    emit m_ablation->ablationChanged(names);
}

void MainWindow::onTask(const QVariant& result) {
    const AblationOutcome o = result.value<AblationOutcome>();
    m_ablation->setTaskText(tr("Task set on %1: %2 groups; means from the reference images. Tick heads to ablate.")
                                .arg(m_datasetFolder)
                                .arg(o.groups.size()));
    m_ablation->setOutcome(o);
    emit ablationReady();
}

void MainWindow::onDemo(const QVariant& result) {
    const DemoLoaded r = result.value<DemoLoaded>();
    applyModel(r.model);
    m_datasetReady = true;
    m_datasetFolder = QString::fromStdString(r.dataset.images);
    m_ablation->setTaskText(tr("Spurious-split demo: shapes-clip-spurious (trained where shape groups go with grass / water) classifies "
                               "%1 spurious-test scenes into shape groups; means from spurious-train. Tick heads, or tick the discovered ones.")
                                .arg(r.dataset.count));
    m_ablation->setOutcome(r.outcome);
    raiseDockOf(m_ablation);
    emit ablationReady();
    submitImage([](Explorer& x) { return x.analyseImage(x.datasetPaths().front()); });
    describeHeads();
}

}  // namespace vitscope::ui
