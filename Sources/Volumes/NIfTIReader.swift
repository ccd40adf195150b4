import Foundation

/// A NIfTI image as read: its header and its voxels as Float, scaled, in file order (x fastest).
///
/// A 3D image is one `Volume`. A 4D (or 5D...) image keeps its first 3D frame in `volume` and the
/// other frames in one contiguous buffer (no copy is made at read time; `frame(t)` copies one frame).
public struct NIfTIImage: Sendable {
    public var header: NIfTIHeader
    /// The file it was read from (the .hdr of a pair), nil for images made in memory.
    public var url: URL?
    /// The first 3D frame, scaled, with the header's geometry (`header.affine`, `header.spacing`).
    public var volume: Volume
    /// Number of 3D frames (the product of dim[4...]; 1 for a 3D image).
    public private(set) var frameCount: Int
    /// Frames 1..<frameCount, contiguous.
    private var laterFrames: [Float]

    /// An image of one frame (e.g. to write with `NIfTI.write(_:to:)` later).
    public init(header: NIfTIHeader, volume: Volume, url: URL? = nil) {
        self.header = header
        self.url = url
        self.volume = volume
        self.frameCount = 1
        self.laterFrames = []
    }

    init(header: NIfTIHeader, url: URL?, volume: Volume, frameCount: Int, laterFrames: [Float]) {
        self.header = header
        self.url = url
        self.volume = volume
        self.frameCount = frameCount
        self.laterFrames = laterFrames
    }

    /// Frame `t` (0..<frameCount) as a Volume with the image's geometry. Frame 0 is `volume`.
    public func frame(_ t: Int) -> Volume {
        precondition(t >= 0 && t < frameCount, "frame \(t) out of 0..<\(frameCount)")
        if t == 0 { return volume }
        let n = laterFrames.count / (frameCount - 1)
        let start = (t - 1) * n
        return Volume(shape: header.spatialShape, voxels: Array(laterFrames[start..<start + n]),
                      spacing: volume.spacing, affine: volume.affine)
    }

    /// Calls `body` with the voxels of every frame in turn (no copies).
    public func forEachFrameBuffer(_ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) rethrows {
        try volume.voxels.withUnsafeBufferPointer { try body(0, $0) }
        guard frameCount > 1 else { return }
        let n = laterFrames.count / (frameCount - 1)
        try laterFrames.withUnsafeBufferPointer { all in
            for t in 1..<frameCount {
                try body(t, UnsafeBufferPointer(rebasing: all[(t - 1) * n..<t * n]))
            }
        }
    }

    /// Whether any voxel (of any frame) is NaN or infinite. One pass over the data, no allocation.
    public var hasNonFinite: Bool {
        var found = false
        forEachFrameBuffer { _, b in if !found && NIfTIConvert.hasNonFinite(b) { found = true } }
        return found
    }
}

extension Volume {
    /// Whether any voxel is NaN or infinite.
    public var hasNonFinite: Bool { voxels.withUnsafeBufferPointer { NIfTIConvert.hasNonFinite($0) } }
}

public enum NIfTI {
    /// Default cap on the decoded size of an image (Float voxels, all frames): 4 GiB.
    public static let defaultMaxDecodedBytes = 4 << 30

    /// Reads a NIfTI-1 or NIfTI-2 image: single file (.nii) or .hdr/.img pair, plain or gzip
    /// (recognised by its magic bytes, whatever the extension), either byte order.
    ///
    /// Voxels are converted to Float with scl_slope/scl_inter applied when the slope is finite and
    /// non-zero; geometry is nibabel's `img.affine`. Refuses, before allocating, images whose decoded
    /// Float data would exceed `maxDecodedBytes`. NaN/Inf voxels are accepted (see `hasNonFinite`).
    /// Every problem is thrown as a `NIfTIError` naming the file and the field.
    public static func read(_ url: URL, maxDecodedBytes: Int = defaultMaxDecodedBytes) throws -> NIfTIImage {
        let headerURL = pairHeaderURL(url) ?? url
        let src = try NIfTIStreams.open(headerURL)
        defer { src.close() }
        let h = try readHeader(from: src)
        let sizes = try checkedSizes(h, url: headerURL, maxDecodedBytes: maxDecodedBytes)

        // the data stream, positioned at vox_offset
        let data: NIfTIByteSource
        if h.isSingleFile, src is GzipSource,
           let whole = NIfTIWholeGzip.inflate(headerURL, expectedSize: h.voxOffset + sizes.rawBytes) {
            _ = try whole.skip(h.voxOffset)
            data = whole
        } else if h.isSingleFile {
            let skip = h.voxOffset - h.headerSize
            if try src.skip(skip) < skip {
                throw NIfTIError(headerURL, "data", "truncated: the file ends before vox_offset \(h.voxOffset)")
            }
            data = src
        } else {
            let imageURL = try pairImageURL(headerURL)
            data = try NIfTIStreams.open(imageURL)
            if try data.skip(h.voxOffset) < h.voxOffset {
                throw NIfTIError(imageURL, "data", "truncated: the file ends before vox_offset \(h.voxOffset)")
            }
        }
        defer { if data !== src { data.close() } }

        let what = "the header (dim \(h.shape), \(h.datatype.name)) claims \(sizes.rawBytes) bytes of voxel data from offset \(h.voxOffset)"
        if let left = data.remaining, left < sizes.rawBytes {
            throw NIfTIError(data.url, "data", "truncated: \(what); the file holds only \(left) bytes after the offset")
        }
        if data.remaining == nil, let bound = data.remainingBound, bound < sizes.rawBytes {
            throw NIfTIError(data.url, "data", "truncated: \(what); the rest of this gzip file can inflate to at most \(bound) bytes")
        }
        let perFrame = sizes.voxelsPerFrame
        let first = try decode(data, h, count: perFrame, what: what)
        let later = h.frameCount > 1 ? try decode(data, h, count: perFrame * (h.frameCount - 1), what: what) : []
        try data.finish()

        let volume = Volume(shape: h.spatialShape, voxels: first, spacing: h.spacing, affine: h.affine)
        return NIfTIImage(header: h, url: headerURL, volume: volume, frameCount: h.frameCount, laterFrames: later)
    }

