import Foundation

/// The few DICOM attributes the dicom converter needs (series grouping and geometry), read by a
/// minimal parser: Part 10 files (128-byte preamble, "DICM", group 0002 in explicit VR little
/// endian) whose data set is implicit or explicit VR little endian (compressed transfer syntaxes
/// keep an explicit VR little endian header and are fine), and bare implicit/explicit VR little
/// endian data sets without a preamble. Parsing stops before group 0029 (the pixel data are never
/// read); sequences of any nesting are skipped. Every length is bounds-checked: a damaged file is
/// an error naming the file, never a crash.
public struct DICOMHeader: Equatable, Sendable {
    public var transferSyntax: String?
    public var sopClassUID: String?
    /// (0008,0060), e.g. "CT", "MR".
    public var modality: String?
    /// (0008,103E)
    public var seriesDescription: String?
    /// (0020,000E)
    public var seriesInstanceUID: String?
    /// (0020,0011)
    public var seriesNumber: Int?
    /// (0020,0013)
    public var instanceNumber: Int?
    /// (0020,0032) ImagePositionPatient: the centre of the first voxel, LPS mm.
    public var imagePosition: [Double]?
    /// (0020,0037) ImageOrientationPatient: row direction (along a row, increasing column) then
    /// column direction (down a column, increasing row), LPS.
    public var imageOrientation: [Double]?
    /// (0028,0030) PixelSpacing: [spacing between rows, spacing between columns], mm.
    public var pixelSpacing: [Double]?
    /// (0028,0010)
    public var rows: Int?
    /// (0028,0011)
    public var columns: Int?
    /// (0028,0008) NumberOfFrames (multi-frame objects).
    public var numberOfFrames: Int?

    public init() {}

    /// Whether the attributes of an image slice with geometry are all present.
    public var hasGeometry: Bool {
        imagePosition?.count == 3 && imageOrientation?.count == 6 && pixelSpacing?.count == 2 && rows != nil && columns != nil
    }

    public static let implicitLittleEndian = "1.2.840.10008.1.2"
    public static let explicitLittleEndian = "1.2.840.10008.1.2.1"
    public static let explicitBigEndian = "1.2.840.10008.1.2.2"
    public static let deflatedExplicitLittleEndian = "1.2.840.10008.1.2.1.99"

