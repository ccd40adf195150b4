import Foundation
import Torch

/// A method's own settings. Each stored property is a top-level key of the run configuration
/// (`config.yaml`, `run.json`'s `config`), so the keys runs have always had (`cmc:`,
/// `cmlStage1Iterations`, ...) stay where they are while the type that reads and checks them
/// belongs to the method. `TrainingConfig` stores one value per registered settings type,
/// decodes each over its defaults (missing keys keep them, unknown keys are errors) and writes
/// them all, so a config file shows every method's settings.
public protocol MethodSettings: Codable, Sendable {
    /// The defaults.
    init()
    /// Checks values a typo could make absurd, with `config` the whole run configuration (e.g.
    /// `iterations`, `unet`); the message names the key.
    func validate(in config: TrainingConfig) throws
}

extension MethodSettings {
    public func validate(in config: TrainingConfig) throws {}
}

/// For a method without settings of its own.
public struct NoMethodSettings: MethodSettings {
    public init() {}
}

/// What a method is built from: the run's settings and the dataset's modalities and classes.
public struct MethodContext {
    public let config: TrainingConfig
    public let modalityNames: [String]
    public let numClasses: Int
    /// `config.inputModalities` resolved: the chosen channel indices, or all of them.
    public let inputModalities: [Int]

    public init(config: TrainingConfig, modalityNames: [String], numClasses: Int) throws {
        let inputs = config.inputModalities.isEmpty ? Array(modalityNames.indices) : config.inputModalities
        guard inputs.allSatisfy({ modalityNames.indices.contains($0) }) else {
            throw SegmentationError.config("inputModalities \(inputs) outside the dataset's \(modalityNames.count) channels")
        }
        self.config = config; self.modalityNames = modalityNames; self.numClasses = numClasses; inputModalities = inputs
    }

    public var unet: UNetConfig { config.unet }
    /// The labelled term every built-in method uses: Dice + CE with the run's Dice options.
    public var supervisedLoss: DiceCELoss { DiceCELoss(dice: DiceLoss(includeBackground: config.diceIncludeBackground, batch: config.diceBatch)) }
    /// The method's settings from the run configuration.
    public func settings<S: MethodSettings>(_ type: S.Type) -> S { config.settings(type) }
}

/// One registry line: a method's name, what `--help` says about it, its settings type and how to
/// build it.
public struct MethodDefinition: @unchecked Sendable {
    public let name: String
    /// One line for `--help`.
    public let summary: String
    public let settingsType: any MethodSettings.Type
    let build: (MethodContext) throws -> SegmentationMethod

    public init<S: MethodSettings>(name: String, summary: String, settings: S.Type,
                                   build: @escaping (MethodContext, S) throws -> SegmentationMethod) {
        self.name = name; self.summary = summary; settingsType = settings
        self.build = { context in try build(context, context.settings(S.self)) }
    }

    /// A method without settings of its own.
    public init(name: String, summary: String, build: @escaping (MethodContext) throws -> SegmentationMethod) {
        self.init(name: name, summary: summary, settings: NoMethodSettings.self) { context, _ in try build(context) }
    }

    /// Builds the method for `context`, checking that it calls itself by its registered name.
    public func make(_ context: MethodContext) throws -> SegmentationMethod {
        let method = try build(context)
        guard method.name == name else { throw SegmentationError.invalidMethod("method registered as '\(name)' calls itself '\(method.name)'") }
        return method
    }

    /// The top-level configuration keys its settings own.
    var settingsKeys: [String] { MethodRegistry.keys(of: settingsType) }
}

/// The methods `concord` knows, by name. Adding a method is one file (the method, its settings)
/// plus one line in `builtIn`; a program or test can also `register` its own.
public enum MethodRegistry {
    static let builtIn: [MethodDefinition] = [
        CMCMethod.definition,
        SemiCMLMethod.definition,
        MeanTeacherMethod.definition,
        CrossPseudoSupervisionMethod.definition,
        SupervisedMethod.definition,
        LateFusionMethod.definition,
    ]

    private static let lock = NSLock()
    nonisolated(unsafe) private static var registered: [MethodDefinition] = builtIn
    /// Guards `keyCache` only (separate from `lock`, so key lookups may happen while registering).
    private static let keyLock = NSLock()
    nonisolated(unsafe) private static var keyCache: [ObjectIdentifier: [String]] = [:]

    /// Every method, in registration order (the built-in ones first).
    public static var all: [MethodDefinition] { lock.withLock { registered } }
    public static var names: [String] { all.map(\.name) }

    public static func definition(named name: String) -> MethodDefinition? { all.first { $0.name == name } }

    /// Adds a method. Its name must be new, and its settings keys must not be taken by the shared
    /// settings or by another settings type.
    public static func register(_ definition: MethodDefinition) throws {
        // The check and the append are one critical section, so two registrations cannot both
        // pass the check.
        let shared = Set(TrainingConfig.sharedKeys)
        try lock.withLock {
            guard !registered.contains(where: { $0.name == definition.name }) else {
                throw SegmentationError.invalidMethod("a method named '\(definition.name)' is already registered")
            }
            let own = ObjectIdentifier(definition.settingsType)
            var taken = shared
            for other in registered where ObjectIdentifier(other.settingsType) != own {
                taken.formUnion(other.settingsKeys)
            }
            let clashes = definition.settingsKeys.filter(taken.contains)
            guard clashes.isEmpty else {
                throw SegmentationError.invalidMethod("method '\(definition.name)': settings key(s) \(clashes.joined(separator: ", ")) already used by another setting")
            }
            registered.append(definition)
        }
    }

    /// The method a configuration names, built for a dataset.
    public static func make(config: TrainingConfig, modalityNames: [String], numClasses: Int) throws -> SegmentationMethod {
        guard let definition = definition(named: config.method) else { throw SegmentationError.unknownMethod(name: config.method, known: names) }
        return try definition.make(MethodContext(config: config, modalityNames: modalityNames, numClasses: numClasses))
    }

    /// For `--help`: one "name: summary" line per method.
    public static var helpText: String { all.map { "\($0.name): \($0.summary)" }.joined(separator: "; ") }

    /// The distinct settings types of the registered methods, in registration order.
    static var settingsTypes: [any MethodSettings.Type] {
        var seen = Set<ObjectIdentifier>(), out: [any MethodSettings.Type] = []
        for d in all where seen.insert(ObjectIdentifier(d.settingsType)).inserted { out.append(d.settingsType) }
        return out
    }

    /// The keys a settings type writes (those of its defaults).
    static func keys(of type: any MethodSettings.Type) -> [String] {
        let id = ObjectIdentifier(type)
        if let cached = keyLock.withLock({ keyCache[id] }) { return cached }
        let object = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(type.init()))) as? [String: Any] ?? [:]
        let keys = object.keys.sorted()
        keyLock.withLock { keyCache[id] = keys }
        return keys
    }
}
