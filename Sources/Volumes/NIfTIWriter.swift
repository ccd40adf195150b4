import Essentials
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension NIfTI {
    /// Writes `volume` as a single-file little-endian NIfTI-1 image; gzip-compressed when the path
    /// ends in ".gz". The file appears atomically: the data go to a temporary file in the same
    /// directory, which is then renamed over `url`.
    ///
    /// Geometry:
    /// - with `reference` (e.g. the header of the image a mask was predicted from): its qform and
    ///   sform codes, quaternion, qoffset, srows, all of pixdim (qfac included), xyzt_units, descrip,
    ///   aux_file, dim_info/slice fields and toffset are kept as they are (narrowed to float32 when the
    ///   reference is NIfTI-2), so the file opens aligned with the reference wherever it is opened. Its
    ///   spatial shape must equal the volume's (else a `NIfTIError` on "dim"); `volume.affine` is
    ///   not used then.
    /// - without: sform = `volume.affine` and qform derived from it (nibabel's `set_qform`: shears
    ///   stripped, qfac from the determinant's sign), both codes 1 (scanner), pixdim[1...3] the
    ///   affine's column norms, xyzt_units = 2 (mm).
    ///
    /// Data: scl_slope = 1, scl_inter = 0. Integer datatypes round to nearest (ties to even, as
    /// numpy's rint). **Overflow is an error, not a clamp**: a NaN, an infinity or a value outside
    /// the datatype's range throws a `NIfTIError` (field "voxel values") naming the first such voxel,
    /// and nothing is written. float64 stores each Float exactly.
    ///
    /// - Parameter compressionLevel: zlib level for .gz (0...9); 1, like nibabel, favours speed.
    public static func write(_ volume: Volume, to url: URL, datatype: NIfTIDataType = .float32,
                             reference: NIfTIHeader? = nil, compressionLevel: Int = 1) throws {
        try write(frames: [volume], to: url, datatype: datatype, reference: reference, compressionLevel: compressionLevel)
    }

    /// Writes 3D frames of one grid as one image: a 3D file for one frame (exactly `write(_:to:)`),
    /// else a 4D file with dim = [4, nx, ny, nz, frames.count] (for example the channels of a Medical
    /// Segmentation Decathlon case, or a test fixture). Geometry, datatype and overflow rules are
    /// those of `write(_:to:)`, applied to every frame; the geometry comes from `frames[0]` (or the
    /// reference). Every frame must have frame 0's shape (else a `NIfTIError` on "dim"); pixdim[4]
    /// is 1 unless the reference sets it. Atomic like `write(_:to:)`.
    public static func write(frames: [Volume], to url: URL, datatype: NIfTIDataType = .float32,
                             reference: NIfTIHeader? = nil, compressionLevel: Int = 1) throws {
        guard let first = frames.first else { throw NIfTIError(url, "dim", "no frame to write") }
        var header = try header(for: first, url: url, datatype: datatype, reference: reference)
        if let t = frames.firstIndex(where: { $0.shape != first.shape }) {
            throw NIfTIError(url, "dim", "frame \(t) has shape \(frames[t].shape), frame 0 \(first.shape); the frames of one image share one grid")
        }
        if frames.count > 1 {
            guard frames.count <= 32767 else { throw NIfTIError(url, "dim", "\(frames.count) frames do not fit NIfTI-1 (at most 32767)") }
            header.dim = [4] + first.shape + [frames.count, 1, 1, 1]
            if !(header.pixdim[4].isFinite && header.pixdim[4] > 0) { header.pixdim[4] = 1 }
        }
        if datatype.isInteger {
            for (t, volume) in frames.enumerated() {
                let bad = volume.voxels.withUnsafeBufferPointer { NIfTIConvert.firstUnrepresentable(datatype, $0) }
                if let i = bad {
                    let nx = volume.shape[0], ny = volume.shape[1]
                    let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny))
                    let range = datatype.integerRange!
                    throw NIfTIError(url, "voxel values", "value \(volume.voxels[i]) at voxel (\(x), \(y), \(z))\(frames.count > 1 ? " of frame \(t)" : "") does not fit \(datatype.name) (\(Int64(range.lowerBound))...\(Int64(range.upperBound))); values are not clamped, nothing was written")
                }
            }
        }
        let bytes = header.encodedNIfTI1()
        try atomicWrite(to: url, gzip: url.path.lowercased().hasSuffix(".gz"), level: compressionLevel) { sink in
            try bytes.withUnsafeBytes { try sink.write($0.baseAddress!, count: $0.count) }
            for volume in frames {
                try volume.voxels.withUnsafeBufferPointer { voxels in
                    let n = voxels.count
                    if datatype == .float32 && !NIfTIConvert.needsSwap(.little) {
                        try sink.write(UnsafeRawPointer(voxels.baseAddress!), count: n * 4)
                        return
                    }
                    let chunk = min(n, 1 << 16)
                    let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunk * datatype.bytesPerVoxel, alignment: 16)
                    defer { scratch.deallocate() }
                    var done = 0
                    while done < n {
                        let m = min(chunk, n - done)
                        NIfTIConvert.fromFloat(datatype, src: voxels.baseAddress! + done, dst: scratch, count: m)
                        try sink.write(scratch, count: m * datatype.bytesPerVoxel)
                        done += m
                    }
                }
            }
        }
    }

    /// The header `write` produces for `volume` (see `write` for the rules).
    public static func header(for volume: Volume, url: URL? = nil, datatype: NIfTIDataType = .float32,
                              reference: NIfTIHeader? = nil) throws -> NIfTIHeader {
        guard volume.shape.count == 3, volume.shape.allSatisfy({ (1...32767).contains($0) }) else {
            throw NIfTIError(url, "dim", "shape \(volume.shape) does not fit NIfTI-1 (each axis 1...32767)")
        }
        var h: NIfTIHeader
        if let ref = reference {
            guard ref.spatialShape == volume.shape else {
                throw NIfTIError(url, "dim", "the volume's shape \(volume.shape) differs from the reference header's \(ref.spatialShape); its geometry would not apply")
            }
            h = ref
            h.intentCode = 0; h.intentP1 = 0; h.intentP2 = 0; h.intentP3 = 0; h.intentName = ""
        } else {
            guard volume.affine.m.allSatisfy({ $0.isFinite }) else {
                throw NIfTIError(url, "affine", "the volume's affine has non-finite entries")
            }
            h = NIfTIHeader()
            for i in 0..<3 { h.pixdim[i + 1] = volume.spacing[i] > 0 ? volume.spacing[i] : 1 }
            h.setSform(volume.affine, code: 1)
            h.setQform(volume.affine, code: 1)  // code 0 if the affine has a zero column
            h.xyztUnits = 2
        }
        h.version = 1
        h.byteOrder = .little
        h.isSingleFile = true
        h.dim = [3] + volume.shape + [1, 1, 1, 1]
        h.datatype = datatype
        h.bitpix = datatype.bitpix
        h.voxOffset = 352
        h.sclSlope = 1
        h.sclInter = 0
        h.calMin = 0
        h.calMax = 0
        return h
    }

    /// Writes through `AtomicFile` (temporary file next to `url`, renamed into place; removed on any
    /// error), through gzip when asked. Atomic-write failures are reported as `NIfTIError` on "file".
    static func atomicWrite(to url: URL, gzip: Bool, level: Int, _ body: (NIfTIByteSink) throws -> Void) throws {
        do {
            try AtomicFile.write(to: url) { fd in
                let raw = RawFileSink(fd: fd, url: url)
                let sink: NIfTIByteSink = gzip ? try GzipSink(file: raw, level: level) : raw
                try body(sink)
                try sink.finish()
            }
        } catch let e as AtomicFileError {
            throw NIfTIError(url, "file", e.description)
        }
    }
}
