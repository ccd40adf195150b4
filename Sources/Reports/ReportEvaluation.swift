import Foundation

/// Why a report could not be built.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    /// The evaluation JSON is not `{"cases": [{"case": …, "classes": {…}}, …]}`.
    case invalidEvaluation(String)
    /// A case's volumes cannot be shown together.
    case invalidCase(String)
    /// An input file (the evaluation JSON) could not be read.
    case cannotRead(path: String)

    public var description: String {
        switch self {
        case let .invalidEvaluation(why): return "report: unreadable evaluation JSON: \(why)"
        case let .invalidCase(why): return "report: \(why)"
        case let .cannotRead(path): return "report: \(path): cannot read"
        }
    }
}

/// The per-case metrics of a `concord evaluate` JSON (`cases` only; `summary` is recomputed here so
/// that the page never depends on how it was summarised).
///
/// Statistics follow `Metrics.ClassSummary`: mean and population standard deviation over the cases
/// where a value is defined; a distance that is `null` (or absent) is *missing* (exactly one of
/// prediction and reference is empty) and counted, never averaged as 0.
public struct ReportEvaluation: Equatable, Sendable {
    /// Metrics shown, in order: overlap, then surface distances in mm.
    public static let metricKeys = ["dice", "jaccard", "hd95", "asd", "assd"]
    public static let distanceKeys: Set<String> = ["hd95", "asd", "assd"]
    public static let metricTitles = ["dice": "Dice", "jaccard": "Jaccard", "hd95": "HD95 (mm)", "asd": "ASD (mm)", "assd": "ASSD (mm)"]

    public struct CaseResult: Equatable, Sendable {
        public var name: String
        /// Class key ("1", …) -> metric key -> value (nil = missing).
        public var classes: [String: [String: Double?]]

        public init(name: String, classes: [String: [String: Double?]]) {
            self.name = name
            self.classes = classes
        }
    }

    public struct Statistic: Equatable, Sendable {
        public var mean: Double?
        public var std: Double?
        /// Cases over which the metric is defined.
        public var count: Int

        public init(_ values: [Double?]) {
            let defined = values.compactMap { $0 }.filter(\.isFinite)
            count = defined.count
            guard !defined.isEmpty else { mean = nil; std = nil; return }
            let m = defined.reduce(0, +) / Double(defined.count)
            mean = m
            std = (defined.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(defined.count)).squareRoot()
        }
    }

    public struct ClassStatistics: Equatable, Sendable {
        public var key: String
        /// Cases reporting this class.
        public var cases: Int
        public var metrics: [String: Statistic]
        /// Cases with at least one missing distance.
        public var missingDistances: Int
    }

    public var cases: [CaseResult]

    public init(cases: [CaseResult]) {
        self.cases = cases
    }

    /// Parses the JSON of `concord evaluate`. Unknown keys are ignored; numbers may be `null`.
    public init(json data: Data) throws {
        let root: ReportJSON
        do { root = try ReportJSON.parse(data) } catch {
            throw ReportError.invalidEvaluation("not JSON (\(error.localizedDescription))")
        }
        guard let items = root["cases"]?.array else { throw ReportError.invalidEvaluation("no \"cases\" array") }
        var cases: [CaseResult] = []
        for (index, item) in items.enumerated() {
            guard let name = item["case"]?.string ?? item["case"]?.number.map({ ReportMarkup.compact($0, significant: 12) }) else {
                throw ReportError.invalidEvaluation("case #\(index + 1) has no \"case\" name")
            }
            guard let classes = item["classes"]?.object else {
                throw ReportError.invalidEvaluation("case \(name) has no \"classes\" object")
            }
            var perClass: [String: [String: Double?]] = [:]
            for (key, metrics) in classes {
                var values: [String: Double?] = [:]
                for metric in Self.metricKeys { values[metric] = .some(metrics[metric]?.number) }
                perClass[key] = values
            }
            cases.append(CaseResult(name: name, classes: perClass))
        }
        self.init(cases: cases)
    }

    /// Every class key of any case, numerically ordered.
    public var classKeys: [String] {
        Array(Set(cases.flatMap { $0.classes.keys })).sorted(by: ReportMarkup.classKeyOrder)
    }

    /// Per-class statistics, classes numerically ordered.
    public func statistics() -> [ClassStatistics] {
        classKeys.map { key in
            let rows = cases.compactMap { $0.classes[key] }
            var metrics: [String: Statistic] = [:]
            for metric in Self.metricKeys { metrics[metric] = Statistic(rows.map { $0[metric] ?? nil }) }
            let missing = rows.filter { row in Self.distanceKeys.contains { (row[$0] ?? nil) == nil } }.count
            return ClassStatistics(key: key, cases: rows.count, metrics: metrics, missingDistances: missing)
        }
    }

    /// Mean over classes of the per-class mean Dice (nil when there is none).
    public var meanDice: Double? {
        let means = statistics().compactMap { $0.metrics["dice"]?.mean }
        return means.isEmpty ? nil : means.reduce(0, +) / Double(means.count)
    }
}
