import XCTest
import Foundation
@testable import Reports
import Segmentation
import Volumes

final class ReportTests: XCTestCase {
    // MARK: - Fixtures

    static let logText = """
    {"kind":"train","iteration":10,"lr":0.001,"elapsed_s":12.3,"losses":{"sup":0.91,"csc":2.1,"cac":1.3,"total":1.2}}
    {"kind":"mystery","iteration":11,"payload":[1,2,3]}

    {"kind":"train","iteration":20,"lr":0.0009,"elapsed_s":24.0,"losses":{"sup":0.8,"csc":2.0,"cac":1.2,"total":1.1,"note":"x"},"extra":{"a":1}}
    [1, 2, 3]
    {"kind":"validation","iteration":20,"elapsed_s":30.0,"dice":{"mean":0.80,"classes":{"1":0.9,"2":0.7,"3":0.8},"heads":"ignored"}}
    {"kind":"event","iteration":20,"message":"checkpoint saved"}
    {"kind":"train","iteration":"thirty","losses":{}}
    {"kind":"train","iteration":30,"lr":0.0008,"elapsed_s":36.0,"losses":{"sup":0.7,"total":
    """

    static let evaluationJSON = """
    {"cases":[
     {"case":"case_001","classes":{"1":{"dice":0.9,"jaccard":0.818,"hd95":2.0,"hd":3,"asd":0.5,"assd":0.6},
                                   "2":{"dice":0.7,"jaccard":0.538,"hd95":4.0,"hd":5,"asd":1.0,"assd":1.1}}},
     {"case":"case_002","classes":{"1":{"dice":0.8,"jaccard":0.667,"hd95":3.0,"hd":4,"asd":0.7,"assd":0.8},
                                   "2":{"dice":0.0,"jaccard":0.0,"hd95":null,"hd":null,"asd":null,"assd":null}}},
     {"case":"case_003","classes":{"1":{"dice":1.0,"jaccard":1.0,"hd95":0.0,"hd":0,"asd":0.0,"assd":0.0},
                                   "2":{"dice":0.6,"jaccard":0.429,"hd95":6.0,"hd":7,"asd":2.0,"assd":2.1}}}
    ],"summary":{"1":{"dice":{"mean":123,"std":0,"count":1}}}}
    """

    /// 24 x 20 x 10 volumes: a sphere of label 1 in the reference, shifted in the prediction, a box of label 2.
    static func makeCase(name: String, modalities: [String] = ["T1", "T2"], spacing: [Double] = [1, 1, 2]) -> ReportCase {
        let shape = [24, 20, 10]
        var reference = [Float](repeating: 0, count: shape.reduce(1, *))
        var prediction = reference
        var t1 = reference, t2 = reference
        for k in 0..<shape[2] {
            for j in 0..<shape[1] {
                for i in 0..<shape[0] {
                    let n = i + shape[0] * (j + shape[1] * k)
                    let d = pow(Double(i - 12), 2) + pow(Double(j - 10), 2) + pow(Double(k - 5) * 2, 2)
                    if d < 30 { reference[n] = 1 }
                    if pow(Double(i - 13), 2) + pow(Double(j - 10), 2) + pow(Double(k - 5) * 2, 2) < 30 { prediction[n] = 1 }
                    if i < 4 && j < 4 && k >= 3 && k <= 6 { reference[n] = 2; prediction[n] = 2 }
                    t1[n] = Float(i + j) + (d < 30 ? 50 : 0)
                    t2[n] = Float(100 - i) - (d < 30 ? 30 : 0)
                }
            }
        }
        let volume = { (v: [Float]) in Volume(shape: shape, voxels: v, spacing: spacing) }
        let images = modalities.enumerated().map { (modality: $0.element, volume: volume($0.offset == 0 ? t1 : t2)) }
        return ReportCase(name: name, images: images, reference: volume(reference), prediction: volume(prediction))
    }

    /// The `d` attributes of the paths with this class.
    static func paths(_ svg: String, cls: String) -> [String] {
        var out: [String] = []
        var rest = Substring(svg)
        while let start = rest.range(of: "<path class=\"\(cls)\"") {
            rest = rest[start.upperBound...]
            guard let d = rest.range(of: " d=\""), let end = rest[d.upperBound...].firstIndex(of: "\"") else { break }
            out.append(String(rest[d.upperBound..<end]))
            rest = rest[end...]
        }
        return out
    }