    /// Reads and validates only the header (for a .nii.gz, inflates only its first bytes).
    public static func readHeader(_ url: URL) throws -> NIfTIHeader {
        let src = try NIfTIStreams.open(pairHeaderURL(url) ?? url, inputChunk: 1 << 14)
        defer { src.close() }
        return try readHeader(from: src)
    }

    static func readHeader(from src: NIfTIByteSource) throws -> NIfTIHeader {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 540, alignment: 8)
        defer { buffer.deallocate() }
        var n = try src.read(into: buffer.baseAddress!, count: 348)
        if n < 4 {
            throw NIfTIError(src.url, "header", "file is \(n) bytes (decompressed), shorter than a NIfTI header (348 bytes)")
        }
        if let (version, _) = NIfTIHeader.sniff(buffer.baseAddress!), version == 2, n == 348 {
            n += try src.read(into: buffer.baseAddress! + 348, count: 540 - 348)
        }
        return try NIfTIHeader.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), url: src.url)
    }

    struct Sizes { var voxelsPerFrame: Int; var totalVoxels: Int; var rawBytes: Int }

    /// Voxel counts and byte sizes, refusing overflow and images above the cap.
    static func checkedSizes(_ h: NIfTIHeader, url: URL, maxDecodedBytes: Int) throws -> Sizes {
        var total = 1
        for i in 1...h.ndim {
            let (t, overflow) = total.multipliedReportingOverflow(by: h.dim[i])
            if overflow {
                throw NIfTIError(url, "dim", "the voxel count of dim \(h.shape) overflows a 64-bit integer")
            }
            total = t
        }
        let perFrame = h.spatialShape.reduce(1, *)  // <= total
        let (floatBytes, o1) = total.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        let (rawBytes, o2) = total.multipliedReportingOverflow(by: h.datatype.bytesPerVoxel)
        let (_, o3) = rawBytes.addingReportingOverflow(h.voxOffset)
        if o1 || o2 || o3 || floatBytes > maxDecodedBytes {
            throw NIfTIError(url, "dim", "dim \(h.shape) = \(total) voxels would decode to \(o1 ? "more than 2^63" : String(floatBytes)) bytes, above the cap of \(maxDecodedBytes) bytes (NIfTI.read maxDecodedBytes)")
        }
        return Sizes(voxelsPerFrame: perFrame, totalVoxels: total, rawBytes: rawBytes)
    }

    /// Reads `count` voxels from `src` into a new Float array.
    static func decode(_ src: NIfTIByteSource, _ h: NIfTIHeader, count: Int, what: @autoclosure () -> String) throws -> [Float] {
        let swap = NIfTIConvert.needsSwap(h.byteOrder)
        let scaling = h.scaling
        let type = h.datatype
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            let out = buffer.baseAddress!
            NIfTIConvert.adviseHugePages(UnsafeMutableRawPointer(out), byteCount: count * 4)
            if type == .float32 {
                // inflate/read straight into the result, then swap/scale in place
                try src.readFully(into: out, count: count * 4, what: what())
                NIfTIConvert.float32InPlace(out, count: count, swap: swap, scaling: scaling)
            } else {
                let bpv = type.bytesPerVoxel
                let chunkVoxels = min(count, (1 << 18) / bpv)
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunkVoxels * bpv, alignment: 16)
                defer { scratch.deallocate() }
                var done = 0
                while done < count {
                    let m = min(chunkVoxels, count - done)
                    try src.readFully(into: scratch, count: m * bpv, what: what())
                    NIfTIConvert.toFloat(type, src: scratch, dst: out + done, count: m, swap: swap, scaling: scaling)
                    done += m
                }
            }
            initialized = count
        }
    }

    // MARK: - .hdr/.img pairs

    private static let pairSuffixes: [(header: String, image: String)] = [(".hdr", ".img"), (".hdr.gz", ".img.gz")]

    /// For a path ending in .img / .img.gz, the matching .hdr / .hdr.gz (when it exists).
    static func pairHeaderURL(_ url: URL) -> URL? {
        let path = url.path
        for (h, i) in pairSuffixes where path.lowercased().hasSuffix(i) {
            let stem = String(path.dropLast(i.count))
            for candidate in [stem + h, stem + h.uppercased(), stem + ".hdr", stem + ".hdr.gz"]
            where FileManager.default.fileExists(atPath: candidate) {
                return URL(fileURLWithPath: candidate)
            }
        }
        return nil
    }

    /// For a pair's header file, its image file (.img or .img.gz, whichever exists).
    static func pairImageURL(_ headerURL: URL) throws -> URL {
        let path = headerURL.path
        for (h, _) in pairSuffixes.reversed() where path.lowercased().hasSuffix(h) {
            let stem = String(path.dropLast(h.count))
            let upper = path.hasSuffix(h.uppercased())
            for ext in [".img", ".img.gz"] {
                let candidate = stem + (upper ? ext.uppercased() : ext)
                if FileManager.default.fileExists(atPath: candidate) { return URL(fileURLWithPath: candidate) }
            }
            throw NIfTIError(headerURL, "magic", "header of a .hdr/.img pair, but \(stem).img is missing")
        }
        throw NIfTIError(headerURL, "magic", "\"ni1\"/\"ni2\" marks a .hdr/.img pair, but the file name does not end in .hdr")
    }
}
