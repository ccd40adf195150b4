/// A trainable tensor owned by a module. The reference is stable: optimizers keep the Parameter
/// and update its tensor in place.
public final class Parameter: @unchecked Sendable {
    public var value: Tensor
    /// Frozen parameters stay in the state dict but optimizers skip them.
    public var isFrozen: Bool {
        didSet { _ = try? value.requiresGrad(!isFrozen) }
    }

    public init(_ value: Tensor, frozen: Bool = false) throws {
        self.value = value
        self.isFrozen = frozen
        try value.requiresGrad(!frozen)
    }

    public var grad: Tensor? { get throws { try value.grad } }
}

/// A non-trainable tensor saved with the module (BatchNorm's running statistics).
public final class Buffer: @unchecked Sendable {
    public var value: Tensor
    public init(_ value: Tensor) { self.value = value }
}

/// Base class of network building blocks, in the style of torch.nn.Module.
///
/// Parameters, buffers and sub-modules are found by reflection over stored properties, so a
/// module's parameter paths are its property names: a `Conv3d` stored as `conv1` inside a block
/// stored as `stages[0]` of an `encoder` has the path `encoder.stages.0.conv1.weight`, the key
/// PyTorch's `state_dict()` uses for the same structure. Properties whose names start with `_` or
/// `$` are ignored; override `children()` to name things differently (Sequential does).
open class Module: @unchecked Sendable {
    public private(set) var isTraining = true

    public init() {}

    /// The named members that form the state dict: Parameter, Buffer, Module, optionals of them,
    /// and arrays of modules (named by index).
    open func children() -> [(String, Any)] {
        var result: [(String, Any)] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [[(String, Any)]] = []
        while let m = mirror {
            var level: [(String, Any)] = []
            for child in m.children {
                guard let label = child.label, !label.hasPrefix("_"), !label.hasPrefix("$") else { continue }
                level.append((label, child.value))
            }
            levels.append(level)
            mirror = m.superclassMirror
        }
        // Superclass properties first, as PyTorch registers them in __init__ order.
        for level in levels.reversed() { result += level }
        return result
    }

    /// Parameters with their state-dict paths, in registration order.
    public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        visit(prefix: prefix) { name, item in if let p = item as? Parameter { out.append((name, p)) } }
        return out
    }

    public func parameters() -> [Parameter] { namedParameters().map(\.1) }

    /// Parameters that an optimizer should update.
    public func trainableParameters() -> [Parameter] { parameters().filter { !$0.isFrozen } }

    public func namedBuffers(prefix: String = "") -> [(String, Buffer)] {
        var out: [(String, Buffer)] = []
        visit(prefix: prefix) { name, item in if let b = item as? Buffer { out.append((name, b)) } }
        return out
    }

    /// Sub-modules with their paths ("" for self), depth first.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, value) in children() {
            let path = prefix.isEmpty ? name : "\(prefix).\(name)"
            for module in Module.modules(in: value) {
                out += module.1.namedModules(prefix: module.0.isEmpty ? path : "\(path).\(module.0)")
            }
        }
        return out
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.value.count } }

    /// Sets training mode here and in every sub-module (dropout, batch norm statistics).
    public func train(_ on: Bool = true) {
        for (_, module) in namedModules() { module.isTraining = on }
    }

    public func eval() { train(false) }

    /// Drops every parameter's gradient.
    public func zeroGrad() throws {
        for p in parameters() { try p.value.zeroGrad() }
    }

    /// Moves parameters and buffers to `device` (and/or dtype for floating tensors).
    public func to(_ device: Device) throws {
        try withNoGrad {
            for p in parameters() {
                p.value = try p.value.to(device).detached()
                try p.value.requiresGrad(!p.isFrozen)
            }
            for b in namedBuffers().map(\.1) { b.value = try b.value.to(device) }
        }
    }

    private func visit(prefix: String, _ body: (String, Any) -> Void) {
        for (name, value) in children() {
            let path = prefix.isEmpty ? name : "\(prefix).\(name)"
            if let p = value as? Parameter { body(path, p); continue }
            if let b = value as? Buffer { body(path, b); continue }
            if let p = value as? Parameter? { if let p { body(path, p) }; continue }
            if let b = value as? Buffer? { if let b { body(path, b) }; continue }
            for (sub, module) in Module.modules(in: value) {
                module.visit(prefix: sub.isEmpty ? path : "\(path).\(sub)", body)
            }
        }
    }

    /// The modules a property holds: itself, its optional, or an array's elements by index.
    private static func modules(in value: Any) -> [(String, Module)] {
        if let m = value as? Module { return [("", m)] }
        if let m = value as? Module? { return m.map { [("", $0)] } ?? [] }
        if let ms = value as? [Module] { return ms.enumerated().map { ("\($0.offset)", $0.element) } }
        return []
    }
}

/// A module mapping one tensor to one tensor.
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

// MARK: - state dict

extension Module {
    /// Parameters then buffers by path, like PyTorch's `state_dict()` (same keys, detached tensors).
    public func stateDict() throws -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        var seen = Set<String>()
        for (name, p) in namedParameters() where seen.insert(name).inserted { out.append((name, try p.value.detached())) }
        for (name, b) in namedBuffers() where seen.insert(name).inserted { out.append((name, b.value)) }
        return out
    }

    /// Copies values into this module's parameters and buffers in place. With `strict`, missing or
    /// unexpected keys are an error listing them all; shapes must always match. Nothing is
    /// modified when any check fails.
    public func loadStateDict(_ state: [String: Tensor], strict: Bool = true) throws {
        var targets: [String: Tensor] = [:]
        for (name, p) in namedParameters() { targets[name] = p.value }
        for (name, b) in namedBuffers() { targets[name] = b.value }
        var problems: [String] = []
        let missing = targets.keys.filter { state[$0] == nil }.sorted()
        let unexpected = state.keys.filter { targets[$0] == nil }.sorted()
        if strict {
            if !missing.isEmpty { problems.append("missing keys: \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { problems.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
        }
        for (name, target) in targets.sorted(by: { $0.key < $1.key }) {
            if let source = state[name], source.shape != target.shape {
                problems.append("\(name): shape \(source.shape) in the checkpoint, \(target.shape) in the model")
            }
        }
        if !problems.isEmpty { throw TorchError("cannot load state dict: " + problems.joined(separator: "; ")) }
        try withNoGrad {
            for (name, target) in targets {
                if let source = state[name] { try target.copy_(source) }
            }
        }
    }
}
