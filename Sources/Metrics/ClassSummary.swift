import Foundation

/// Mean, standard deviation and number of the cases over which one metric is defined.
///
/// `std` is the population standard deviation (numpy's default `ddof=0`). With `count` 0, `mean`
/// and `std` are `nil` (JSON `null`).
public struct MetricSummary: Codable, Equatable, Sendable {
    public var mean: Double?
    public var std: Double?
    public var count: Int

    public init(mean: Double?, std: Double?, count: Int) {
        self.mean = mean
        self.std = std
        self.count = count
    }

    /// Summary of the defined values; `nil` entries (missing distances) are left out and not counted.
    public init(_ values: [Double?]) {
        let defined = values.compactMap { $0 }
        count = defined.count
        guard !defined.isEmpty else { mean = nil; std = nil; return }
        let m = Metrics.mean(defined)
        mean = m
        std = Metrics.mean(defined.map { ($0 - m) * ($0 - m) }).squareRoot()
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mean = try c.decodeIfPresent(Double.self, forKey: .mean)
        std = try c.decodeIfPresent(Double.self, forKey: .std)
        count = try c.decode(Int.self, forKey: .count)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeOptional(mean, forKey: .mean)
        try c.encodeOptional(std, forKey: .std)
        try c.encode(count, forKey: .count)
    }

    enum CodingKeys: String, CodingKey { case mean, std, count }
}

/// Summary of one class over the cases of a report.
///
/// Each metric is summarised over the cases where it is defined: Dice and Jaccard over every case
/// that has the class; distances over the cases where they are not missing (a case with both masks
/// empty contributes distance 0). The counts say how many cases fall under each edge case, so
/// missing distances are never silently dropped.
public struct ClassSummary: Codable, Equatable, Sendable {
    /// Number of cases that report this class.
    public var cases: Int
    public var dice: MetricSummary
    public var jaccard: MetricSummary
    public var hd95: MetricSummary
    public var hd: MetricSummary
    public var asd: MetricSummary
    public var assd: MetricSummary
    /// Cases whose prediction is empty (including cases where the reference is empty too).
    public var emptyPrediction: Int
    /// Cases whose reference is empty (including cases where the prediction is empty too).
    public var emptyReference: Int
    /// Cases where both are empty (Dice 1, distances 0).
    public var bothEmpty: Int
    /// Cases where exactly one is empty, so that the distances are missing (Dice 0).
    public var missingDistances: Int

    public init(_ metrics: [BinaryMetrics]) {
        cases = metrics.count
        dice = MetricSummary(metrics.map { $0.dice })
        jaccard = MetricSummary(metrics.map { $0.jaccard })
        hd95 = MetricSummary(metrics.map { $0.hd95 })
        hd = MetricSummary(metrics.map { $0.hd })
        asd = MetricSummary(metrics.map { $0.asd })
        assd = MetricSummary(metrics.map { $0.assd })
        emptyPrediction = metrics.filter { $0.predictionEmpty }.count
        emptyReference = metrics.filter { $0.referenceEmpty }.count
        bothEmpty = metrics.filter { $0.predictionEmpty && $0.referenceEmpty }.count
        missingDistances = metrics.filter { $0.distancesMissing }.count
    }

    enum CodingKeys: String, CodingKey {
        case cases, dice, jaccard, hd95, hd, asd, assd
        case emptyPrediction = "empty_prediction"
        case emptyReference = "empty_reference"
        case bothEmpty = "both_empty"
        case missingDistances = "missing_distances"
    }
}

/// Per-case metrics of a set of cases and their per-class summary.
///
/// JSON: `{"cases": [CaseEvaluation, …], "summary": {"1": ClassSummary, …}}`.
public struct EvaluationReport: Codable, Equatable, Sendable {
    public var cases: [CaseEvaluation]
    public var summary: [String: ClassSummary]

    public init(cases: [CaseEvaluation], summary: [String: ClassSummary]) {
        self.cases = cases
        self.summary = summary
    }

    /// A report whose summary is computed from `cases`.
    public init(cases: [CaseEvaluation]) {
        self.init(cases: cases, summary: EvaluationReport.summarize(cases))
    }

    /// Per class (every class key that occurs in some case), the summary over the cases that have it.
    public static func summarize(_ cases: [CaseEvaluation]) -> [String: ClassSummary] {
        var byClass: [String: [BinaryMetrics]] = [:]
        for evaluation in cases {
            for (key, metrics) in evaluation.classes { byClass[key, default: []].append(metrics) }
        }
        return byClass.mapValues { ClassSummary($0) }
    }
}
