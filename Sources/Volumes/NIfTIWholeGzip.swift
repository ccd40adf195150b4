import CDeflate
import Foundation

/// Fast path for reading a .nii.gz: libdeflate inflates the whole file in one call, about twice
/// as fast as zlib's streaming inflate (which remains the general path).
///
/// Taken only when it is safe and exact: the file is one gzip member whose trailer (ISIZE, the
/// inflated size mod 2^32) agrees with the size the already-validated header implies
/// (`vox_offset + voxel bytes`, up to 1 MiB of trailing bytes). The output buffer is sized from the
/// header, never from the trailer alone, so a lying trailer cannot cause a large allocation. Any
/// other situation (several members, a trailer that disagrees, a corrupt or truncated stream)
/// returns nil and the caller falls back to zlib, which reports the precise error or tolerates
/// what nibabel tolerates (e.g. a missing trailer).
enum NIfTIWholeGzip {
    static let maxSurplus = 1 << 20

    static func inflate(_ url: URL, expectedSize: Int) -> MemorySource? {
        guard expectedSize > 0,
              let compressed = try? Data(contentsOf: url, options: .mappedIfSafe), compressed.count >= 18 else { return nil }
        let isize = compressed.withUnsafeBytes { raw -> UInt32 in
            let p = raw.baseAddress! + raw.count - 4
            return UInt32(p.load(fromByteOffset: 0, as: UInt8.self)) | UInt32(p.load(fromByteOffset: 1, as: UInt8.self)) << 8
                | UInt32(p.load(fromByteOffset: 2, as: UInt8.self)) << 16 | UInt32(p.load(fromByteOffset: 3, as: UInt8.self)) << 24
        }
        let surplus = Int(isize &- UInt32(truncatingIfNeeded: expectedSize))
        guard surplus < maxSurplus else { return nil }
        let size = expectedSize + surplus
        guard let decompressor = libdeflate_alloc_decompressor() else { return nil }
        defer { libdeflate_free_decompressor(decompressor) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        var consumed = 0, produced = 0
        let result = compressed.withUnsafeBytes { raw in
            libdeflate_gzip_decompress_ex(decompressor, raw.baseAddress!, raw.count, out.baseAddress!, size, &consumed, &produced)
        }
        guard result == LIBDEFLATE_SUCCESS, consumed == compressed.count, produced == size else {
            out.deallocate()
            return nil
        }
        return MemorySource(url: url, buffer: out)
    }
}

/// Bytes already in memory (owned; freed on deinit).
final class MemorySource: NIfTIByteSource {
    let url: URL
    private let buffer: UnsafeMutableRawBufferPointer
    private var position = 0

    init(url: URL, buffer: UnsafeMutableRawBufferPointer) { self.url = url; self.buffer = buffer }
    deinit { buffer.deallocate() }

    var remaining: Int? { buffer.count - position }
    var remainingBound: Int? { remaining }

    func read(into p: UnsafeMutableRawPointer, count: Int) throws -> Int {
        let n = min(count, buffer.count - position)
        if n > 0 { p.copyMemory(from: buffer.baseAddress! + position, byteCount: n) }
        position += n
        return n
    }

    func skip(_ n: Int) throws -> Int {
        let k = min(n, buffer.count - position)
        position += k
        return k
    }

    func finish() throws {}
    func close() {}
}
