import Foundation

// Binary layout of NIfTI-1 (348 bytes) and NIfTI-2 (540 bytes) headers: parsing with validation,
// and NIfTI-1 encoding for the writer.

/// Reads fixed-width fields from a header buffer in the file's byte order.
struct NIfTIFieldReader {
    let base: UnsafeRawPointer
    let big: Bool

    @inline(__always) func int<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
        let raw = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        return big ? T(bigEndian: raw) : T(littleEndian: raw)
    }
    func i16(_ o: Int) -> Int { Int(int(o, Int16.self)) }
    func i32(_ o: Int) -> Int { Int(int(o, Int32.self)) }
    func i64(_ o: Int) -> Int { Int(int(o, Int64.self)) }
    func u8(_ o: Int) -> Int { Int(base.load(fromByteOffset: o, as: UInt8.self)) }
    func f32(_ o: Int) -> Double { Double(Float(bitPattern: int(o, UInt32.self))) }
    func f64(_ o: Int) -> Double { Double(bitPattern: int(o, UInt64.self)) }
    func bytes(_ o: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(u8(o + $0)) } }
    /// A fixed-size C string field: up to the first NUL, UTF-8 (invalid bytes replaced).
    func string(_ o: Int, _ n: Int) -> String {
        var b = bytes(o, n)
        if let z = b.firstIndex(of: 0) { b.removeSubrange(z...) }
        return String(decoding: b, as: UTF8.self)
    }
}

extension NIfTIHeader {
    /// Header version and byte order from the first 4 bytes (sizeof_hdr: 348 or 540, either order).
    static func sniff(_ first4: UnsafeRawPointer) -> (version: Int, byteOrder: ByteOrder)? {
        let raw = first4.loadUnaligned(as: Int32.self)
        switch (Int32(littleEndian: raw), Int32(bigEndian: raw)) {
        case (348, _): return (1, .little)
        case (_, 348): return (1, .big)
        case (540, _): return (2, .little)
        case (_, 540): return (2, .big)
        default: return nil
        }
    }

