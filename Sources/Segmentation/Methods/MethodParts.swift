import Torch

/// The saved model of a method made of several U-Nets side by side (Semi-CML's one per modality,
/// CPS's pair): parameters are saved as `networks.0.encoder...`, `networks.1.encoder...`.
public final class NetworkList: Module, @unchecked Sendable {
    public let networks: [UNet]
    public init(_ networks: [UNet]) { self.networks = networks; super.init() }
}

/// Early fusion of chosen modalities: the channels a single network reads, concatenated in the
/// order of `indices`.
public struct ModalityInput: Sendable {
    /// Modalities fed to the network, in channel order.
    public let indices: [Int]
    public let modalityNames: [String]
    /// Who needs them, for the error message ("CPS needs modality MR").
    public let consumer: String

    public init(indices: [Int], modalityNames: [String], consumer: String) {
        self.indices = indices; self.modalityNames = modalityNames; self.consumer = consumer
    }

    /// The network input from per-modality images (nil = absent modality, an error if chosen).
    public func callAsFunction(_ images: [Tensor?]) throws -> Tensor {
        let parts = try indices.map { m -> Tensor in
            guard m < images.count, let x = images[m] else { throw SegmentationError.incompatibleData("\(consumer) needs modality \(modalityNames[m])") }
            return x
        }
        return parts.count == 1 ? parts[0] : try Tensor.cat(parts, dim: 1)
    }

    public func callAsFunction(_ images: [Tensor]) throws -> Tensor { try self(images.map { Optional($0) }) }

    /// The chosen modality names joined by "+" ("CT+MR").
    public var joinedNames: String { indices.map { modalityNames[$0] }.joined(separator: "+") }
}
