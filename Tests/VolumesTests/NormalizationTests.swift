import XCTest
@testable import Volumes

final class NormalizationTests: XCTestCase {
    func testSchemeFromChannelName() {
        XCTAssertEqual(ChannelNormalization.scheme(forChannelName: "CT"), .ct)
        XCTAssertEqual(ChannelNormalization.scheme(forChannelName: "ct"), .ct)
        XCTAssertEqual(ChannelNormalization.scheme(forChannelName: " Ct "), .ct)
        XCTAssertEqual(ChannelNormalization.scheme(forChannelName: "T2"), .zscore)
        XCTAssertEqual(ChannelNormalization.scheme(forChannelName: "CTA"), .zscore)
        XCTAssertEqual(ChannelNormalization.scheme(forChannelName: "noNorm"), .none)
    }

    func testPercentilesLikeNumpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [0.5, 50, 99.5]) = [1.02, 3.0, 9.88]
        let s: [Float] = [1, 2, 3, 4, 10]
        XCTAssertEqual(IntensityStatistics.percentile(sorted: s, 0.5), 1.02, accuracy: 1e-9)
        XCTAssertEqual(IntensityStatistics.percentile(sorted: s, 50), 3, accuracy: 1e-12)
        XCTAssertEqual(IntensityStatistics.percentile(sorted: s, 99.5), 9.88, accuracy: 1e-6)
        XCTAssertEqual(IntensityStatistics.percentile(sorted: [7], 99.5), 7)
    }

    func testCTStatisticsAndApplication() throws {
        // Foreground 1, 2, 3, 4, 10: mean 4, population std sqrt(10) (deviations -3 -2 -1 0 6).
        let n = try ChannelNormalization.ct(foregroundIntensities: [10, 2, 4, 1, 3])
        guard case let .ct(lo, hi, mean, std) = n else { return XCTFail("\(n)") }
        XCTAssertEqual(lo, 1.02, accuracy: 1e-6)
        XCTAssertEqual(hi, 9.88, accuracy: 1e-5)
        XCTAssertEqual(mean, 4, accuracy: 1e-12)
        XCTAssertEqual(std, 10.0.squareRoot(), accuracy: 1e-12)
        let v = Volume(shape: [4, 1, 1], voxels: [-1000, 4, 7, 50], spacing: [1, 1, 1])
        let out = try ChannelNormalization.ct(clipLow: 0, clipHigh: 10, mean: 4, std: 2).apply(to: v)
        XCTAssertEqual(out.voxels, [-2, 0, 1.5, 3])
        XCTAssertEqual(out.shape, v.shape)
        XCTAssertThrowsError(try ChannelNormalization.ct(foregroundIntensities: []))
        XCTAssertThrowsError(try ChannelNormalization.ct(foregroundIntensities: [1, .nan]))
        XCTAssertThrowsError(try ChannelNormalization.ct(clipLow: 5, clipHigh: 1, mean: 0, std: 1).apply(to: v))
        // std 0 is guarded by 1e-8.
        XCTAssertEqual(try ChannelNormalization.ct(clipLow: 0, clipHigh: 10, mean: 4, std: 0).apply([4]), [0])
    }

    func testZScoreWholeImageAndNonZero() throws {
        // 0, 0, 2, 4, 6, 8: mean 10/3, population std sqrt(80/9)... computed by hand below.
        let values: [Float] = [0, 0, 2, 4, 6, 8]
        let whole = try ChannelNormalization.zscore(nonZeroOnly: false).apply(values)
        let mean = 20.0 / 6
        let std = (values.map { pow(Double($0) - mean, 2) }.reduce(0, +) / 6).squareRoot()   // sqrt(80/9)
        XCTAssertEqual(std, (80.0 / 9).squareRoot(), accuracy: 1e-12)
        for (o, x) in zip(whole, values) { XCTAssertEqual(Double(o), (Double(x) - mean) / std, accuracy: 1e-6) }
        // Non-zero only: statistics of 2, 4, 6, 8 (mean 5, std sqrt(5)); zeros stay 0.
        let nz = try ChannelNormalization.zscore(nonZeroOnly: true).apply(values)
        let s5 = 5.0.squareRoot()
        let expected = [0, 0, -3 / s5, -1 / s5, 1 / s5, 3 / s5]
        for (o, e) in zip(nz, expected) { XCTAssertEqual(Double(o), e, accuracy: 1e-6) }
        // An explicit mask (the case's non-zero region) decides instead of the values.
        let masked = try ChannelNormalization.zscore(nonZeroOnly: true).apply(values, mask: [false, true, true, true, false, false])
        // Masked values 0, 2, 4: mean 2, std sqrt(8/3).
        let s = (8.0 / 3).squareRoot()
        let e2 = [0, -2 / s, 0, 2 / s, 0, 0]
        for (o, e) in zip(masked, e2) { XCTAssertEqual(Double(o), e, accuracy: 1e-6) }
        XCTAssertThrowsError(try ChannelNormalization.zscore(nonZeroOnly: true).apply(values, mask: [true]))
        XCTAssertEqual(try ChannelNormalization.none.apply(values), values)
        XCTAssertEqual(try ChannelNormalization.zscore(nonZeroOnly: true).apply([0, 0]), [0, 0])
        XCTAssertEqual(try ChannelNormalization.zscore(nonZeroOnly: false).apply([3, 3]), [0, 0])
    }

    func testCodableRoundTrip() throws {
        let all: [ChannelNormalization] = [.ct(clipLow: -100, clipHigh: 300, mean: 50, std: 20), .zscore(nonZeroOnly: true), .none]
        let data = try JSONEncoder().encode(all)
        XCTAssertEqual(try JSONDecoder().decode([ChannelNormalization].self, from: data), all)
    }
}
