import Foundation
import XCTest
@testable import Datasets
import Volumes

/// `concord convert` through the binary: progress lines, the final check, refusals.
final class ConvertCommandTests: XCTestCase {
    /// The `concord` executable built next to the test bundle (swift test builds it).
    var concord: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("concord")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = concord
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func testConvertCommand() throws {
        guard FileManager.default.isExecutableFile(atPath: concord.path) else {
            XCTFail("the concord binary is not at \(concord.path): build it with `swift build` (swift test builds it)")
            return
        }
        let dir = try TempDir()
        let src = try MSDConverterTests.makeSource(dir.url).root
        let out = dir.url.appendingPathComponent("brain").path

        let help = try run(["convert", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("msd-brain"), help.output)

        let first = try run(["convert", "msd-brain", src.path, "--out", out])
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("convert: case 1/3"), first.output)
        XCTAssertTrue(first.output.contains("convert: case 3/3"), first.output)
        XCTAssertTrue(first.output.contains("wrote 2 labelled + 1 unlabelled case(s)"), first.output)
        XCTAssertTrue(first.output.contains("0 error(s)"), first.output)
        XCTAssertTrue(first.output.contains("skipped 5 macOS resource-fork files"), first.output)

        let again = try run(["convert", "msd-brain", src.path, "--out", out])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("not empty") && again.output.contains("--overwrite"), again.output)
        XCTAssertEqual(try run(["convert", "msd-brain", src.path, "--out", out, "--overwrite"]).status, 0)

        let wrong = try run(["convert", "msd-brain", src.path, "--out", dir.url.appendingPathComponent("x").path, "--reference", "C0"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.output.contains("--reference (mscmrseg only)"), wrong.output)
    }
}
