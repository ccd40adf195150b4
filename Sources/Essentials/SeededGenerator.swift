import Foundation

/// Concord's one deterministic random number generator (phantom, splits, training batches,
/// augmentation, simulated misalignment): xoshiro256** (Blackman & Vigna), seeded through
/// SplitMix64. Never the system generator, so a seed gives the same numbers on every platform and
/// Swift version.
///
/// A generator is *keyed*: it is identified by a seed and a stream path (e.g. `[caseIndex,
/// purpose]` or `[purpose, iteration]`), and every path gives an independent sequence. So case 7 of
/// a phantom does not depend on how many cases are generated, channel 2 does not change the numbers
/// drawn for channels 0 and 1, and the batch of iteration i is a pure function of (seed, i).
///
/// Bounded integers come from `below(_:)`, which is unbiased (never `next() % n`).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator for `seed` and the stream `path` (empty path = the seed's main stream).
    public init(seed: UInt64, stream path: [UInt64]) {
        var key = SeededGenerator.mix(seed ^ 0x6A09_E667_F3BC_C908)
        for (depth, p) in path.enumerated() {
            // Fold each path element in with a depth-dependent constant so [a, b] != [b, a].
            key = SeededGenerator.mix(key ^ SeededGenerator.mix(p &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(depth + 1)))
        }
        var sm = key
        s0 = SeededGenerator.splitMix(&sm)
        s1 = SeededGenerator.splitMix(&sm)
        s2 = SeededGenerator.splitMix(&sm)
        s3 = SeededGenerator.splitMix(&sm)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }   // the all-zero state is the one fixed point of xoshiro
    }

    /// Convenience: a stream keyed by integers.
    public init(seed: UInt64, stream path: Int...) {
        self.init(seed: seed, stream: path.map { UInt64(bitPattern: Int64($0)) })
    }

    /// A stream key spelled in up to 8 ASCII characters (e.g. `key("BATCH")`), to name the purpose
    /// of a stream readably: the characters' bytes, big-endian.
    public static func key(_ name: StaticString) -> UInt64 {
        precondition(name.utf8CodeUnitCount <= 8, "a stream key has at most 8 characters")
        var k: UInt64 = 0
        for i in 0..<name.utf8CodeUnitCount { k = k << 8 | UInt64(name.utf8Start[i]) }
        return k
    }

    /// SplitMix64 step (Steele, Lea & Flood).
    @inline(__always) static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        return mix(x)
    }

    /// SplitMix64's finaliser: a bijective 64-bit mixer.
    @inline(__always) static func mix(_ v: UInt64) -> UInt64 {
        var z = v
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    @inline(__always) public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = SeededGenerator.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always) public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [lo, hi).
    @inline(__always) public mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }

    /// Uniform integer in 0..<n (n > 0), unbiased (Lemire's multiply-and-reject).
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0, "below(n) needs n > 0")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Standard normal deviate (Box-Muller; one value per call, the pair's second is discarded so a
    /// stream's values never depend on call parity).
    public mutating func normal() -> Double {
        let u1 = 1.0 - unit()           // (0, 1]
        let u2 = unit()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A pair of independent standard normal deviates (both halves of Box-Muller).
    @inline(__always) public mutating func normalPair() -> (Double, Double) {
        let u1 = 1.0 - unit()
        let u2 = unit()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let a = 2 * Double.pi * u2
        return (r * cos(a), r * sin(a))
    }

    /// A uniformly random unit vector in 3D.
    public mutating func unitVector() -> [Double] {
        let z = uniform(-1, 1)
        let phi = uniform(0, 2 * .pi)
        let r = (1 - z * z).squareRoot()
        return [r * cos(phi), r * sin(phi), z]
    }

    /// Fisher-Yates shuffle with this generator (its own algorithm, so results never depend on the
    /// standard library's `shuffle` implementation).
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = below(i + 1)
            if i != j { a.swapAt(i, j) }
        }
    }
}
