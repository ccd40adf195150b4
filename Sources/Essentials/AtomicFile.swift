import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file write that could not be completed; the destination is unchanged.
public enum AtomicFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The destination's folder could not be created.
    case cannotCreateFolder(path: String, reason: String)
    /// The temporary file next to the destination could not be created.
    case cannotCreateTemporary(path: String, reason: String)
    /// Writing, flushing or closing the temporary file failed.
    case writeFailed(path: String, reason: String)
    /// The temporary file could not be renamed over the destination.
    case cannotRename(from: String, to: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreateFolder(path, reason): return "\(path): cannot create the folder: \(reason)"
        case let .cannotCreateTemporary(path, reason): return "\(path): cannot create a temporary file: \(reason)"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        case let .cannotRename(from, to, reason): return "cannot rename \(from) to \(to): \(reason)"
        }
    }
}

/// Writes files so that a reader (or a process killed mid-write) only ever sees the old complete
/// file or the new complete file: the bytes go to a temporary file in the same folder, are flushed
/// to disk, then the temporary file is renamed over the destination (rename is atomic within one
/// file system). On any error the temporary file is removed and the destination is untouched.
public enum AtomicFile {
    /// Writes `data` to `url` atomically (creating the folder if needed).
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd in
            try data.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                try writeAll(fd: fd, base, count: raw.count, path: url.path)
            }
        }
    }

    /// Streams into `url` atomically: `body` writes into the temporary file's descriptor (which it
    /// must not close), then the file is flushed and renamed into place.
    public static func write(to url: URL, _ body: (_ fd: Int32) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw AtomicFileError.cannotCreateFolder(path: folder.path, reason: "\(error.localizedDescription)")
        }
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString.prefix(8))")
        var fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AtomicFileError.cannotCreateTemporary(path: temporary.path, reason: errnoText()) }
        var renamed = false
        defer {
            if fd >= 0 { _ = close(fd) }
            if !renamed { _ = unlink(temporary.path) }
        }
        try body(fd)
        guard fsync(fd) == 0 else { throw AtomicFileError.writeFailed(path: url.path, reason: "fsync: \(errnoText())") }
        let rc = close(fd)
        fd = -1
        guard rc == 0 else { throw AtomicFileError.writeFailed(path: url.path, reason: "close: \(errnoText())") }
        guard rename(temporary.path, url.path) == 0 else {
            throw AtomicFileError.cannotRename(from: temporary.path, to: url.path, reason: errnoText())
        }
        renamed = true
    }

    /// Writes `count` bytes to `fd`, retrying short writes and interruptions.
    public static func writeAll(fd: Int32, _ bytes: UnsafeRawPointer, count: Int, path: String) throws {
        var done = 0
        while done < count {
            let n = Foundation.write(fd, bytes + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw AtomicFileError.writeFailed(path: path, reason: errnoText())
            }
            done += n
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
