import Foundation
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Byte streams for the reader (plain file or gzip, chosen by the file's magic bytes) and the
// writer (plain file or gzip), on POSIX file descriptors and zlib. Buffers are reused; the reader
// inflates straight into the caller's memory.

/// POSIX calls, namespaced (and reachable from methods that are themselves called read/write/close).
enum NIfTISys {
    static func errnoText() -> String { String(cString: strerror(errno)) }
    #if canImport(Glibc)
    static func read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { Glibc.read(fd, p, n) }
    static func write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
    static func close(_ fd: Int32) -> Int32 { Glibc.close(fd) }
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { Glibc.open(path, flags, mode) }
    #else
    static func read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { Darwin.read(fd, p, n) }
    static func write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
    static func close(_ fd: Int32) -> Int32 { Darwin.close(fd) }
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { Darwin.open(path, flags, mode) }
    #endif
}

/// A sequential source of bytes: a plain file or the decompressed content of a gzip file.
protocol NIfTIByteSource: AnyObject {
    var url: URL { get }
    /// Reads up to `count` bytes into `p`; fewer only at the end of the data. Throws on I/O or
    /// stream corruption.
    func read(into p: UnsafeMutableRawPointer, count: Int) throws -> Int
    /// Bytes left in a plain file (nil for gzip, where it is unknown until inflated).
    var remaining: Int? { get }
    /// For gzip: an upper bound of the bytes the rest of the file can inflate to (deflate cannot
    /// compress better than 1032:1), so absurd headers are refused before allocating.
    var remainingBound: Int? { get }
    /// Skips `n` bytes; returns how many were skipped (fewer only at the end).
    func skip(_ n: Int) throws -> Int
    /// Called once all the data has been read: a gzip source inflates what is left of the stream
    /// to verify its CRC (a corrupt stream throws); a missing trailer is tolerated, as in nibabel.
    func finish() throws
    func close()
}

extension NIfTIByteSource {
    /// Reads exactly `count` bytes or throws a truncation error describing `what`.
    func readFully(into p: UnsafeMutableRawPointer, count: Int, what: @autoclosure () -> String) throws {
        let got = try read(into: p, count: count)
        if got < count {
            throw NIfTIError(url, "data", "truncated: \(what()); the file ends \(count - got) bytes early")
        }
    }
}

enum NIfTIStreams {
    /// Opens `url` for reading, as gzip when it starts with the gzip magic bytes 1f 8b.
    static func open(_ url: URL, inputChunk: Int = 1 << 18) throws -> NIfTIByteSource {
        let fd = NIfTISys.open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NIfTIError(url, "file", "cannot open: \(NIfTISys.errnoText())") }
        var magic = [UInt8](repeating: 0, count: 2)
        let n = magic.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 2, 0) }
        if n == 2 && magic == [0x1f, 0x8b] {
            do { return try GzipSource(fd: fd, url: url, chunk: inputChunk) } catch { _ = NIfTISys.close(fd); throw error }
        }
        return RawFileSource(fd: fd, url: url)
    }
}

/// An uncompressed file.
final class RawFileSource: NIfTIByteSource {
    let url: URL
    private var fd: Int32
    private var position = 0
    private let size: Int

    init(fd: Int32, url: URL) {
        self.fd = fd
        self.url = url
        var st = stat()
        size = fstat(fd, &st) == 0 ? Int(st.st_size) : Int.max
    }

    deinit { close() }

    var remaining: Int? { max(0, size - position) }
    var remainingBound: Int? { remaining }

    func read(into p: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var done = 0
        while done < count {
            let n = NIfTISys.read(fd, p + done, min(count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw NIfTIError(url, "file", "read failed: \(NIfTISys.errnoText())")
            }
            if n == 0 { break }
            done += n
        }
        position += done
        return done
    }

    func skip(_ n: Int) throws -> Int {
        let k = min(n, max(0, size - position))
        if lseek(fd, off_t(position + k), SEEK_SET) < 0 { throw NIfTIError(url, "file", "seek failed: \(NIfTISys.errnoText())") }
        position += k
        return k
    }

    func finish() throws {}

    func close() {
        if fd >= 0 { _ = NIfTISys.close(fd); fd = -1 }
    }
}

/// The decompressed content of a gzip file (one or more members), inflated by zlib straight into
/// the caller's buffer.
final class GzipSource: NIfTIByteSource {
    let url: URL
    private var fd: Int32
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawPointer
    private let inputCapacity: Int
    private var inputEOF = false
    private var memberEnded = false
    private var compressedOffset = 0
    private let compressedSize: Int