    static func pointCount(_ d: String) -> Int { d.filter { $0 == "M" || $0 == "L" }.count }

    /// The page without its base64 payloads (which may contain any letters by chance).
    static func withoutPayloads(_ html: String) -> String {
        html.replacingOccurrences(of: "data:image/png;base64,[A-Za-z0-9+/=]*", with: "data:image/png;base64,", options: .regularExpression)
    }

    static func occurrences(of needle: String, in haystack: String) -> Int {
        haystack.components(separatedBy: needle).count - 1
    }

    // MARK: - Log parsing

    func testParseLogSkipsTruncatedLineUnknownKindsAndBadLines() {
        let entries = ReportBuilder.parseLog(Data(Self.logText.utf8))
        XCTAssertEqual(entries.map(\.kind), [.train, .train, .validation, .event])
        XCTAssertEqual(entries.map(\.iteration), [10, 20, 20, 20])

        let first = entries[0]
        XCTAssertEqual(first.learningRate, 0.001)
        XCTAssertEqual(first.elapsedSeconds, 12.3)
        XCTAssertEqual(first.losses, ["sup": 0.91, "csc": 2.1, "cac": 1.3, "total": 1.2])
        XCTAssertEqual(entries[1].losses["note"], nil, "a non-numeric loss is left out")
        XCTAssertEqual(entries[1].losses.count, 4)

        let validation = entries[2]
        XCTAssertEqual(validation.meanDice, 0.80)
        XCTAssertEqual(validation.classDice, ["1": 0.9, "2": 0.7, "3": 0.8])
        XCTAssertEqual(entries[3].message, "checkpoint saved")
    }

    func testParseLogEmptyAndCRLF() {
        XCTAssertEqual(ReportBuilder.parseLog(Data()), [])
        let crlf = "{\"kind\":\"train\",\"iteration\":1,\"losses\":{\"total\":1}}\r\n{\"kind\":\"train\",\"iteration\":2,\"losses\":{\"total\":0.5}}\r\n"
        XCTAssertEqual(ReportBuilder.parseLog(Data(crlf.utf8)).map(\.iteration), [1, 2])
    }

    // MARK: - Charts

    func testChartPathHasOnePointPerValue() {
        let points = (0..<7).map { (x: Double($0 * 10), y: Double($0) * 0.1 + 0.2) }
        let chart = SVGLineChart(id: "c", title: "T", xLabel: "iteration", yLabel: "loss",
                                 series: [SVGLineChart.Series(name: "sup", points: points, color: "#123456")])
        let svg = chart.svg()
        let paths = Self.paths(svg, cls: "series")
        XCTAssertEqual(paths.count, 1)
        XCTAssertEqual(Self.pointCount(paths[0]), 7)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>"))
        XCTAssertTrue(svg.contains(">iteration</text>"))
        XCTAssertTrue(svg.contains(">sup</text>"), "legend entry")
        XCTAssertFalse(svg.contains("http"))
    }

    func testSmoothedChartKeepsRawCurveAndPointCount() {
        let points = (0..<200).map { (x: Double($0), y: 1 + sin(Double($0)) * 0.3 + 0.001 * Double($0)) }
        let svg = SVGLineChart(id: "c", title: "T", xLabel: "x", yLabel: "y",
                               series: [SVGLineChart.Series(name: "total", points: points, color: "#000", smooth: true)],
                               yScale: .log).svg()
        XCTAssertEqual(Self.paths(svg, cls: "raw").map(Self.pointCount), [200])
        XCTAssertEqual(Self.paths(svg, cls: "series").map(Self.pointCount), [200])
        XCTAssertTrue(svg.contains("(log scale)"))
    }

    func testLongSeriesAreThinned() {
        let points = (0..<20_000).map { (x: Double($0), y: Double($0 % 97)) }
        let svg = SVGLineChart(id: "c", title: "T", xLabel: "x", yLabel: "y",
                               series: [SVGLineChart.Series(name: "s", points: points, color: "#000")], maxPoints: 1000).svg()
        let count = Self.pointCount(Self.paths(svg, cls: "series")[0])
        XCTAssertLessThanOrEqual(count, 1000)
        XCTAssertGreaterThan(count, 500)
    }

