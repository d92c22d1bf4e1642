#pragma once
// The session's state for the neuron tools (ui/session_neurons.cpp holds its rules): the focused
// MLP's neurons ranked by a property over the open dataset, the neurons ticked in the head panel's
// list, a retrieval through neurons shown in the Retrieval dock, and the token norms of every block
// as small multiples on the canvas.
#include "explore/explorer.h"

#include <QList>
#include <QString>
#include <QtGlobal>

#include <optional>

namespace vitscope::ui {

struct NeuronRankState {
    QString property;       // the property the list is ordered by ("": by effect on the open image)
    NeuronRanking ranking;  // ranking.layer -1 until it arrives (for the focused MLP and the open dataset)
    bool computing = false;
    QString note;  // why there is no ranking (no dataset, an aligner, a failure)
};

struct NeuronRetrievalState {
    bool active = false;  // the Retrieval dock shows hits through these neurons
    int layer = -1;
    QList<qint64> neurons;
    QString text;
    QString dataset;  // the dataset its hits are of ("" until they arrive)
};

struct NeuronToolsState {
    NeuronRankState rank;
    int tickedLayer = -1;  // the MLP the ticks are of
    QList<qint64> ticked;  // the neurons ticked in the list (rows not shown keep theirs)
    NeuronRetrievalState retrieval;
    bool normsPerBlock = false;                 // View > Token norms of every block
    std::optional<TokenNormBlocks> normBlocks;  // of the open image (when asked for)
    // The same through the test-time-register model (while View > Test-time registers is on too):
    // the canvas shows it as a second row under the model's.
    std::optional<TokenNormBlocks> normBlocksRegisters;
    QString normBlocksImage;                    // the image they are of
};

}  // namespace vitscope::ui
