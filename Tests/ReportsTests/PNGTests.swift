import XCTest
import Foundation
import CZlib
@testable import Reports
import Volumes

/// Decodes our own PNG output with an independent minimal decoder (chunk walk, zlib CRC check,
/// zlib inflate, PNG unfiltering) and compares the pixels.
final class PNGTests: XCTestCase {
    struct Decoded {
        var width = 0, height = 0, bitDepth = 0, colorType = 0, interlace = 0
        var chunkTypes: [String] = []
        var filterTypes: Set<UInt8> = []
        var pixels: [UInt8] = []
    }

    enum DecodeError: Error { case badSignature, truncated, badCRC(String), inflate(Int32), badFilter(UInt8), missingChunk }

    static func be32(_ b: [UInt8], _ o: Int) -> Int {
        Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
    }

    static func decode(_ data: Data) throws -> Decoded {
        let bytes = [UInt8](data)
        guard bytes.count >= 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw DecodeError.badSignature
        }
        var d = Decoded()
        var idat: [UInt8] = []
        var offset = 8
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw DecodeError.truncated }
            let length = be32(bytes, offset)
            guard offset + 12 + length <= bytes.count else { throw DecodeError.truncated }
            let typeAndData = Array(bytes[(offset + 4)..<(offset + 8 + length)])
            let type = String(decoding: typeAndData[0..<4], as: UTF8.self)
            let stored = UInt(be32(bytes, offset + 8 + length))
            let computed = typeAndData.withUnsafeBufferPointer { UInt(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard stored == computed else { throw DecodeError.badCRC(type) }
            let body = Array(typeAndData[4...])
            d.chunkTypes.append(type)
            switch type {
            case "IHDR":
                d.width = be32(body, 0); d.height = be32(body, 4)
                d.bitDepth = Int(body[8]); d.colorType = Int(body[9]); d.interlace = Int(body[12])
            case "IDAT": idat += body
            default: break
            }
            offset += 12 + length
        }
        guard d.chunkTypes.first == "IHDR", d.chunkTypes.last == "IEND" else { throw DecodeError.missingChunk }
        let channels = [0: 1, 4: 2, 2: 3, 6: 4][d.colorType]!
        let rowBytes = d.width * channels
        var inflated = [UInt8](repeating: 0, count: (rowBytes + 1) * d.height)
        var inflatedLength = uLong(inflated.count)
        let code = inflated.withUnsafeMutableBufferPointer { out in
            idat.withUnsafeBufferPointer { src in uncompress(out.baseAddress, &inflatedLength, src.baseAddress, uLong(src.count)) }
        }
        guard code == Z_OK, Int(inflatedLength) == inflated.count else { throw DecodeError.inflate(code) }
        var pixels = [UInt8](repeating: 0, count: rowBytes * d.height)
        for y in 0..<d.height {
            let filter = inflated[y * (rowBytes + 1)]
            d.filterTypes.insert(filter)
            for x in 0..<rowBytes {
                let raw = inflated[y * (rowBytes + 1) + 1 + x]
                let a = x >= channels ? Int(pixels[y * rowBytes + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * rowBytes + x]) : 0
                let c = (x >= channels && y > 0) ? Int(pixels[(y - 1) * rowBytes + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c)
                default: throw DecodeError.badFilter(filter)
                }
                pixels[y * rowBytes + x] = UInt8((Int(raw) + predictor) & 0xFF)
            }
        }
        d.pixels = pixels
        return d
    }

    /// Smooth gradients (favouring Sub/Up/Average/Paeth), a flat band and noise (favouring None).
    static func testPixels(width: Int, height: Int, channels: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        var out = [UInt8](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let value: UInt8
                    switch y % 4 {
                    case 0: value = UInt8(truncatingIfNeeded: x * 3 + c * 40)
                    case 1: value = UInt8(truncatingIfNeeded: y * 5 + c * 7)
                    case 2: value = UInt8(truncatingIfNeeded: (x + y) * 2 + c)
                    default: value = next()
                    }
                    out[(y * width + x) * channels + c] = value
                }
            }
        }
        return out
    }

    func testRoundTripEveryColourType() throws {
        for (channels, colorType) in [(1, 0), (2, 4), (3, 2), (4, 6)] {
            for (width, height) in [(1, 1), (7, 5), (33, 20)] {
                let pixels = Self.testPixels(width: width, height: height, channels: channels, seed: UInt64(channels * 100 + width))
                let image = PNGImage(width: width, height: height, channels: channels, pixels: pixels)
                let decoded = try Self.decode(try image.encode())
                XCTAssertEqual(decoded.width, width)
                XCTAssertEqual(decoded.height, height)
                XCTAssertEqual(decoded.bitDepth, 8)
                XCTAssertEqual(decoded.colorType, colorType)
                XCTAssertEqual(decoded.interlace, 0)
                XCTAssertEqual(decoded.pixels, pixels, "\(channels) channel(s), \(width)x\(height)")
            }
        }
    }

    func testFilterHeuristicUsesSeveralFilters() throws {
        let pixels = Self.testPixels(width: 64, height: 64, channels: 3, seed: 7)
        let decoded = try Self.decode(try PNGImage(width: 64, height: 64, channels: 3, pixels: pixels).encode())
        XCTAssertEqual(decoded.pixels, pixels)
        XCTAssertGreaterThanOrEqual(decoded.filterTypes.count, 2, "filters used: \(decoded.filterTypes.sorted())")
        XCTAssertTrue(decoded.filterTypes.isSubset(of: [0, 1, 2, 3, 4]))
    }

    func testCompressionLevelsAllDecode() throws {
        let pixels = [UInt8](repeating: 200, count: 100 * 80)
        var sizes: [Int] = []
        for level in [0, 1, 9] {
            let data = try PNGImage(width: 100, height: 80, channels: 1, pixels: pixels).encode(compressionLevel: level)
            XCTAssertEqual(try Self.decode(data).pixels, pixels)
            sizes.append(data.count)
        }
        XCTAssertGreaterThan(sizes[0], sizes[2], "stored (level 0) must be larger than level 9")
    }

    func testLargeIncompressibleImageSplitsIDAT() throws {
        let width = 1100, height = 1000
        var state: UInt64 = 42
        let pixels = (0..<(width * height)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let decoded = try Self.decode(try PNGImage(width: width, height: height, channels: 1, pixels: pixels).encode(compressionLevel: 1))
        XCTAssertGreaterThanOrEqual(decoded.chunkTypes.filter { $0 == "IDAT" }.count, 2)
        XCTAssertEqual(decoded.pixels, pixels)
    }

    func testInvalidImagesThrow() {
        XCTAssertThrowsError(try PNGImage(width: 0, height: 4, channels: 1, pixels: []).encode())
        XCTAssertThrowsError(try PNGImage(width: 2, height: 2, channels: 5, pixels: [UInt8](repeating: 0, count: 20)).encode())
        XCTAssertThrowsError(try PNGImage(width: 2, height: 2, channels: 3, pixels: [1, 2, 3]).encode()) { error in
            XCTAssertEqual(error as? PNGError, .pixelCountMismatch(expected: 12, actual: 3))
        }
    }

    func testWriteFileAtomically() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("png-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("slice.png")
        let pixels = Self.testPixels(width: 40, height: 30, channels: 3, seed: 3)
        let image = PNGImage(width: 40, height: 30, channels: 3, pixels: pixels)
        try image.write(to: url)
        try image.write(to: url)  // replacing an existing file works too

        let data = try Data(contentsOf: url)
        XCTAssertEqual(Array(data.prefix(8)), PNGImage.signature)
        XCTAssertEqual(String(decoding: data[12..<16], as: UTF8.self), "IHDR")
        XCTAssertEqual(try Self.decode(data).pixels, pixels)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["slice.png"], "no temporary file left")

        // The system's `file` (libmagic) recognises it, where available.
        for tool in ["/usr/bin/file", "/bin/file"] where FileManager.default.isExecutableFile(atPath: tool) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = ["-b", url.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertTrue(output.contains("PNG image data, 40 x 30, 8-bit/color RGB"), output)
            break
        }

        // Missing folders are created; a path through a regular file cannot be written.
        XCTAssertNoThrow(try image.write(to: directory.appendingPathComponent("missing/dir/x.png")))
        XCTAssertThrowsError(try image.write(to: url.appendingPathComponent("inside-a-file.png")))
    }
}
