import Foundation

/// One line of `RUN/log.jsonl` as the report reads it.
///
/// Kinds (see `TrainingLog`): `train` (iteration, lr, elapsed_s, losses), `validation`
/// (iteration, elapsed_s, dice: {mean, classes}) and `event` (iteration, message). Unknown keys are
/// ignored; values of an unexpected type are left out (`nil` or absent from the dictionaries).
public struct TrainingLogEntry: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case train, validation, event
    }

    public var kind: Kind
    public var iteration: Int
    /// Seconds since the start of training (`elapsed_s`).
    public var elapsedSeconds: Double?
    /// Learning rate (`lr`, train lines).
    public var learningRate: Double?
    /// Loss terms by name (`losses`, train lines), e.g. "sup", "csc", "cac", "total".
    /// `TrainingLog` writes a non-finite loss as -1; such values are kept here as they are.
    public var losses: [String: Double]
    /// Mean validation Dice (`dice.mean`, validation lines).
    public var meanDice: Double?
    /// Validation Dice per class key ("1", "2", …) (`dice.classes`).
    public var classDice: [String: Double]
    /// Free text (`message`, event lines).
    public var message: String?

    public init(kind: Kind, iteration: Int, elapsedSeconds: Double? = nil, learningRate: Double? = nil,
                losses: [String: Double] = [:], meanDice: Double? = nil, classDice: [String: Double] = [:],
                message: String? = nil) {
        self.kind = kind
        self.iteration = iteration
        self.elapsedSeconds = elapsedSeconds
        self.learningRate = learningRate
        self.losses = losses
        self.meanDice = meanDice
        self.classDice = classDice
        self.message = message
    }

    /// Parses JSON Lines. Blank lines, lines that are not a JSON object (a truncated last line of a
    /// killed run), objects without a known `kind` or without an integral `iteration` are skipped.
    public static func parse(jsonLines data: Data) -> [TrainingLogEntry] {
        let decoder = JSONDecoder()
        var entries: [TrainingLogEntry] = []
        for rawLine in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            var line = Data(rawLine)
            while let last = line.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
                line.removeLast()
            }
            if line.isEmpty { continue }
            guard let json = try? ReportJSON.parse(line, decoder: decoder), let entry = TrainingLogEntry(json: json) else { continue }
            entries.append(entry)
        }
        return entries
    }

    init?(json: ReportJSON) {
        guard let kindName = json["kind"]?.string, let kind = Kind(rawValue: kindName),
              let iteration = json["iteration"]?.integer else { return nil }
        self.init(kind: kind, iteration: iteration, elapsedSeconds: json["elapsed_s"]?.number)
        switch kind {
        case .train:
            learningRate = json["lr"]?.number
            losses = json["losses"]?.numericMembers ?? [:]
        case .validation:
            meanDice = json["dice"]?["mean"]?.number
            classDice = json["dice"]?["classes"]?.numericMembers ?? [:]
        case .event:
            message = json["message"]?.string
        }
    }
}
