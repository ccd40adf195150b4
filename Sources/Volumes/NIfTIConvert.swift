import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Voxel conversion kernels: raw file datatypes <-> Float, with byte swapping and scl_slope/scl_inter.
// Tight loops over unsafe buffers, no allocation; each generic kernel is specialised per type.

enum NIfTIConvert {
    /// True when data of `order` must be byte-swapped on this machine.
    static func needsSwap(_ order: NIfTIHeader.ByteOrder) -> Bool {
        (order == .big) != (UInt16(1).bigEndian == 1)
    }

    /// Converts `count` raw voxels of `type` at `src` (aligned to the type) into Float at `dst`,
    /// byte-swapping when `swap`, then applying `scaling` (value * slope + inter, in Double, as
    /// nibabel's get_fdata does before the result is narrowed to Float).
    static func toFloat(_ type: NIfTIDataType, src: UnsafeRawPointer, dst: UnsafeMutablePointer<Float>,
                        count: Int, swap: Bool, scaling: (slope: Double, inter: Double)?) {
        switch type {
        case .uint8: integers(UInt8.self, src, dst, count, swap, scaling)
        case .int8: integers(Int8.self, src, dst, count, swap, scaling)
        case .int16: integers(Int16.self, src, dst, count, swap, scaling)
        case .uint16: integers(UInt16.self, src, dst, count, swap, scaling)
        case .int32: integers(Int32.self, src, dst, count, swap, scaling)
        case .uint32: integers(UInt32.self, src, dst, count, swap, scaling)
        case .float32:
            if src != UnsafeRawPointer(dst) {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
            }
            float32InPlace(dst, count: count, swap: swap, scaling: scaling)
        case .float64: float64s(src, dst, count, swap, scaling)
        }
    }

    @inline(__always)
    private static func integers<T: FixedWidthInteger>(_: T.Type, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>,
                                                       _ n: Int, _ swap: Bool, _ scaling: (slope: Double, inter: Double)?) {
        let s = src.assumingMemoryBound(to: T.self)
        if let (m, b) = scaling {
            if swap {
                for i in 0..<n { dst[i] = Float(Double(s[i].byteSwapped) * m + b) }
            } else {
                for i in 0..<n { dst[i] = Float(Double(s[i]) * m + b) }
            }
        } else {
            if swap {
                for i in 0..<n { dst[i] = Float(s[i].byteSwapped) }
            } else {
                for i in 0..<n { dst[i] = Float(s[i]) }
            }
        }
    }

    /// Byte swap and/or scale float32 voxels where they lie.
    static func float32InPlace(_ p: UnsafeMutablePointer<Float>, count n: Int, swap: Bool, scaling: (slope: Double, inter: Double)?) {
        if swap {
            let u = UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { u[i] = u[i].byteSwapped }
        }
        if let (m, b) = scaling, !(m == 1 && b == 0) {
            for i in 0..<n { p[i] = Float(Double(p[i]) * m + b) }
        }
    }

    @inline(__always)
    private static func float64s(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                                 _ swap: Bool, _ scaling: (slope: Double, inter: Double)?) {
        let s = src.assumingMemoryBound(to: UInt64.self)
        let (m, b) = scaling ?? (1, 0)
        let scaled = !(m == 1 && b == 0)
        switch (swap, scaled) {
        case (false, false): for i in 0..<n { dst[i] = Float(Double(bitPattern: s[i])) }
        case (true, false): for i in 0..<n { dst[i] = Float(Double(bitPattern: s[i].byteSwapped)) }
        case (false, true): for i in 0..<n { dst[i] = Float(Double(bitPattern: s[i]) * m + b) }
        case (true, true): for i in 0..<n { dst[i] = Float(Double(bitPattern: s[i].byteSwapped) * m + b) }
        }
    }

    // MARK: - Writing

    /// The first voxel of `src` that `type` cannot hold after rounding to nearest (ties to even,
    /// numpy's rint): NaN, infinities and values outside the type's range. nil when all fit.
    static func firstUnrepresentable(_ type: NIfTIDataType, _ src: UnsafeBufferPointer<Float>) -> Int? {
        guard let range = type.integerRange else { return nil }
        let lo = range.lowerBound, hi = range.upperBound
        @inline(__always) func fits(_ v: Float) -> Bool {
            let r = roundEven(v)
            return r >= lo && r <= hi  // false for NaN; Double compares exactly with 2^32 - 1
        }
        var bad: UInt8 = 0
        for v in src { bad |= fits(v) ? 0 : 1 }
        return bad != 0 ? src.firstIndex { !fits($0) } : nil
    }

    /// `v` rounded to the nearest integer, ties to even (numpy's rint), as a Double: adding and
    /// subtracting 1.5 * 2^52 rounds in the FPU's default mode; exact for |v| < 2^51 (every Float
    /// in an integer datatype's range), and values beyond that are far outside every range anyway.
    @inline(__always) static func roundEven(_ v: Float) -> Double {
        (Double(v) + 0x1.8p52) - 0x1.8p52
    }

    /// Converts Float voxels to little-endian `type` at `dst` (rounding integers to nearest, ties
    /// to even). Integer values must have passed `firstUnrepresentable`.
    static func fromFloat(_ type: NIfTIDataType, src: UnsafePointer<Float>, dst: UnsafeMutableRawPointer, count n: Int) {
        switch type {
        case .uint8: store(UInt8.self, src, dst, n)
        case .int8: store(Int8.self, src, dst, n)
        case .int16: store(Int16.self, src, dst, n)
        case .uint16: store(UInt16.self, src, dst, n)
        case .int32: store(Int32.self, src, dst, n)
        case .uint32: store(UInt32.self, src, dst, n)
        case .float32:
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { d[i] = src[i].bitPattern.littleEndian }
        case .float64:
            let d = dst.assumingMemoryBound(to: UInt64.self)
            for i in 0..<n { d[i] = Double(src[i]).bitPattern.littleEndian }
        }
    }

    @inline(__always)
    private static func store<T: FixedWidthInteger>(_: T.Type, _ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let d = dst.assumingMemoryBound(to: T.self)
        for i in 0..<n { d[i] = T(truncatingIfNeeded: Int64(roundEven(src[i]))).littleEndian }
    }

    /// Whether any value is NaN or infinite (exponent bits all set).
    static func hasNonFinite(_ p: UnsafeBufferPointer<Float>) -> Bool {
        var i = 0
        let n = p.count
        while i < n {
            let end = min(n, i + 4096)
            var hit: UInt32 = 0
            for k in i..<end { hit |= (p[k].bitPattern & 0x7f80_0000) == 0x7f80_0000 ? 1 : 0 }
            if hit != 0 { return true }
            i = end
        }
        return false
    }

    /// Asks Linux for transparent huge pages on a fresh large buffer before it is first written
    /// (as numpy does for big arrays): faulting in 2 MiB pages instead of 4 KiB ones makes filling
    /// a new 32 MiB volume several times faster. No-op elsewhere and below 4 MiB.
    static func adviseHugePages(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        #if os(Linux)
        guard byteCount >= 4 << 20 else { return }
        let huge: UInt = 2 << 20
        let start = (UInt(bitPattern: p) + huge - 1) & ~(huge - 1)
        let end = (UInt(bitPattern: p) + UInt(byteCount)) & ~(huge - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_HUGEPAGE) }
        #endif
    }
}