    /// Parses and validates a header. `buffer` holds at least `headerSize` bytes of the version
    /// `sniff` found. Applies nibabel's load-time fixes (see the type's doc comment).
    static func parse(_ buffer: UnsafeRawBufferPointer, url: URL?) throws -> NIfTIHeader {
        guard buffer.count >= 4, let (version, order) = sniff(buffer.baseAddress!) else {
            let got = buffer.count >= 4
                ? "\(Int32(littleEndian: buffer.baseAddress!.loadUnaligned(as: Int32.self)))" : "missing"
            throw NIfTIError(url, "sizeof_hdr", "is \(got); a NIfTI-1 header has 348, a NIfTI-2 header 540 (either byte order)")
        }
        var h = NIfTIHeader()
        h.version = version
        h.byteOrder = order
        let need = h.headerSize
        guard buffer.count >= need else {
            throw NIfTIError(url, "header", "file is \(buffer.count) bytes, shorter than the \(need)-byte NIfTI-\(version) header")
        }
        let r = NIfTIFieldReader(base: buffer.baseAddress!, big: order == .big)
        let datatypeCode: Int
        if version == 1 {
            let magic = r.bytes(344, 4)
            switch magic {
            case Array("n+1\0".utf8): h.isSingleFile = true
            case Array("ni1\0".utf8): h.isSingleFile = false
            default: throw NIfTIError(url, "magic", "is \(quoted(magic)); expected \"n+1\" (single file) or \"ni1\" (pair)")
            }
            h.dimInfo = r.u8(39)
            h.dim = (0..<8).map { r.i16(40 + 2 * $0) }
            h.intentP1 = r.f32(56); h.intentP2 = r.f32(60); h.intentP3 = r.f32(64)
            h.intentCode = r.i16(68)
            datatypeCode = r.i16(70)
            h.bitpix = r.i16(72)
            h.sliceStart = r.i16(74)
            h.pixdim = (0..<8).map { r.f32(76 + 4 * $0) }
            let vox = r.f32(108)
            guard vox.isFinite, vox >= 0, vox < 1e15 else {
                throw NIfTIError(url, "vox_offset", "is \(vox), not a usable byte offset")
            }
            h.voxOffset = Int(vox)
            h.sclSlope = r.f32(112); h.sclInter = r.f32(116)
            h.sliceEnd = r.i16(120)
            h.sliceCode = r.u8(122)
            h.xyztUnits = r.u8(123)
            h.calMax = r.f32(124); h.calMin = r.f32(128)
            h.sliceDuration = r.f32(132); h.toffset = r.f32(136)
            h.descrip = r.string(148, 80)
            h.auxFile = r.string(228, 24)
            h.qformCode = r.i16(252); h.sformCode = r.i16(254)
            h.quaternB = r.f32(256); h.quaternC = r.f32(260); h.quaternD = r.f32(264)
            h.qoffsetX = r.f32(268); h.qoffsetY = r.f32(272); h.qoffsetZ = r.f32(276)
            h.srowX = (0..<4).map { r.f32(280 + 4 * $0) }
            h.srowY = (0..<4).map { r.f32(296 + 4 * $0) }
            h.srowZ = (0..<4).map { r.f32(312 + 4 * $0) }
            h.intentName = r.string(328, 16)
        } else {
            let magic = r.bytes(4, 4)
            switch magic {
            case Array("n+2\0".utf8): h.isSingleFile = true
            case Array("ni2\0".utf8): h.isSingleFile = false
            default: throw NIfTIError(url, "magic", "is \(quoted(magic)); expected \"n+2\" (single file) or \"ni2\" (pair)")
            }
            let eol = r.bytes(8, 4)
            guard eol == [13, 10, 26, 10] || eol == [0, 0, 0, 0] else {
                throw NIfTIError(url, "magic", "NIfTI-2 end-of-line check bytes are \(eol), not [13, 10, 26, 10]: the file was altered by a text-mode transfer")
            }
            datatypeCode = r.i16(12)
            h.bitpix = r.i16(14)
            h.dim = (0..<8).map { r.i64(16 + 8 * $0) }
            h.intentP1 = r.f64(80); h.intentP2 = r.f64(88); h.intentP3 = r.f64(96)
            h.pixdim = (0..<8).map { r.f64(104 + 8 * $0) }
            h.voxOffset = r.i64(168)
            h.sclSlope = r.f64(176); h.sclInter = r.f64(184)
            h.calMax = r.f64(192); h.calMin = r.f64(200)
            h.sliceDuration = r.f64(208); h.toffset = r.f64(216)
            h.sliceStart = r.i64(224); h.sliceEnd = r.i64(232)
            h.descrip = r.string(240, 80)
            h.auxFile = r.string(320, 24)
            h.qformCode = r.i32(344); h.sformCode = r.i32(348)
            h.quaternB = r.f64(352); h.quaternC = r.f64(360); h.quaternD = r.f64(368)
            h.qoffsetX = r.f64(376); h.qoffsetY = r.f64(384); h.qoffsetZ = r.f64(392)
            h.srowX = (0..<4).map { r.f64(400 + 8 * $0) }
            h.srowY = (0..<4).map { r.f64(432 + 8 * $0) }
            h.srowZ = (0..<4).map { r.f64(464 + 8 * $0) }
            h.sliceCode = r.i32(496)
            h.xyztUnits = r.i32(500)
            h.intentCode = r.i32(504)
            h.intentName = r.string(508, 16)
            h.dimInfo = r.u8(524)
        }

        // dim
        let ndim = h.dim[0]
        guard (1...7).contains(ndim) else {
            throw NIfTIError(url, "dim", "dim[0] = \(ndim), the number of dimensions must be 1...7")
        }
        for i in 1...ndim where h.dim[i] < 1 {
            throw NIfTIError(url, "dim", "dim[\(i)] = \(h.dim[i]), every used dimension must be >= 1")
        }
        // datatype, bitpix
        guard let dt = NIfTIDataType(rawValue: Int16(truncatingIfNeeded: datatypeCode)), Int(dt.rawValue) == datatypeCode else {
            throw NIfTIError(url, "datatype", "code \(datatypeCode) is not supported (supported: "
                + NIfTIDataType.allCases.map { "\($0.rawValue) \($0.name)" }.joined(separator: ", ") + ")")
        }
        h.datatype = dt
        guard h.bitpix == dt.bitpix else {
            throw NIfTIError(url, "bitpix", "is \(h.bitpix) but datatype \(dt.name) has \(dt.bitpix) bits per voxel")
        }
        // vox_offset: a single file needs room for the header and the 4 extension-flag bytes
        let minOffset = h.isSingleFile ? h.headerSize + 4 : 0
        guard h.voxOffset >= minOffset else {
            throw NIfTIError(url, "vox_offset", "is \(h.voxOffset), below the minimum \(minOffset) of a single-file NIfTI-\(version)")
        }
        // pixdim fixes (nibabel's _chk_pixdims, _chk_qfac)
        for i in 1...3 {
            guard h.pixdim[i].isFinite else {
                throw NIfTIError(url, "pixdim", "pixdim[\(i)] = \(h.pixdim[i]) is not finite")
            }
            if h.pixdim[i] == 0 { h.pixdim[i] = 1 } else if h.pixdim[i] < 0 { h.pixdim[i] = -h.pixdim[i] }
        }
        if h.pixdim[0] != 1 && h.pixdim[0] != -1 { h.pixdim[0] = 1 }
        // xform codes (nibabel's _chk_xform_code: unknown codes -> 0)
        if !(0...5).contains(h.qformCode) { h.qformCode = 0 }
        if !(0...5).contains(h.sformCode) { h.sformCode = 0 }
        // scaling: a valid slope with a non-finite intercept is an error in nibabel too
        if h.scaling != nil && !h.sclInter.isFinite {
            throw NIfTIError(url, "scl_inter", "is \(h.sclInter) while scl_slope \(h.sclSlope) is valid")
        }
        // the transform nibabel will use must be computable
        switch h.affineSource {
        case .sform:
            guard (h.srowX + h.srowY + h.srowZ).allSatisfy({ $0.isFinite }) else {
                throw NIfTIError(url, "srow_x/y/z", "the sform (code \(h.sformCode)) has non-finite entries")
            }
        case .qform:
            let q = [h.quaternB, h.quaternC, h.quaternD, h.qoffsetX, h.qoffsetY, h.qoffsetZ]
            guard q.allSatisfy({ $0.isFinite }) else {
                throw NIfTIError(url, "quatern_b/c/d", "the qform (code \(h.qformCode)) has non-finite entries")
            }
            guard h.quaternionA != nil else {
                throw NIfTIError(url, "quatern_b/c/d", "b²+c²+d² = \(h.quaternB * h.quaternB + h.quaternC * h.quaternC + h.quaternD * h.quaternD) exceeds 1: not a unit quaternion")
            }
        case .pixdim:
            break
        }
        return h
    }

