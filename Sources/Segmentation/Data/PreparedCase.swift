import Torch

/// A case ready for the network: preprocessed channels on one grid, as tensors.
///
/// `images` is (M, D, H, W) float32 — one channel per modality, in the dataset's channel order;
/// `present[m]` says whether modality m was acquired (absent ones are zeros). `label` is
/// (D, H, W) int64 or nil for unlabelled cases. D, H, W are the NIfTI k, j, i axes (see Volume).
public struct PreparedCase: @unchecked Sendable {
    public var name: String
    public var images: Tensor
    public var label: Tensor?
    public var present: [Bool]

    public init(name: String, images: Tensor, label: Tensor?, present: [Bool]? = nil) {
        self.name = name; self.images = images; self.label = label
        self.present = present ?? Array(repeating: true, count: images.size(0))
    }

    public var modalities: Int { images.size(0) }
    public var spatialShape: [Int] { Array(images.shape.dropFirst()) }
}

/// A small deterministic generator (SplitMix64) for sampling decisions: the batch of iteration i
/// is a pure function of (seed, i), so a resumed run draws exactly the batches it would have.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public init(seed: UInt64, stream: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 &* (stream &+ 1) ; _ = next() }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
