import Torch
import Volumes

// Volumes and tensors share one memory layout: voxel (i, j, k) of a (nx, ny, nz) volume is element
// [k, j, i] of a C-contiguous (D, H, W) = (nz, ny, nx) tensor, so conversion is a copy, never a
// transpose.

extension Volume {
    /// (nz, ny, nx) float32.
    public func tensor() throws -> Tensor { try Tensor(voxels, shape: shape.reversed()) }

    /// (nz, ny, nx) int64 class map (values rounded).
    public func labelTensor() throws -> Tensor { try Tensor(voxels.map { Int64($0.rounded()) }, shape: shape.reversed()) }

    /// A volume with this one's geometry holding a (nz, ny, nx) tensor's values.
    public func replacingVoxels(with t: Tensor) throws -> Volume {
        guard t.shape == shape.reversed() else { throw TorchError("tensor \(t.shape) does not fit volume \(shape)") }
        var v = self
        v.voxels = try t.toArray(Float.self)
        return v
    }
}

extension PreparedCase {
    /// Stacks preprocessed channels (one grid) into (M, D, H, W), the label into (D, H, W).
    public init(name: String, channels: [Volume], present: [Bool], label: Volume?) throws {
        guard let first = channels.first, channels.allSatisfy({ $0.shape == first.shape }) else {
            throw SegmentationError.incompatibleData("\(name): preprocessed channels do not share one grid")
        }
        self.init(name: name, images: try Tensor.stack(channels.map { try $0.tensor() }, dim: 0),
                  label: try label?.labelTensor(), present: present)
    }
}
