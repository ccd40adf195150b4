import Torch

/// Dice per foreground class of a hard prediction against a label map, both (spatial...) int64.
/// Both empty counts as 1 (docs/methods.md, section 3).
public func diceScores(prediction: Tensor, label: Tensor, numClasses: Int) throws -> [Int: Double] {
    var out: [Int: Double] = [:]
    for k in 1..<numClasses {
        let p = try prediction.eq(Double(k)).to(.float32), g = try label.eq(Double(k)).to(.float32)
        let inter = try (p * g).sum().item(), total = try p.sum().item() + g.sum().item()
        out[k] = total == 0 ? 1 : 2 * inter / total
    }
    return out
}

/// Sliding-window validation of a method on labelled cases: per output head, the mean over cases
/// of the per-class Dice.
public func validate(method: SegmentationMethod, cases: [PreparedCase], inference: SlidingWindowInference,
                     numClasses: Int) throws -> [[Int: Double]?] {
    let sums = try validationSums(method: method, cases: cases, inference: inference, numClasses: numClasses)
    return sums.heads.map { $0?.mapValues { $0 / Double(sums.cases) } }
}

/// Per output head, the per-class Dice summed over the labelled `cases` (nil for a head the method
/// did not produce), and how many cases were scored: what a rank of a data-parallel run
/// contributes to a validation sharded over the ranks.
public func validationSums(method: SegmentationMethod, cases: [PreparedCase], inference: SlidingWindowInference,
                           numClasses: Int) throws -> (heads: [[Int: Double]?], cases: Int) {
    method.model.eval()
    defer { method.model.train() }
    var sums: [[Int: Double]?] = []
    var scored = 0
    for c in cases {
        guard let label = c.label else { continue }
        scored += 1
        let heads = try inference.run(images: c.images, present: c.present) { try method.predict($0) }
        if sums.isEmpty { sums = Array(repeating: nil, count: heads.count) }
        for (h, probabilities) in heads.enumerated() {
            guard let probabilities else { continue }
            let scores = try diceScores(prediction: probabilities.argmax(dim: 0), label: label, numClasses: numClasses)
            sums[h] = (sums[h] ?? [:]).merging(scores, uniquingKeysWith: +)
        }
    }
    return (sums, scored)
}

extension Dictionary where Key == Int, Value == Double {
    /// Mean over classes.
    public var meanValue: Double { isEmpty ? 0 : values.reduce(0, +) / Double(count) }
}
