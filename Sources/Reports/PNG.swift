import Foundation
import Essentials
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a PNG could not be encoded or written.
public enum PNGError: Error, CustomStringConvertible, Equatable {
    /// Width or height is not in 1...2^31-1, or the channel count is not 1...4.
    case invalidDimensions(width: Int, height: Int, channels: Int)
    /// `pixels.count` differs from `width * height * channels`.
    case pixelCountMismatch(expected: Int, actual: Int)
    /// zlib's `compress2` failed with this return code.
    case compressionFailed(code: Int32)
    /// Writing or renaming the file failed.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidDimensions(w, h, c):
            return "PNG: invalid image size \(w)x\(h) with \(c) channel(s) (width and height >= 1, 1...4 channels)"
        case let .pixelCountMismatch(expected, actual):
            return "PNG: \(actual) pixel bytes given, width * height * channels = \(expected)"
        case let .compressionFailed(code):
            return "PNG: zlib compress2 failed (code \(code))"
        case let .writeFailed(path, reason):
            return "PNG: cannot write \(path): \(reason)"
        }
    }
}

/// An 8-bit image and its PNG encoding (no dependency beyond zlib).
///
/// Pixels are row-major from the top-left corner, channels interleaved:
/// 1 channel = grayscale, 2 = grayscale + alpha, 3 = RGB, 4 = RGBA (PNG colour types 0, 4, 2, 6).
/// The encoder writes one IHDR, the image data as zlib-compressed IDAT chunks (at most 1 MiB each)
/// and IEND; each scanline gets the PNG filter (None, Sub, Up, Average or Paeth) with the smallest
/// sum of absolute filtered bytes, the usual libpng heuristic. No interlacing, no ancillary chunks,
/// so the output is byte-for-byte deterministic.
public struct PNGImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The 8 bytes every PNG file starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// PNG colour type for the channel count.
    public var colorType: UInt8 {
        switch channels {
        case 1: return 0
        case 2: return 4
        case 3: return 2
        default: return 6
        }
    }

    /// Checks the size and the pixel count.
    public func validate() throws {
        guard (1...Int(Int32.max)).contains(width), (1...Int(Int32.max)).contains(height), (1...4).contains(channels) else {
            throw PNGError.invalidDimensions(width: width, height: height, channels: channels)
        }
        let (rowBytes, o1) = width.multipliedReportingOverflow(by: channels)
        let (expected, o2) = rowBytes.multipliedReportingOverflow(by: height)
        guard !o1, !o2 else { throw PNGError.invalidDimensions(width: width, height: height, channels: channels) }
        guard pixels.count == expected else { throw PNGError.pixelCountMismatch(expected: expected, actual: pixels.count) }
    }

    /// The complete PNG file. `compressionLevel` is zlib's 0 (store) ... 9 (smallest).
    public func encode(compressionLevel: Int = 6) throws -> Data {
        try validate()
        let filtered = filteredScanlines()
        let compressed = try Self.zlibCompress(filtered, level: Int32(max(0, min(9, compressionLevel))))

        var out = Data()
        out.reserveCapacity(compressed.count + 128)
        out.append(contentsOf: Self.signature)
        var header = [UInt8]()
        Self.appendBigEndian(UInt32(width), to: &header)
        Self.appendBigEndian(UInt32(height), to: &header)
        header += [8, colorType, 0, 0, 0]  // bit depth, colour type, deflate, adaptive filtering, no interlace
        Self.appendChunk("IHDR", header, to: &out)
        let maxChunk = 1 << 20
        var start = 0
        repeat {
            let end = min(start + maxChunk, compressed.count)
            Self.appendChunk("IDAT", compressed[start..<end], to: &out)
            start = end
        } while start < compressed.count
        Self.appendChunk("IEND", [UInt8](), to: &out)
        return out
    }

    /// Encodes and writes atomically: a temporary file in the destination's directory, flushed,
    /// then renamed over `url`, so a reader never sees a partial PNG.
    public func write(to url: URL, compressionLevel: Int = 6) throws {
        let data = try encode(compressionLevel: compressionLevel)
        try Self.writeAtomically(data, to: url)
    }

    // MARK: - Filtering

    /// Every scanline prefixed by its filter type byte.
    func filteredScanlines() -> [UInt8] {
        let bpp = channels
        let rowBytes = width * channels
        var out = [UInt8](repeating: 0, count: (rowBytes + 1) * height)
        var candidate = [[UInt8]](repeating: [UInt8](repeating: 0, count: rowBytes), count: 5)
        pixels.withUnsafeBufferPointer { px in
            for y in 0..<height {
                let row = y * rowBytes
                let prior = (y - 1) * rowBytes  // only read when y > 0
                var bestType = 0
                var bestScore = Int.max
                for type in 0..<5 {
                    if y == 0 && (type == 2) { continue }  // Up on the first row equals None
                    var score = 0
                    candidate[type].withUnsafeMutableBufferPointer { c in
                        for x in 0..<rowBytes {
                            let raw = px[row + x]
                            let a = x >= bpp ? px[row + x - bpp] : 0
                            let b = y > 0 ? px[prior + x] : 0
                            let cc = (x >= bpp && y > 0) ? px[prior + x - bpp] : 0
                            let predictor: UInt8
                            switch type {
                            case 0: predictor = 0
                            case 1: predictor = a
                            case 2: predictor = b
                            case 3: predictor = UInt8((Int(a) + Int(b)) / 2)
                            default: predictor = Self.paeth(a, b, cc)
                            }
                            let value = raw &- predictor
                            c[x] = value
                            score += value < 128 ? Int(value) : 256 - Int(value)
                        }
                    }
                    if score < bestScore { bestScore = score; bestType = type }
                }
                let base = y * (rowBytes + 1)
                out[base] = UInt8(bestType)
                candidate[bestType].withUnsafeBufferPointer { c in
                    for x in 0..<rowBytes { out[base + 1 + x] = c[x] }
                }
            }
        }
        return out
    }

    /// The Paeth predictor of the PNG specification.
    @inline(__always) static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    // MARK: - zlib, chunks, files

    static func zlibCompress(_ bytes: [UInt8], level: Int32) throws -> [UInt8] {
        var destLength = compressBound(uLong(bytes.count))
        var dest = [UInt8](repeating: 0, count: Int(destLength))
        let code = dest.withUnsafeMutableBufferPointer { d in
            bytes.withUnsafeBufferPointer { s in
                compress2(d.baseAddress, &destLength, s.baseAddress, uLong(s.count), level)
            }
        }
        guard code == Z_OK else { throw PNGError.compressionFailed(code: code) }
        dest.removeSubrange(Int(destLength)...)
        return dest
    }

    /// zlib's CRC-32 of `bytes`, continuing from `crc` (0 to start).
    static func crc(_ bytes: UnsafeBufferPointer<UInt8>, continuing crc: uLong = 0) -> uLong {
        var value = crc
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, Int(UInt32.max >> 1))
            value = crc32(value, bytes.baseAddress! + offset, uInt(n))
            offset += n
        }
        return value
    }

    static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func appendChunk<C: Collection>(_ type: String, _ data: C, to out: inout Data) where C.Element == UInt8 {
        let typeBytes = Array(type.utf8)
        var lengthBytes = [UInt8]()
        appendBigEndian(UInt32(data.count), to: &lengthBytes)
        out.append(contentsOf: lengthBytes)
        let body = typeBytes + Array(data)
        out.append(contentsOf: body)
        let checksum = body.withUnsafeBufferPointer { crc($0) }
        var crcBytes = [UInt8]()
        appendBigEndian(UInt32(truncatingIfNeeded: checksum), to: &crcBytes)
        out.append(contentsOf: crcBytes)
    }

    static func writeAtomically(_ data: Data, to url: URL) throws {
        do { try AtomicFile.write(data, to: url) } catch {
            throw PNGError.writeFailed(path: url.path, reason: String(describing: error))
        }
    }
}
