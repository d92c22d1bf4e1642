// Layering: core/ includes no Qt header; ui/ includes no torch header.
#include "test_util.h"

#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <regex>

namespace {

const char* const kQtInclude = "#\\s*include\\s*[<\"](Q[A-Z]\\w*|Qt\\w*/)";
const char* const kTorchInclude = "#\\s*include\\s*[<\"](torch/|ATen/|c10/)";

QStringList offenders(const std::string& dir, const std::regex& forbidden) {
    QStringList bad;
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) return bad;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
        const auto ext = e.path().extension().string();
        if (!e.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
        std::ifstream in(e.path());
        std::string line;
        while (std::getline(in, line))
            if (std::regex_search(line, forbidden)) bad << QString::fromStdString(e.path().string() + ": " + line);
    }
    return bad;
}

}  // namespace

class TestLayering : public QObject {
    Q_OBJECT

private slots:
    void coreHasNoQt() {
        const std::string core = vitscope::test::source("core");
        QVERIFY(std::filesystem::exists(core + "/model/forward.h"));  // the scan looks at the real tree
        const QStringList bad = offenders(core, std::regex(kQtInclude));
        QVERIFY2(bad.isEmpty(), qPrintable(bad.join("\n")));
    }

    void uiHasNoTorch() {
        const QStringList bad =
            offenders(vitscope::test::source("ui"), std::regex(kTorchInclude));
        QVERIFY2(bad.isEmpty(), qPrintable(bad.join("\n")));
    }

    void scannerCatchesViolations() {
        // The pattern itself must flag a Qt include, so a passing scan means something.
        QVERIFY(std::regex_search(std::string("#include <QObject>"), std::regex(kQtInclude)));
        QVERIFY(std::regex_search(std::string("#include <QtCore/qglobal.h>"), std::regex(kQtInclude)));
    }
};

QTEST_GUILESS_MAIN(TestLayering)
#include "test_layering.moc"
