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
