import Foundation

/// A NIfTI file could not be read or written. The description names the file, the header field (or
/// the part of the file) concerned, and the problem, e.g.
/// `NIfTI error in /data/ct.nii.gz: dim: dim[3] = 0, every used dimension must be >= 1`.
public struct NIfTIError: Error, CustomStringConvertible, Sendable {
    /// The file concerned (path as given).
    public var file: String
    /// The header field or part of the file: "sizeof_hdr", "magic", "dim", "datatype", "bitpix",
    /// "vox_offset", "data", "gzip", "quatern_b/c/d", "scl_inter", "file", "voxel values" ...
    public var field: String
    /// What is wrong, in words.
    public var problem: String

    public init(file: String, field: String, problem: String) {
        self.file = file
        self.field = field
        self.problem = problem
    }

    init(_ url: URL?, _ field: String, _ problem: String) {
        self.init(file: url?.path ?? "<memory>", field: field, problem: problem)
    }

    public var description: String { "NIfTI error in \(file): \(field): \(problem)" }
}

extension NIfTIError: LocalizedError {
    public var errorDescription: String? { description }
}