    /// Reads the header of `url`: nil when the file is not DICOM (no "DICM" marker and no
    /// plausible bare data set); throws `ConversionError` for a damaged or unsupported DICOM file.
    public static func read(_ url: URL, display: String? = nil) throws -> DICOMHeader? {
        let name = display ?? url.path
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw ConversionError(file: name, problem: "cannot read: \(error.localizedDescription)")
        }
        return try parse(data, file: name)
    }

    /// Parses the bytes of a DICOM file (see `read`).
    public static func parse(_ data: Data, file: String) throws -> DICOMHeader? {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> DICOMHeader? in
            let bytes = raw.bindMemory(to: UInt8.self)
            var parser = Parser(bytes: bytes, file: file)
            let part10 = bytes.count >= 132 && bytes[128] == 0x44 && bytes[129] == 0x49 && bytes[130] == 0x43 && bytes[131] == 0x4D
            if part10 {
                return try parser.parsePart10()
            }
            // A bare data set: accept it only when it parses and holds DICOM image attributes.
            guard bytes.count >= 8 else { return nil }
            let group = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
            guard group == 0x0002 || group == 0x0008 else { return nil }
            let explicit = Parser.isVR(bytes[4], bytes[5])
            guard let h = try? parser.parseDataSet(from: 0, explicit: explicit), h.sopClassUID != nil || h.hasGeometry || h.modality != nil else {
                return nil
            }
            return h
        }
    }

    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let file: String
        var header = DICOMHeader()

        init(bytes: UnsafeBufferPointer<UInt8>, file: String) { self.bytes = bytes; self.file = file }

        static let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]

        static func isVR(_ a: UInt8, _ b: UInt8) -> Bool { (0x41...0x5A).contains(a) && (0x41...0x5A).contains(b) }

        func fail(_ problem: String) -> ConversionError { ConversionError(file: file, problem: "damaged DICOM file: \(problem)") }

        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at + 2 <= bytes.count else { throw fail("truncated at byte \(at)") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }

        func u32(_ at: Int) throws -> Int {
            guard at >= 0, at + 4 <= bytes.count else { throw fail("truncated at byte \(at)") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }

        static let undefinedLength = 0xFFFF_FFFF

        /// One element header: tag, VR (nil when implicit), value offset and length.
        struct Element { var group: Int; var element: Int; var vr: String?; var valueOffset: Int; var length: Int }

        func element(at offset: Int, explicit: Bool) throws -> Element {
            let group = try u16(offset), elem = try u16(offset + 2)
            if group == 0xFFFE {   // items and delimiters: no VR in any syntax
                return Element(group: group, element: elem, vr: nil, valueOffset: offset + 8, length: try u32(offset + 4))
            }
            if explicit {
                guard offset + 6 <= bytes.count else { throw fail("truncated at byte \(offset)") }
                guard Parser.isVR(bytes[offset + 4], bytes[offset + 5]) else {
                    throw fail(String(format: "element (%04X,%04X) at byte %d has no valid VR", group, elem, offset))
                }
                let vr = String(decoding: [bytes[offset + 4], bytes[offset + 5]], as: UTF8.self)
                if Parser.longVRs.contains(vr) {
                    return Element(group: group, element: elem, vr: vr, valueOffset: offset + 12, length: try u32(offset + 8))
                }
                return Element(group: group, element: elem, vr: vr, valueOffset: offset + 8, length: try u16(offset + 6))
            }
            return Element(group: group, element: elem, vr: nil, valueOffset: offset + 8, length: try u32(offset + 4))
        }

        mutating func parsePart10() throws -> DICOMHeader {
            // File meta information: always explicit VR little endian.
            var offset = 132
            while offset + 8 <= bytes.count, try u16(offset) == 0x0002 {
                let e = try element(at: offset, explicit: true)
                guard e.length != Parser.undefinedLength, e.valueOffset + e.length <= bytes.count else {
                    throw fail(String(format: "file meta element (0002,%04X) has a bad length", e.element))
                }
                if e.element == 0x0010 { header.transferSyntax = string(e) }
                if e.element == 0x0002 { header.sopClassUID = string(e) }
                offset = e.valueOffset + e.length
            }
            let syntax = header.transferSyntax ?? DICOMHeader.explicitLittleEndian
            if syntax == DICOMHeader.explicitBigEndian {
                throw ConversionError(file: file, problem: "explicit VR big endian DICOM (retired transfer syntax \(syntax)) is not supported")
            }
            if syntax == DICOMHeader.deflatedExplicitLittleEndian {
                throw ConversionError(file: file, problem: "deflated DICOM (transfer syntax \(syntax)) is not supported")
            }
            return try parseDataSet(from: offset, explicit: syntax != DICOMHeader.implicitLittleEndian)
        }

        /// Parses top-level elements from `offset` until group 0029 or the end.
        mutating func parseDataSet(from start: Int, explicit: Bool) throws -> DICOMHeader {
            var offset = start
            while offset < bytes.count {
                guard offset + 8 <= bytes.count else { throw fail("truncated: \(bytes.count - offset) stray byte(s) at the end") }
                let e = try element(at: offset, explicit: explicit)
                if e.group > 0x0028 { break }
                if e.length == Parser.undefinedLength {
                    // A sequence (SQ, or UN / implicit VR with undefined length): skip its items.
                    offset = try skipSequence(from: e.valueOffset, explicit: explicit && e.vr != "UN", depth: 0)
                    continue
                }
                guard e.valueOffset + e.length <= bytes.count else {
                    throw fail(String(format: "element (%04X,%04X) claims %d bytes at byte %d, the file has %d", e.group, e.element, e.length, e.valueOffset, bytes.count))
                }
                try store(e)
                offset = e.valueOffset + e.length
            }
            return header
        }

        /// Skips the items of an undefined-length sequence starting at `offset`; returns the offset
        /// after its sequence delimitation item.
        func skipSequence(from start: Int, explicit: Bool, depth: Int) throws -> Int {
            guard depth < 32 else { throw fail("sequences nested more than 32 deep") }
            var offset = start
            while true {
                let group = try u16(offset), elem = try u16(offset + 2), length = try u32(offset + 4)
                guard group == 0xFFFE else { throw fail(String(format: "expected an item at byte %d, found (%04X,%04X)", offset, group, elem)) }
                if elem == 0xE0DD { return offset + 8 }           // sequence delimitation
                guard elem == 0xE000 else { throw fail(String(format: "unexpected (FFFE,%04X) at byte %d", elem, offset)) }
                if length != Parser.undefinedLength {
                    guard offset + 8 + length <= bytes.count else { throw fail("an item runs past the end of the file") }
                    offset += 8 + length
                    continue
                }
                // An item of undefined length: elements until the item delimitation.
                offset += 8
                while true {
                    let e = try element(at: offset, explicit: explicit)
                    if e.group == 0xFFFE && e.element == 0xE00D { offset = e.valueOffset; break }
                    if e.length == Parser.undefinedLength {
                        offset = try skipSequence(from: e.valueOffset, explicit: explicit && e.vr != "UN", depth: depth + 1)
                    } else {
                        guard e.valueOffset + e.length <= bytes.count else { throw fail("an element in a sequence runs past the end of the file") }
                        offset = e.valueOffset + e.length
                    }
                }
            }
        }

        func string(_ e: Element) -> String {
            let slice = UnsafeBufferPointer(rebasing: bytes[e.valueOffset..<e.valueOffset + e.length])
            return String(decoding: slice, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        }

        func decimals(_ e: Element, count: Int) throws -> [Double] {
            let parts = string(e).split(separator: "\\", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let values = parts.compactMap(Double.init)
            guard values.count == count, parts.count == count, values.allSatisfy({ $0.isFinite }) else {
                throw ConversionError(file: file, problem: String(format: "(%04X,%04X) should hold %d numbers, holds \"%@\"", e.group, e.element, count, string(e)))
            }
            return values
        }

        func integer(_ e: Element) -> Int? { Int(string(e).split(separator: "\\").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") }

        func unsigned16(_ e: Element) throws -> Int {
            // US in explicit VR; in implicit VR the same 2 bytes.
            guard e.length == 2 else {
                throw ConversionError(file: file, problem: String(format: "(%04X,%04X) should be a 2-byte US, has %d bytes", e.group, e.element, e.length))
            }
            return try u16(e.valueOffset)
        }

        mutating func store(_ e: Element) throws {
            switch (e.group, e.element) {
            case (0x0008, 0x0016): if header.sopClassUID == nil { header.sopClassUID = string(e) }
            case (0x0008, 0x0060): header.modality = string(e)
            case (0x0008, 0x103E): header.seriesDescription = string(e)
            case (0x0020, 0x000E): header.seriesInstanceUID = string(e)
            case (0x0020, 0x0011): header.seriesNumber = integer(e)
            case (0x0020, 0x0013): header.instanceNumber = integer(e)
            case (0x0020, 0x0032): header.imagePosition = try decimals(e, count: 3)
            case (0x0020, 0x0037): header.imageOrientation = try decimals(e, count: 6)
            case (0x0028, 0x0008): header.numberOfFrames = integer(e)
            case (0x0028, 0x0010): header.rows = try unsigned16(e)
            case (0x0028, 0x0011): header.columns = try unsigned16(e)
            case (0x0028, 0x0030): header.pixelSpacing = try decimals(e, count: 2)
            default: break
            }
        }
    }
}
