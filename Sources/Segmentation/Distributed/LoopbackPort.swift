import Foundation

/// Loopback TCP ports chosen by the kernel: the `--nproc` launcher's rendezvous port, and sockets
/// that hold a port (tests of a port in use).
public enum LoopbackPort {
    /// A socket bound to 127.0.0.1 on a kernel-chosen port and listening; close `fd` to free it.
    public static func listening() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SegmentationError.launch("cannot open a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = bound == 0 && listen(fd, 4) == 0 && withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        } == 0
        guard named else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SegmentationError.launch("cannot bind a loopback socket: \(reason)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A port that was free a moment ago (whoever binds it next may race another program; rank 0
    /// then reports the port in use).
    public static func free() throws -> Int {
        let (fd, port) = try listening()
        close(fd)
        return port
    }
}
