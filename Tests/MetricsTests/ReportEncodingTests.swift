import Foundation
import XCTest
@testable import Metrics

final class ReportEncodingTests: XCTestCase {
    func makeReport() -> EvaluationReport {
        let c1 = CaseEvaluation(caseName: "c1", perClass: [
            1: BinaryMetrics(dice: 0.5, jaccard: 1.0 / 3.0, hd95: 2, hd: 3, asd: 1, assd: 1.5,
                             predictionEmpty: false, referenceEmpty: false),
            2: BinaryMetrics(dice: 0, jaccard: 0, hd95: nil, hd: nil, asd: nil, assd: nil,
                             predictionEmpty: true, referenceEmpty: false),
        ])
        let c2 = CaseEvaluation(caseName: "c,2", classes: [
            "1": BinaryMetrics(dice: 1, jaccard: 1, hd95: 4, hd: 5, asd: 3, assd: 2.5,
                               predictionEmpty: false, referenceEmpty: false),
            "2": BinaryMetrics(dice: 1, jaccard: 1, hd95: 0, hd: 0, asd: 0, assd: 0,
                               predictionEmpty: true, referenceEmpty: true),
        ])
        return EvaluationReport(cases: [c1, c2])
    }

    func testSummary() {
        let s = makeReport().summary
        XCTAssertEqual(Set(s.keys), ["1", "2"])
        let one = s["1"]!
        XCTAssertEqual(one.cases, 2)
        XCTAssertEqual(one.dice, MetricSummary(mean: 0.75, std: 0.25, count: 2))  // population std of {0.5, 1}
        XCTAssertEqual(one.hd95, MetricSummary(mean: 3, std: 1, count: 2))
        XCTAssertEqual(one.missingDistances, 0)
        let two = s["2"]!
        XCTAssertEqual(two.cases, 2)
        XCTAssertEqual(two.dice, MetricSummary(mean: 0.5, std: 0.5, count: 2))
        XCTAssertEqual(two.hd95, MetricSummary(mean: 0, std: 0, count: 1))  // the missing one is counted, not averaged
        XCTAssertEqual(two.emptyPrediction, 2)
        XCTAssertEqual(two.emptyReference, 1)
        XCTAssertEqual(two.bothEmpty, 1)
        XCTAssertEqual(two.missingDistances, 1)
        // A metric defined in no case: mean/std null.
        let none = ClassSummary([BinaryMetrics(dice: 0, jaccard: 0, hd95: nil, hd: nil, asd: nil, assd: nil,
                                               predictionEmpty: false, referenceEmpty: true)])
        XCTAssertEqual(none.asd, MetricSummary(mean: nil, std: nil, count: 0))
    }

    func testJSONLayout() throws {
        let report = makeReport()
        let data = try report.jsonData()
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(root.keys), ["cases", "summary"])
        let cases = try XCTUnwrap(root["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.map { $0["case"] as? String }, ["c1", "c,2"])
        let classes = try XCTUnwrap(cases[0]["classes"] as? [String: [String: Any]])
        XCTAssertEqual(classes["1"]?["dice"] as? Double, 0.5)
        XCTAssertEqual(classes["1"]?["hd95"] as? Double, 2)
        for key in ["hd95", "hd", "asd", "assd"] {
            XCTAssertTrue(classes["2"]?[key] is NSNull, "\(key) must be an explicit null")
        }
        XCTAssertEqual(classes["2"]?["prediction_empty"] as? Bool, true)
        let summary = try XCTUnwrap(root["summary"] as? [String: [String: Any]])
        let two = try XCTUnwrap(summary["2"])
        XCTAssertEqual(two["missing_distances"] as? Int, 1)
        XCTAssertEqual(two["both_empty"] as? Int, 1)
        XCTAssertEqual(two["empty_prediction"] as? Int, 2)
        XCTAssertEqual(two["empty_reference"] as? Int, 1)
        XCTAssertEqual(two["cases"] as? Int, 2)
        XCTAssertEqual((two["hd95"] as? [String: Any])?["count"] as? Int, 1)
        XCTAssertEqual((summary["1"]?["dice"] as? [String: Any])?["mean"] as? Double, 0.75)

        let compact = String(decoding: try report.jsonData(prettyPrinted: false), as: UTF8.self)
        XCTAssertTrue(compact.hasPrefix(#"{"cases":[{"case":"c1","classes":{"1":{"asd":1,"assd":1.5,"dice":0.5,"#), compact)
        XCTAssertTrue(compact.contains(#""2":{"asd":null,"assd":null,"dice":0,"hd":null,"hd95":null,"#), compact)
        // Round trip.
        XCTAssertEqual(try EvaluationReport.decode(from: data), report)
    }

    func testCSV() {
        XCTAssertEqual(makeReport().csv(), """
            case,class,dice,jaccard,hd95,hd,asd,assd,prediction_empty,reference_empty
            c1,1,0.5,0.3333333333333333,2.0,3.0,1.0,1.5,false,false
            c1,2,0.0,0.0,,,,,true,false
            "c,2",1,1.0,1.0,4.0,5.0,3.0,2.5,false,false
            "c,2",2,1.0,1.0,0.0,0.0,0.0,0.0,true,true

            """)
        let summary = makeReport().summaryCSV().split(separator: "\n")
        XCTAssertEqual(summary.count, 3)
        XCTAssertTrue(summary[0].hasPrefix("class,cases,empty_prediction,empty_reference,both_empty,missing_distances,dice_mean,dice_std,dice_count,"))
        XCTAssertTrue(summary[2].hasPrefix("2,2,2,1,1,1,0.5,0.5,2,"))
    }

    func testClassOrderIsNumeric() {
        let m = BinaryMetrics(dice: 1, jaccard: 1, hd95: 0, hd: 0, asd: 0, assd: 0, predictionEmpty: true, referenceEmpty: true)
        let report = EvaluationReport(cases: [CaseEvaluation(caseName: "x", classes: ["10": m, "2": m, "liver": m])])
        let classes = report.csv().split(separator: "\n").dropFirst().map { $0.split(separator: ",")[1] }
        XCTAssertEqual(classes, ["2", "10", "liver"])
    }

    func testEvaluateCaseEndToEnd() throws {
        let pred: [UInt8] = [1, 1, 0, 0, 2, 0, 0, 0]
        let ref: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0]
        let c = SegmentationMetrics.evaluateCase(name: "tiny", prediction: pred, reference: ref,
                                                 shape: [2, 2, 2], spacing: [1, 1, 1], labels: [1, 2])
        XCTAssertEqual(c.classes["1"]?.dice ?? -1, 2.0 / 3.0, accuracy: 1e-15)
        XCTAssertNil(c.classes["2"]?.hd95)
        let report = EvaluationReport(cases: [c])
        XCTAssertEqual(report.summary["2"]?.missingDistances, 1)
        XCTAssertEqual(report.summary["2"]?.emptyReference, 1)
    }
}