    private static func quoted(_ b: [UInt8]) -> String {
        "\"" + b.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined() + "\""
    }

    /// The 352 bytes of a little-endian single-file NIfTI-1 header plus the 4 zero extension-flag
    /// bytes. Fields wider than NIfTI-1's (a NIfTI-2 header's) are narrowed to float32/int16.
    func encodedNIfTI1() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 352)
        out.withUnsafeMutableBytes { p in
            func i16(_ o: Int, _ v: Int) { p.storeBytes(of: Int16(clamping: v).littleEndian, toByteOffset: o, as: Int16.self) }
            func i32(_ o: Int, _ v: Int) { p.storeBytes(of: Int32(clamping: v).littleEndian, toByteOffset: o, as: Int32.self) }
            func u8(_ o: Int, _ v: Int) { p.storeBytes(of: UInt8(clamping: v), toByteOffset: o, as: UInt8.self) }
            func f32(_ o: Int, _ v: Double) { p.storeBytes(of: Float(v).bitPattern.littleEndian, toByteOffset: o, as: UInt32.self) }
            func str(_ o: Int, _ n: Int, _ s: String) {
                for (k, b) in s.utf8.prefix(n).enumerated() { p[o + k] = b }
            }
            i32(0, 348)
            u8(38, Int(UInt8(ascii: "r")))  // "regular", as nibabel writes
            u8(39, dimInfo)
            for k in 0..<8 { i16(40 + 2 * k, dim[k]) }
            f32(56, intentP1); f32(60, intentP2); f32(64, intentP3)
            i16(68, intentCode)
            i16(70, Int(datatype.rawValue))
            i16(72, datatype.bitpix)
            i16(74, sliceStart)
            for k in 0..<8 { f32(76 + 4 * k, pixdim[k]) }
            f32(108, Double(voxOffset))
            f32(112, sclSlope); f32(116, sclInter)
            i16(120, sliceEnd)
            u8(122, sliceCode)
            u8(123, xyztUnits)
            f32(124, calMax); f32(128, calMin)
            f32(132, sliceDuration); f32(136, toffset)
            str(148, 80, descrip)
            str(228, 24, auxFile)
            i16(252, qformCode); i16(254, sformCode)
            f32(256, quaternB); f32(260, quaternC); f32(264, quaternD)
            f32(268, qoffsetX); f32(272, qoffsetY); f32(276, qoffsetZ)
            for k in 0..<4 { f32(280 + 4 * k, srowX[k]); f32(296 + 4 * k, srowY[k]); f32(312 + 4 * k, srowZ[k]) }
            str(328, 16, intentName)
            str(344, 4, isSingleFile ? "n+1" : "ni1")
        }
        return out
    }
}