    func testEmptyAndSinglePointChartsDoNotCrash() {
        let empty = SVGLineChart(id: "e", title: "Empty", xLabel: "x", yLabel: "y", series: []).svg()
        XCTAssertTrue(empty.contains("no data"))
        XCTAssertTrue(Self.paths(empty, cls: "series").isEmpty)

        let nonFinite = SVGLineChart(id: "n", title: "NaN", xLabel: "x", yLabel: "y",
                                     series: [SVGLineChart.Series(name: "s", points: [(x: 1, y: .nan), (x: 2, y: .infinity)], color: "#000")]).svg()
        XCTAssertTrue(nonFinite.contains("no data"))

        let single = SVGLineChart(id: "s", title: "One", xLabel: "x", yLabel: "y",
                                  series: [SVGLineChart.Series(name: "s", points: [(x: 5, y: 0.5)], color: "#000")]).svg()
        XCTAssertFalse(single.contains("no data"))
        XCTAssertTrue(single.contains("<circle"), "a single point is drawn as a marker")

        let logWithZeros = SVGLineChart(id: "z", title: "Z", xLabel: "x", yLabel: "y",
                                        series: [SVGLineChart.Series(name: "s", points: [(x: 1, y: 0), (x: 2, y: 0.1), (x: 3, y: 0.01)], color: "#000")],
                                        yScale: .log).svg()
        XCTAssertEqual(Self.paths(logWithZeros, cls: "series").map(Self.pointCount), [2])
    }

