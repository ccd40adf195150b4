import Dispatch
import Essentials
import Foundation

/// Surface voxels of a binary mask, as medpy extracts them:
/// `mask ^ scipy.ndimage.binary_erosion(mask, generate_binary_structure(ndim, 1), iterations=1)`.
///
/// A foreground voxel is a surface voxel when at least one of its face neighbours (6-connected in 3D,
/// 4-connected in 2D) is background or lies outside the volume (scipy's `border_value=0`), so object
/// voxels on the volume border are always surface voxels.
public enum MaskSurface {
    /// The surface of a 0/non-0 mask with the given 1- to 3-axis shape (x fastest), as a 0/1 mask.
    public static func surface(of mask: [UInt8], shape: [Int]) -> [UInt8] {
        let grid = Grid3(shape)
        let binary = mask.map { $0 != 0 ? UInt8(1) : 0 }
        return binary.withUnsafeBufferPointer { surfaceMask($0, grid: grid) }
    }

    /// The surface of a boolean mask with the given 1- to 3-axis shape (x fastest).
    public static func surface(of mask: [Bool], shape: [Int]) -> [Bool] {
        surface(of: mask.map { $0 ? UInt8(1) : 0 }, shape: shape).map { $0 != 0 }
    }
}

/// Surface of a 0/1 mask laid out on `grid` (see `MaskSurface`), parallel over z slices.
func surfaceMask(_ mask: UnsafeBufferPointer<UInt8>, grid: Grid3) -> [UInt8] {
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz)
    precondition(mask.count == grid.count)
    // Axes that are padding (a 2D mask seen as nx × ny × 1) have no border along them.
    let checkY = grid.axes >= 2, checkZ = grid.axes >= 3
    let sy = nx, sz = nx * ny
    let chunks = Parallel.chunkCount(nz)
    return [UInt8](unsafeUninitializedCapacity: grid.count) { out, initialized in
        Parallel.forEachChunk(chunks, chunks: chunks) { c, _ in
            let k0 = c * nz / chunks, k1 = (c + 1) * nz / chunks
            for k in k0..<k1 {
                let zInterior = !checkZ || (k > 0 && k < nz - 1)
                for j in 0..<ny {
                    let yInterior = !checkY || (j > 0 && j < ny - 1)
                    let base = nx * (j + ny * k)
                    for i in 0..<nx {
                        let idx = base + i
                        guard mask[idx] != 0 else { out[idx] = 0; continue }
                        var interior = zInterior && yInterior && i > 0 && i < nx - 1
                            && mask[idx - 1] != 0 && mask[idx + 1] != 0
                        if interior && checkY { interior = mask[idx - sy] != 0 && mask[idx + sy] != 0 }
                        if interior && checkZ { interior = mask[idx - sz] != 0 && mask[idx + sz] != 0 }
                        out[idx] = interior ? 0 : 1
                    }
                }
            }
        }
        initialized = grid.count
    }
}

/// Flat indices of the nonzero entries of `mask`, in increasing order.
func nonzeroIndices(_ mask: [UInt8]) -> [Int] {
    var result: [Int] = []
    mask.withUnsafeBufferPointer { m in
        for idx in 0..<m.count where m[idx] != 0 { result.append(idx) }
    }
    return result
}
