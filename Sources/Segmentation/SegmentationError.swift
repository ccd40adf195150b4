/// What goes wrong in Segmentation that is not a tensor or libtorch failure (those stay
/// `TorchError`): settings, methods, runs and checkpoints, datasets, labels and folders, and
/// training itself. A caller matches the case; the description is the message a person reads,
/// naming the file or setting and the problem.
public enum SegmentationError: Error, Equatable, CustomStringConvertible {
    /// A setting has a bad value, is unknown, or a settings file is not settings. `source` says
    /// where it came from ("config" for a run configuration, a file path, a settings key).
    case invalidSettings(source: String, problem: String)
    /// A method name no registered method has.
    case unknownMethod(name: String, known: [String])
    /// A method definition breaks the contract (duplicate name, settings keys taken, reserved
    /// checkpoint keys, a hook used out of place).
    case invalidMethod(String)
    /// The data does not fit the model: a required modality absent, too few modalities, a head
    /// without prediction.
    case incompatibleData(String)
    /// A run folder or checkpoint is missing, unreadable, or does not belong to this run.
    case invalidRun(path: String, problem: String)
    /// A dataset folder or its split file is inconsistent.
    case invalidDataset(path: String, problem: String)
    /// A label volume holds values that are not labels, or does not fit its image.
    case invalidLabels(file: String, problem: String)
    /// A folder of predictions or references is missing or does not match the other.
    case invalidFolder(path: String, problem: String)
    /// The requested device cannot be used here.
    case unavailableDevice(String)
    /// A loss became NaN or infinite; `terms` lists the values ("sup=nan cac=0.3").
    case nonFiniteLoss(iteration: Int, terms: String)
    /// A model or head that the export cannot write (unsupported layer, method or head).
    case unsupportedExport(String)
    /// A data-parallel launch that cannot start: bad launcher variables, a mismatch between ranks.
    case launch(String)
    /// A data-parallel run that stopped because another rank failed or stopped answering.
    case distributed(rank: Int, problem: String)

    public var description: String {
        switch self {
        case let .invalidSettings(source, problem): return "\(source): \(problem)"
        case let .unknownMethod(name, known): return "config: method must be one of \(known.joined(separator: ", ")), got '\(name)'"
        case let .invalidMethod(message): return message
        case let .incompatibleData(message): return message
        case let .invalidRun(path, problem): return "\(path): \(problem)"
        case let .invalidDataset(path, problem): return "\(path): \(problem)"
        case let .invalidLabels(file, problem): return "\(file): \(problem)"
        case let .invalidFolder(path, problem): return "\(path): \(problem)"
        case let .unavailableDevice(message): return message
        case let .nonFiniteLoss(iteration, terms): return "loss became non-finite at iteration \(iteration): \(terms); lower the learning rate"
        case let .unsupportedExport(message): return message
        case let .launch(message): return "distributed launch: \(message)"
        case let .distributed(rank, problem): return "rank \(rank): \(problem)"
        }
    }

    /// A problem with the run configuration ("config: ...").
    public static func config(_ problem: String) -> SegmentationError { .invalidSettings(source: "config", problem: problem) }
}
