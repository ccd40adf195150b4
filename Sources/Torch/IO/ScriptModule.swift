import CTorch
import Foundation

/// A TorchScript module (torch.jit.ScriptModule) built or loaded through libtorch's C++ script API:
/// tensors registered as parameters/buffers, methods compiled from TorchScript source, saved with
/// extra files that `torch.jit.load(path, _extra_files=...)` reads in Python.
public final class ScriptModule {
    let handle: ct_script_module

    /// An empty module whose TorchScript class is named `name`.
    public init(name: String) throws {
        var out: ct_script_module?
        try check(ct_jit_new(name, &out))
        guard let out else { throw TorchError("libtorch returned no module") }
        handle = out
    }

    private init(owning handle: ct_script_module) { self.handle = handle }
    deinit { ct_jit_free(handle) }

    /// Loads a saved module onto the CPU, in eval mode.
    public static func load(_ url: URL) throws -> ScriptModule {
        guard FileManager.default.fileExists(atPath: url.path) else { throw TorchError("\(url.path): no such file") }
        var out: ct_script_module?
        try check(ct_jit_load(url.path, &out))
        guard let out else { throw TorchError("libtorch returned no module") }
        return ScriptModule(owning: out)
    }

    /// One extra file stored in a saved module's archive (empty when it holds none of that name).
    public static func extraFile(_ name: String, in url: URL) throws -> Data {
        var out: UnsafeMutablePointer<CChar>?
        var size = 0
        try check(ct_jit_read_extra(url.path, name, &out, &size))
        guard let out else { return Data() }
        defer { ct_error_free(out) }
        return Data(bytes: out, count: size)
    }

    /// Registers `tensor` (detached) as attribute `name`; names may not contain dots.
    public func add(_ name: String, _ tensor: Tensor, parameter: Bool) throws {
        guard !name.contains(".") else { throw TorchError("TorchScript attribute '\(name)': dots are not allowed") }
        try check(ct_jit_add_tensor(handle, name, tensor.handle, parameter ? 1 : 0))
    }

    /// Compiles TorchScript source (`def name(self, ...)` methods) into the module.
    public func define(_ source: String) throws { try check(ct_jit_define(handle, source)) }

    public func eval() throws { try check(ct_jit_set_training(handle, 0)) }

    /// Saves the module with `extraFiles` (name -> bytes), atomically (a temporary file beside
    /// `url`, renamed over it once complete).
    public func save(to url: URL, extraFiles: [(String, Data)] = []) throws {
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let names = extraFiles.map { strdup($0.0) }
        let blobs = extraFiles.map { file -> UnsafeMutablePointer<CChar> in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: Swift.max(file.1.count, 1))
            file.1.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: raw.count) }
            }
            return p
        }
        defer { names.forEach { free($0) }; blobs.forEach { $0.deallocate() } }
        let sizes = extraFiles.map { $0.1.count }
        let nameArray: [UnsafePointer<CChar>?] = names.map { UnsafePointer($0) }
        let blobArray: [UnsafePointer<CChar>?] = blobs.map { UnsafePointer($0) }
        do {
            try check(ct_jit_save(handle, temporary.path, nameArray, blobArray, sizes, Int32(extraFiles.count)))
            guard rename(temporary.path, url.path) == 0 else {
                throw TorchError("cannot rename \(temporary.path) to \(url.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// `forward(inputs...)` without recording gradients.
    public func forward(_ inputs: [Tensor]) throws -> Tensor {
        let handles: [ct_tensor?] = inputs.map { $0.handle }
        return try produce { out in ct_jit_forward(handle, handles, Int32(inputs.count), out) }
    }
}
