import Foundation

/// The metrics of every class of one case. JSON: `{"case": NAME, "classes": {"1": BinaryMetrics, …}}`.
public struct CaseEvaluation: Codable, Equatable, Sendable {
    /// Case identifier (JSON key `"case"`).
    public var caseName: String
    /// Metrics per class; the key is the class label as a string ("1", "2", …) or a class name.
    public var classes: [String: BinaryMetrics]

    public init(caseName: String, classes: [String: BinaryMetrics]) {
        self.caseName = caseName
        self.classes = classes
    }

    /// From `SegmentationMetrics.perClass`: the keys become the labels' decimal strings.
    public init(caseName: String, perClass: [Int: BinaryMetrics]) {
        self.init(caseName: caseName,
                  classes: Dictionary(uniqueKeysWithValues: perClass.map { (String($0.key), $0.value) }))
    }

    enum CodingKeys: String, CodingKey {
        case caseName = "case"
        case classes
    }
}

/// Orders class keys numerically when both are integers ("2" before "10"), otherwise as strings.
func classKeyPrecedes(_ a: String, _ b: String) -> Bool {
    switch (Int(a), Int(b)) {
    case let (x?, y?): return x < y
    case (_?, nil): return true
    case (nil, _?): return false
    default: return a < b
    }
}
