import Foundation

/// Turns training-log entries into the report's charts and headline numbers.
enum TrainingCharts {
    /// The last entry per iteration of one kind, in iteration order (a replayed or duplicated line
    /// does not draw a zig-zag).
    static func latest(_ entries: [TrainingLogEntry], kind: TrainingLogEntry.Kind) -> [TrainingLogEntry] {
        var byIteration: [Int: TrainingLogEntry] = [:]
        for entry in entries where entry.kind == kind { byIteration[entry.iteration] = entry }
        return byIteration.keys.sorted().map { byIteration[$0]! }
    }

    /// Loss-term names: "sup" first, the others alphabetically, "total" last.
    static func lossNames(_ train: [TrainingLogEntry]) -> [String] {
        let names = Set(train.flatMap { $0.losses.keys })
        return names.sorted { a, b in
            func rank(_ n: String) -> Int { n == "sup" ? 0 : n == "total" ? 2 : 1 }
            return rank(a) != rank(b) ? rank(a) < rank(b) : a < b
        }
    }

    /// `TrainingLog` writes a non-finite loss as -1.
    static func isNonFiniteMarker(_ value: Double) -> Bool { value == -1 || !value.isFinite }

    /// Mean of the last ~5 % of the values (at least one): a stable "final" value of a noisy curve.
    static func tailMean(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let n = max(1, values.count / 20)
        let tail = values.suffix(n)
        return tail.reduce(0, +) / Double(tail.count)
    }

    struct LossChart { var svg: String; var nonFinite: Int; var logScale: Bool }

    static func lossChart(_ entries: [TrainingLogEntry]) -> LossChart {
        let train = latest(entries, kind: .train)
        var nonFinite = 0
        var series: [SVGLineChart.Series] = []
        var colorIndex = 0
        var allValues: [Double] = []
        for name in lossNames(train) {
            var points: [(x: Double, y: Double)] = []
            for entry in train {
                guard let value = entry.losses[name] else { continue }
                if isNonFiniteMarker(value) { nonFinite += 1; continue }
                points.append((Double(entry.iteration), value))
            }
            allValues += points.map(\.y)
            let isTotal = name == "total"
            let color = isTotal ? ReportPalette.totalColor : ReportPalette.lossColors[colorIndex % ReportPalette.lossColors.count]
            if !isTotal { colorIndex += 1 }
            let note = tailMean(points.map(\.y)).map { "last ≈ \(ReportMarkup.compact($0))" }
            series.append(SVGLineChart.Series(name: name, points: points, color: color, lineWidth: isTotal ? 2.4 : 1.7,
                                              smooth: true, note: note))
        }
        let positive = allValues.filter { $0 > 0 }
        let logScale = !allValues.isEmpty && positive.count == allValues.count
            && (positive.max()! / positive.min()!) > 20
        let chart = SVGLineChart(id: "chart-loss", title: "Training losses", xLabel: "iteration", yLabel: "loss",
                                 series: series, width: 700, height: 320, yScale: logScale ? .log : .linear,
                                 includeZero: true, emptyMessage: "no training losses logged", integerX: true)
        return LossChart(svg: chart.svg(), nonFinite: nonFinite, logScale: logScale)
    }

    static func diceChart(_ entries: [TrainingLogEntry], classNames: [Int: String]) -> String {
        let validation = latest(entries, kind: .validation)
        var series: [SVGLineChart.Series] = []
        let meanPoints = validation.compactMap { e in e.meanDice.map { (x: Double(e.iteration), y: $0) } }
        var note: String?
        if let best = meanPoints.max(by: { $0.y < $1.y }) {
            note = "best \(ReportMarkup.fixed(best.y, 3)) @ \(Int(best.x))"
        }
        series.append(SVGLineChart.Series(name: "mean", points: meanPoints, color: ReportPalette.totalColor,
                                          lineWidth: 2.6, markers: true, note: note))
        let keys = Set(validation.flatMap { $0.classDice.keys }).sorted(by: ReportMarkup.classKeyOrder)
        for key in keys {
            let points = validation.compactMap { e in e.classDice[key].map { (x: Double(e.iteration), y: $0) } }
            let color = Int(key).map { ReportPalette.cssLine(forClass: $0) } ?? "#7f7f7f"
            series.append(SVGLineChart.Series(name: ReportMarkup.className(key, classNames), points: points, color: color,
                                              lineWidth: 1.6, markers: true,
                                              note: points.last.map { "last \(ReportMarkup.fixed($0.y, 3))" }))
        }
        let values = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        let low = values.min().map { max(0, min(0.9, floor(($0 - 0.05) * 10) / 10)) } ?? 0
        let chart = SVGLineChart(id: "chart-dice", title: "Validation Dice", xLabel: "iteration", yLabel: "Dice",
                                 series: values.isEmpty ? [] : series, width: 700, height: 300,
                                 yMin: low, yMax: 1, emptyMessage: "no validation logged", integerX: true)
        return chart.svg()
    }

    static func learningRateChart(_ entries: [TrainingLogEntry]) -> String {
        let train = latest(entries, kind: .train)
        let points = train.compactMap { e in e.learningRate.map { (x: Double(e.iteration), y: $0) } }
        let positive = points.filter { $0.y > 0 }
        let logScale = !points.isEmpty && positive.count == points.count && positive.map(\.y).max()! / positive.map(\.y).min()! > 10
        let series = points.isEmpty ? [] : [SVGLineChart.Series(name: "learning rate", points: points, color: "#1f77b4", lineWidth: 1.6,
                                                                note: points.last.map { "last \(ReportMarkup.compact($0.y))" })]
        let chart = SVGLineChart(id: "chart-lr", title: "Learning rate", xLabel: "iteration", yLabel: "lr",
                                 series: series, width: 700, height: 200, yScale: logScale ? .log : .linear,
                                 includeZero: true, emptyMessage: "no learning rate logged", integerX: true)
        return chart.svg()
    }

    /// Headline numbers of a run.
    struct Facts {
        var lastIteration: Int?
        var elapsedSeconds: Double?
        var finalTotal: Double?
        var bestDice: (value: Double, iteration: Int)?
        var lastDice: (value: Double, iteration: Int)?
        var events: [TrainingLogEntry]
    }

    static func facts(_ entries: [TrainingLogEntry]) -> Facts {
        let train = latest(entries, kind: .train)
        let validation = latest(entries, kind: .validation)
        let totals = train.compactMap { $0.losses["total"] }.filter { !isNonFiniteMarker($0) }
        let dice = validation.compactMap { e in e.meanDice.map { (value: $0, iteration: e.iteration) } }
        return Facts(lastIteration: entries.map(\.iteration).max(),
                     elapsedSeconds: entries.compactMap(\.elapsedSeconds).max(),
                     finalTotal: tailMean(totals),
                     bestDice: dice.max { $0.value < $1.value },
                     lastDice: dice.last,
                     events: entries.filter { $0.kind == .event })
    }
}