    func testTicks() {
        XCTAssertEqual(SVGLineChart.linearTicks(lo: 1, hi: 300, target: 6), [0, 50, 100, 150, 200, 250, 300])
        XCTAssertEqual(SVGLineChart.linearTicks(lo: 0.42, hi: 0.93, target: 5), [0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(SVGLineChart.linearTicks(lo: 0.42, hi: 0.93, target: 8), [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
        XCTAssertEqual(SVGLineChart.linearTicks(lo: -0.3, hi: 0.2, target: 5), [-0.3, -0.2, -0.1, 0, 0.1, 0.2])
        XCTAssertEqual(SVGLineChart.linearTicks(lo: 3, hi: 3, target: 5).count > 1, true)
        XCTAssertEqual(SVGLineChart.logTickLabels(SVGLineChart.logTicks(loExponent: -6, hiExponent: -3)), ["1e-6", "1e-5", "1e-4", "1e-3"])
        XCTAssertEqual(SVGLineChart.logTickLabels(SVGLineChart.logTicks(loExponent: -1.1, hiExponent: 0.4)), ["0.1", "0.2", "0.5", "1", "2"])
        XCTAssertEqual(SVGLineChart.tickLabel(25_000, ticks: [0, 5000, 10000]), "25k")
        XCTAssertEqual([0.0, 5000, 10000, 15000].map { SVGLineChart.tickLabel($0, ticks: [0, 5000, 10000, 15000]) }, ["0", "5k", "10k", "15k"])
        XCTAssertEqual([0.0, 100, 200].map { SVGLineChart.tickLabel($0, ticks: [0, 100, 200]) }, ["0", "100", "200"])
        XCTAssertEqual(SVGLineChart.tickLabel(0.25, ticks: [0, 0.25, 0.5]), "0.25")
    }

    // MARK: - Evaluation

    func testEvaluationStatisticsIgnoreSummaryAndCountMissingDistances() throws {
        let evaluation = try ReportEvaluation(json: Data(Self.evaluationJSON.utf8))
        XCTAssertEqual(evaluation.cases.map(\.name), ["case_001", "case_002", "case_003"])
        let stats = evaluation.statistics()
        XCTAssertEqual(stats.map(\.key), ["1", "2"])
        let one = stats[0], two = stats[1]
        XCTAssertEqual(one.metrics["dice"]!.mean!, 0.9, accuracy: 1e-12)
        XCTAssertEqual(one.metrics["dice"]!.std!, (0.02 / 3).squareRoot(), accuracy: 1e-12)  // population SD
        XCTAssertEqual(one.missingDistances, 0)
        XCTAssertEqual(two.missingDistances, 1)
        XCTAssertEqual(two.metrics["hd95"]!.count, 2)
        XCTAssertEqual(two.metrics["hd95"]!.mean!, 5.0, accuracy: 1e-12)
        XCTAssertEqual(two.metrics["dice"]!.count, 3)
        XCTAssertEqual(two.metrics["dice"]!.mean!, 1.3 / 3, accuracy: 1e-12)

        XCTAssertThrowsError(try ReportEvaluation(json: Data("{\"summary\":{}}".utf8)))
        XCTAssertThrowsError(try ReportEvaluation(json: Data("not json".utf8)))
    }

    // MARK: - Slices

    func testOrientationFromAffine() {
        let ras = SliceOrientation.radiological(affine: .scaling([1, 1, 1]))
        XCTAssertEqual(ras.plane, "axial")
        XCTAssertEqual([ras.left, ras.right, ras.top, ras.bottom], ["R", "L", "A", "P"])
        XCTAssertTrue(ras.flipHorizontal, "i runs to the patient's right (+x): shown right-to-left")
        XCTAssertTrue(ras.flipVertical, "j runs anteriorly: anterior at the top")
        // Voxel (0, 0) (right-posterior... i.e. the patient's left-posterior corner in RAS) is at the bottom right.
        XCTAssertEqual(ras.voxel(column: 9, row: 7, shape: [10, 8, 3]).i, 0)
        XCTAssertEqual(ras.voxel(column: 9, row: 7, shape: [10, 8, 3]).j, 0)

        let lps = SliceOrientation.radiological(affine: Affine(rowMajor: [-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))
        XCTAssertFalse(lps.flipHorizontal)
        XCTAssertFalse(lps.flipVertical)

        // k along x (sagittal acquisition), i along y, j along z.
        let sagittal = SliceOrientation.radiological(affine: Affine(rowMajor: [0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]))
        XCTAssertEqual(sagittal.plane, "sagittal")
        XCTAssertEqual(sagittal.horizontalAxis, 0)
        XCTAssertTrue(sagittal.flipHorizontal, "anterior on the left")
        XCTAssertTrue(sagittal.flipVertical, "superior at the top")

        // Transposed in-plane axes: i along y, j along x.
        let swapped = SliceOrientation.radiological(affine: Affine(rowMajor: [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))
        XCTAssertEqual(swapped.horizontalAxis, 1)
        XCTAssertEqual(swapped.verticalAxis, 0)

        let degenerate = SliceOrientation.radiological(affine: Affine(rowMajor: [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))
        XCTAssertEqual(degenerate, .raw)
    }

    func testSliceChoiceAndFallbacks() {
        let shape = [4, 4, 20]
        var labels = [Float](repeating: 0, count: 320)
        for k in 4...12 { labels[1 + 4 * (1 + 4 * k)] = 1 }
        let reference = Volume(shape: shape, voxels: labels, spacing: [1, 1, 1])
        let empty = Volume(shape: shape, voxels: [Float](repeating: 0, count: 320), spacing: [1, 1, 1])
        XCTAssertEqual(SliceOverlayRenderer.chooseSlices(reference: reference, prediction: empty, count: 3).map(\.k), [6, 8, 10])
        XCTAssertEqual(SliceOverlayRenderer.chooseSlices(reference: empty, prediction: reference, count: 1).map(\.k), [8])
        XCTAssertTrue(SliceOverlayRenderer.chooseSlices(reference: nil, prediction: reference, count: 1)[0].reason.contains("prediction"))
        XCTAssertEqual(SliceOverlayRenderer.chooseSlices(reference: empty, prediction: empty, count: 1).map(\.k), [10])
        // A one-slice foreground gives one slice, not three copies.
        var thin = [Float](repeating: 0, count: 320)
        thin[5 + 16 * 7] = 2
        XCTAssertEqual(SliceOverlayRenderer.chooseSlices(reference: Volume(shape: shape, voxels: thin, spacing: [1, 1, 1]),
                                                         prediction: empty, count: 3).map(\.k), [7])
    }

    func testOverlayGeometryColoursAndOrientation() throws {
        // 40 x 20 voxels of 1 x 2 mm: a square panel in millimetres.
        let shape = [40, 20, 3]
        var image = [Float](repeating: 0, count: 2400)
        for n in 0..<image.count { image[n] = Float(n % 40) }
        var reference = [Float](repeating: 0, count: 2400)
        reference[0 + 40 * (0 + 20 * 1)] = 1  // voxel (0, 0, 1): the patient's left-posterior corner in RAS
        let volume = { (v: [Float]) in Volume(shape: shape, voxels: v, spacing: [1, 2, 3]) }
        let c = ReportCase(name: "c", images: [(modality: "CT", volume: volume(image))], reference: volume(reference), prediction: volume(reference))
        let overlays = try SliceOverlayRenderer.render(c, slices: 3)
        XCTAssertEqual(overlays.count, 1, "a one-slice foreground")
        let png = overlays[0].image
        XCTAssertEqual(png.height, 256)
        XCTAssertEqual(png.width, 2 * 256 + SliceOverlayRenderer.panelGap)
        XCTAssertEqual(png.channels, 3)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(png.pixels[(y * png.width + x) * 3..<(y * png.width + x) * 3 + 3]) }
        // Voxel (0, 0) is drawn at the bottom right of the right panel (6.4 x 12.8 px: x 250...255,
        // y 243...255 of the panel): outlined (2 px) in class 1's colour, filled inside.
        let (r, g, b) = ReportPalette.rgb(forClass: 1)
        let right = 256 + SliceOverlayRenderer.panelGap
        XCTAssertEqual(pixel(right + 250, 255), [r, g, b])
        XCTAssertEqual(pixel(right + 251, 250), [r, g, b])
        XCTAssertEqual(pixel(right + 252, 244), [r, g, b], "top edge of the block")
        XCTAssertNotEqual(pixel(right + 252, 246), [r, g, b], "inside: filled, not outlined")
        let outside = pixel(right + 249, 255)  // i = 1: nearly black gray
        XCTAssertTrue(outside[0] == outside[1] && outside[1] == outside[2] && outside[0] < 20, "\(outside)")
        let fill = pixel(right + 255, 255)
        XCTAssertEqual(Int(fill[0]), Int((SliceOverlayRenderer.fillAlpha * Double(r)).rounded()), accuracy: 1)
        XCTAssertEqual(Int(fill[1]), Int((SliceOverlayRenderer.fillAlpha * Double(g)).rounded()), accuracy: 1)
        XCTAssertEqual(pixel(right, 0), pixel(0, 0), "unlabelled pixels are the plain image")
        // Left panel: i = 39 (brightest column) at the screen's left edge (radiological).
        XCTAssertEqual(pixel(0, 128), [255, 255, 255])
        XCTAssertEqual(pixel(255, 128), [0, 0, 0])
        // The gap is white.
        XCTAssertEqual(pixel(256 + 1, 100), [255, 255, 255])
    }

    func testImagesOnAnotherGridAreResampledThroughTheAffines() throws {
        let display = Volume(shape: [6, 6, 2], voxels: [Float](repeating: 0, count: 72), spacing: [1, 1, 1])
        // Source shifted by one voxel along i: display voxel i sits at source voxel i - 1.
        var values = [Float](repeating: 0, count: 72)
        for n in 0..<72 { values[n] = Float(n % 6) * 10 }
        let source = Volume(shape: [6, 6, 2], voxels: values, spacing: [1, 1, 1], affine: .scaling([1, 1, 1], origin: [1, 0, 0]))
        let sampler = try XCTUnwrap(SliceOverlayRenderer.GridSampler(source: source, display: display))
        XCTAssertFalse(sampler.direct)
        XCTAssertEqual(sampler.value(3, 2, 1), 20, accuracy: 1e-5)
        XCTAssertTrue(sampler.value(0, 2, 1).isNaN, "outside the source")
        let same = try XCTUnwrap(SliceOverlayRenderer.GridSampler(source: display, display: display))
        XCTAssertTrue(same.direct)
    }

    func testIntensityWindowIsFirstToNinetyNinthPercentile() {
        let values = (0...100).map(Float.init) + [Float.nan]
        let window = SliceOverlayRenderer.intensityWindow(Volume(shape: [102, 1, 1], voxels: values, spacing: [1, 1, 1]))
        XCTAssertEqual(window.low, 1, accuracy: 1e-5)
        XCTAssertEqual(window.high, 99, accuracy: 1e-5)
        let flat = SliceOverlayRenderer.intensityWindow(Volume(shape: [4, 1, 1], voxels: [3, 3, 3, 3], spacing: [1, 1, 1]))
        XCTAssertGreaterThan(flat.high, flat.low)
    }

    // MARK: - Page

    func testHTMLHasMetricsChartsOneImagePerCaseModalitySliceAndNoExternalReferences() throws {
        let entries = ReportBuilder.parseLog(Data(Self.logText.utf8))
        let cases = [Self.makeCase(name: "case_001"), Self.makeCase(name: "case_<2>", spacing: [0.8, 1.6, 2])]
        let html = try ReportBuilder.html(title: "Run <A&B>", subtitle: "phantom", configText: "method: cmc\nlr: 0.001",
                                          logLines: entries, evaluation: Data(Self.evaluationJSON.utf8),
                                          classNames: [0: "background", 1: "LV", 2: "Myo"], cases: cases, slices: 3)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<title>Run &lt;A&amp;B&gt;</title>"))
        XCTAssertTrue(html.contains("case_&lt;2&gt;"))
        let text = Self.withoutPayloads(html)
        XCTAssertLessThan(text.count, 60_000)
        XCTAssertFalse(text.lowercased().contains("http"), "no external references")
        XCTAssertFalse(text.contains("<script"))
        XCTAssertEqual(Self.occurrences(of: "url(", in: text), Self.occurrences(of: "url(#", in: text), "only in-page url(#id) references")

        // Metrics: per-class mean ± SD, computed here (the file's "summary" says 123).
        XCTAssertTrue(html.contains("0.900 <span class=\"sd\">± 0.082</span>"), "Dice of class 1")
        XCTAssertTrue(html.contains("5.00 <span class=\"sd\">± 1.00</span>"), "HD95 of class 2 over the 2 defined cases")
        XCTAssertTrue(html.contains("n=2"))
        XCTAssertTrue(html.contains("1 of 3"), "missing-distance count")
        XCTAssertFalse(text.contains("123"), "the file's summary is not used")
        XCTAssertTrue(html.contains("<details><summary>Per-case metrics (3 cases)</summary>"))
        XCTAssertEqual(Self.occurrences(of: "<td class=\"missing\"", in: html), 3, "the three null distances of case_002 show as –")
        XCTAssertTrue(html.contains(">–</td>"))
        XCTAssertTrue(html.contains(">LV<") || html.contains(">LV "))

        // Charts.
        XCTAssertTrue(html.contains("id=\"chart-loss\""))
        XCTAssertTrue(html.contains("id=\"chart-dice\""))
        XCTAssertTrue(html.contains("id=\"chart-lr\""))
        XCTAssertTrue(html.contains("checkpoint saved"))

        // Images: 2 cases x 2 modalities x slices (the foreground spans k 3...7: 3 distinct slices).
        XCTAssertEqual(Self.occurrences(of: "src=\"data:image/png;base64,", in: html), 2 * 2 * 3)
        // Each image is a valid PNG.
        let first = html.components(separatedBy: "data:image/png;base64,")[1].prefix { $0 != "\"" }
        let png = try XCTUnwrap(Data(base64Encoded: String(first)))
        XCTAssertEqual(Array(png.prefix(8)), PNGImage.signature)
        XCTAssertTrue(html.contains("method: cmc"))
    }

    func testHTMLWithoutLogEvaluationOrCases() throws {
        let html = try ReportBuilder.html(title: "Empty", subtitle: "", configText: nil, logLines: [], evaluation: nil,
                                          classNames: [:], cases: [])
        XCTAssertTrue(html.contains("no training losses logged"))
        XCTAssertTrue(html.contains("no validation logged"))
        XCTAssertFalse(html.contains("id=\"metrics\""))
        XCTAssertFalse(html.contains("data:image/png"))
        XCTAssertFalse(html.lowercased().contains("http"))
    }

    func testNonFiniteLossMarkerIsLeftOutAndSaid() throws {
        let log = """
        {"kind":"train","iteration":1,"lr":0.001,"losses":{"total":1.0}}
        {"kind":"train","iteration":2,"lr":0.001,"losses":{"total":-1}}
        {"kind":"train","iteration":3,"lr":0.001,"losses":{"total":0.8}}
        """
        let html = try ReportBuilder.html(title: "t", subtitle: "", configText: nil, logLines: ReportBuilder.parseLog(Data(log.utf8)),
                                          evaluation: nil, classNames: [:], cases: [])
        XCTAssertTrue(html.contains("1 non-finite loss value (logged as -1) left out."))
    }

    func testInvalidInputsThrow() {
        XCTAssertThrowsError(try ReportBuilder.html(title: "t", subtitle: "", configText: nil, logLines: [],
                                                    evaluation: Data("{\"cases\": 3}".utf8), classNames: [:], cases: []))
        var c = Self.makeCase(name: "bad")
        c.reference = Volume(shape: [2, 2, 2], voxels: [Float](repeating: 0, count: 8), spacing: [1, 1, 1])
        XCTAssertThrowsError(try ReportBuilder.html(title: "t", subtitle: "", configText: nil, logLines: [], evaluation: nil,
                                                    classNames: [:], cases: [c])) { error in
            XCTAssertTrue("\(error)".contains("reference shape"))
        }
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