    init(fd: Int32, url: URL, chunk: Int) throws {
        self.fd = fd
        self.url = url
        inputCapacity = max(4096, chunk)
        var st = stat()
        compressedSize = fstat(fd, &st) == 0 ? Int(st.st_size) : Int.max
        input = UnsafeMutableRawPointer.allocate(byteCount: inputCapacity, alignment: 16)
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 + 32: maximum window, automatic zlib/gzip header detection
        let rc = inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            stream.deinitialize(count: 1); stream.deallocate(); input.deallocate()
            throw NIfTIError(url, "gzip", "inflateInit2 failed (\(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
        close()
    }

    var remaining: Int? { nil }

    var remainingBound: Int? {
        guard compressedSize < Int.max / 2048 else { return nil }
        return (compressedSize - compressedOffset + Int(stream.pointee.avail_in)) * 1032 + (1 << 16)
    }

    func close() {
        if fd >= 0 { _ = NIfTISys.close(fd); fd = -1 }
    }

    /// Refills the input buffer when empty; false at the end of the file.
    private func refill() throws -> Bool {
        if stream.pointee.avail_in > 0 { return true }
        if inputEOF || fd < 0 { return false }
        while true {
            let n = NIfTISys.read(fd, input, inputCapacity)
            if n < 0 {
                if errno == EINTR { continue }
                throw NIfTIError(url, "file", "read failed: \(NIfTISys.errnoText())")
            }
            if n == 0 { inputEOF = true; return false }
            stream.pointee.next_in = input.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = uInt(n)
            compressedOffset += n
            return true
        }
    }

    private func zlibMessage(_ rc: Int32) -> String {
        if let m = stream.pointee.msg { return String(cString: m) }
        return "zlib error \(rc)"
    }

    func read(into p: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var produced = 0
        while produced < count {
            if memberEnded {
                // Another gzip member may follow (concatenated gzip); anything else ends the data.
                guard try refill(), stream.pointee.next_in.pointee == 0x1f else { break }
                inflateReset(stream)
                memberEnded = false
            }
            if stream.pointee.avail_in == 0 {
                guard try refill() else { break }
            }
            let want = min(count - produced, Int(UInt32.max))
            let inBefore = stream.pointee.avail_in
            stream.pointee.next_out = (p + produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(want)
            let rc = inflate(stream, Z_NO_FLUSH)
            let out = want - Int(stream.pointee.avail_out)
            produced += out
            switch rc {
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // no progress although input and output space were available: should not happen
                if out == 0 && stream.pointee.avail_in == inBefore && inBefore > 0 {
                    throw NIfTIError(url, "gzip", "inflate made no progress near compressed byte \(compressedOffset)")
                }
                continue
            case Z_STREAM_END:
                memberEnded = true
            case Z_NEED_DICT:
                throw NIfTIError(url, "gzip", "corrupt stream (a preset dictionary is required) near compressed byte \(compressedOffset)")
            case Z_MEM_ERROR:
                throw NIfTIError(url, "gzip", "out of memory while inflating")
            default:
                throw NIfTIError(url, "gzip", "corrupt stream near compressed byte \(compressedOffset): \(zlibMessage(rc))")
            }
        }
        return produced
    }

    func skip(_ n: Int) throws -> Int {
        var left = n, skipped = 0
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        while left > 0 {
            let k = try read(into: scratch, count: min(left, 1 << 16))
            if k == 0 { break }
            skipped += k; left -= k
        }
        return skipped
    }

    func finish() throws {
        // Inflate the rest of the current member (normally just its 8-byte trailer) so zlib checks
        // the CRC; stop after 1 MiB of surplus data (files with trailing voxels are accepted).
        guard !memberEnded else { return }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        var surplus = 0
        while !memberEnded && surplus < (1 << 20) {
            if stream.pointee.avail_in == 0 { guard try refill() else { return } }
            stream.pointee.next_out = scratch.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(1 << 16)
            let rc = inflate(stream, Z_NO_FLUSH)
            surplus += (1 << 16) - Int(stream.pointee.avail_out)
            switch rc {
            case Z_OK, Z_BUF_ERROR: continue
            case Z_STREAM_END: memberEnded = true
            default:
                throw NIfTIError(url, "gzip", "corrupt stream near compressed byte \(compressedOffset): \(zlibMessage(rc))")
            }
        }
    }
}

// MARK: - Writing

/// A sequential sink: a plain file or a gzip stream into a file.
protocol NIfTIByteSink: AnyObject {
    func write(_ p: UnsafeRawPointer, count: Int) throws
    /// Flushes everything (the gzip trailer included).
    func finish() throws
}

final class RawFileSink: NIfTIByteSink {
    let fd: Int32
    let url: URL

    init(fd: Int32, url: URL) { self.fd = fd; self.url = url }

    func write(_ p: UnsafeRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let n = NIfTISys.write(fd, p + done, min(count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw NIfTIError(url, "file", "write failed: \(NIfTISys.errnoText())")
            }
            done += n
        }
    }

    func finish() throws {}
}

/// Deflates into a gzip wrapper (zlib's minimal gzip header: no name, mtime 0, so output is
/// deterministic) and writes to `file`.
final class GzipSink: NIfTIByteSink {
    private let file: RawFileSink
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawPointer
    private let outputCapacity = 1 << 18
    private var url: URL { file.url }

    init(file: RawFileSink, level: Int) throws {
        self.file = file
        output = UnsafeMutableRawPointer.allocate(byteCount: outputCapacity, alignment: 16)
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits 15 + 16: gzip wrapper; memLevel 8; default strategy
        let rc = deflateInit2_(stream, Int32(max(0, min(9, level))), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            stream.deinitialize(count: 1); stream.deallocate(); output.deallocate()
            throw NIfTIError(file.url, "gzip", "deflateInit2 failed (\(rc))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        output.deallocate()
    }

    private func run(_ flush: Int32) throws -> Int32 {
        stream.pointee.next_out = output.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(outputCapacity)
        let rc = deflate(stream, flush)
        guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
            throw NIfTIError(url, "gzip", "deflate failed (\(rc))")
        }
        let n = outputCapacity - Int(stream.pointee.avail_out)
        if n > 0 { try file.write(output, count: n) }
        return rc
    }

    func write(_ p: UnsafeRawPointer, count: Int) throws {
        var offset = 0
        while offset < count {
            let k = min(count - offset, 1 << 30)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: (p + offset).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(k)
            while stream.pointee.avail_in > 0 { _ = try run(Z_NO_FLUSH) }
            offset += k
        }
    }

    func finish() throws {
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        while try run(Z_FINISH) != Z_STREAM_END {}
    }
}
